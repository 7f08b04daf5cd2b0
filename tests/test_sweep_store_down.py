"""A sweep whose tracking store is down stops with one line (exit code 4) and leaves nothing.

Through the real command line: no journal for its kernels (so no run is ever
made of them, and ``nbtrack recover`` has nothing to say), no output folder,
nothing on stdout, no traceback.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel
pl = pytest.importorskip("polars")

NOTEBOOKS = Path(__file__).parent / "notebooks_for_tests"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def direct_env(uri: str) -> dict[str, str]:
    """Our environment pointed at ``uri``, with no HTTP proxy between (the server is local)."""
    plain = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return {**plain, "MLFLOW_TRACKING_URI": uri}


def sweep_cli(project: Path, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbtrack", "sweep", "nb.ipynb", *args, "--no-progress"],
                          cwd=project, capture_output=True, text=True, timeout=240, env=direct_env(uri))


def left_behind(project: Path) -> list[str]:
    """Journals (delivered or not) and sweep outputs in the project."""
    state = project / ".nbtrack"
    return sorted(str(p.relative_to(state)) for pattern in ("journal/*.jsonl", "journal/done/*.jsonl",
                                                              "outputs/*")
                  for p in state.glob(pattern))


@pytest.fixture
def notebook(project: Path) -> Path:
    shutil.rmtree(project / ".nbtrack")  # a project that never tracked anything
    nb = project / "nb.ipynb"
    nb.write_bytes((NOTEBOOKS / "sweep_grid.ipynb").read_bytes())
    return nb


def test_an_unreachable_tracking_server_is_one_line_and_nothing_runs(project, notebook):
    uri = f"http://127.0.0.1:{closed_port()}"
    result = sweep_cli(project, uri, "-p", "x=1,2", "--workers", "2")
    assert result.returncode == 4, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nbtrack sweep: cannot reach {uri}"), result.stderr
    assert "unset MLFLOW_TRACKING_URI" in lines[0]
    assert not (project / ".nbtrack").exists()  # not even a folder: nothing was started


class _FailingStore(http.server.BaseHTTPRequestHandler):
    """A tracking server that accepts connections, then fails every request (after a while,
    so the sweep's kernels are up and running when it answers)."""

    delay = 4.0

    def _fail(self) -> None:
        time.sleep(self.delay)
        body = b'{"error_code": "INTERNAL_ERROR", "message": "database is down"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _fail

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_store() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingStore)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_store_failing_while_kernels_start_leaves_no_journal_and_no_run(project, notebook,
                                                                          failing_store):
    # One worker: the first execution is running (sleeping) and the second one's kernel is
    # started ahead when the store answers with an error.
    result = sweep_cli(project, failing_store, "-p", "x=1,2", "-p", "sleep_s=60", "--workers", "1")
    assert result.returncode == 4, result.stderr
    assert left_behind(project) == []
    events = project / ".nbtrack" / "lake" / "events"  # what delivery had put in the lake meanwhile
    assert not events.exists() or pl.read_delta(str(events)).is_empty()
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"nbtrack sweep: cannot create the sweep's runs in {failing_store}")
    assert lines[0].endswith("nothing was run")
    recover = subprocess.run([sys.executable, "-m", "nbtrack", "recover"], cwd=project,
                             capture_output=True, text=True, timeout=120, env=direct_env(failing_store))
    assert recover.returncode == 0, recover.stderr
    assert recover.stdout.startswith("nothing to deliver: every journal of"), recover.stdout
    assert "still open" not in recover.stdout
    assert left_behind(project) == []
