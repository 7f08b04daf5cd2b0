"""Delivery under real-use strain, on real kernels, journals, stores and lakes: runs whose start
comes after many events, kernels killed mid-write, a store that is down when the last kernel
ends, and a delivery process that cannot start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import all_runs, client_for, free_port, wait_for, write_notebook

pytestmark = pytest.mark.kernel

POINTS = 30_000  # more than one delivery batch (20,000 events) before the run's start


# -- helpers -----------------------------------------------------------------------------------


def execute(kc: Any, code: str) -> str:
    """Run ``code`` in a real kernel; returns what it printed (stdout and stderr)."""
    printed: list[str] = []

    def hook(msg: dict) -> None:
        if msg["header"]["msg_type"] == "stream":
            printed.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(printed)


def start_kernel(project: Path, **env: str) -> tuple[Any, Any]:
    from jupyter_client.manager import start_new_kernel

    return start_new_kernel(kernel_name="python3", cwd=str(project), env={**os.environ, **env})


def freeze_delivery(project: Path) -> int:
    """Stop the project's delivery process in its tracks (as if the machine went down with it)."""
    pid_file = project / ".nbtrack" / "delivery.pid"
    daemon = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=30))
    os.kill(daemon, signal.SIGSTOP)
    return daemon


def kill_kernel_and_delivery(km: Any, kc: Any, daemon: int) -> None:
    kc.stop_channels()
    os.kill(km.provisioner.process.pid, signal.SIGKILL)
    os.kill(daemon, signal.SIGKILL)
    time.sleep(0.5)


def recover(project: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "nbtrack", "recover"], cwd=project,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())  # rich wraps long lines


def the_journal(project: Path) -> Path:
    (journal,) = (project / ".nbtrack" / "journal").glob("*.jsonl")
    return journal


def lake_points(project: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    from deltalake import DeltaTable

    table = project / ".nbtrack" / "lake" / "metrics"
    if not (table / "_delta_log").is_dir():
        return []
    rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
    return sorted((r["step"], r["value"]) for r in rows if r["run_id"] == run_id and r["key"] == key)


def points(project: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    history = client_for(project).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in history)


LOG_POINTS = f"import nbtrack\nfor i in range({POINTS}):\n    nbtrack.log(step=i, loss=i / {POINTS})"
EXPECTED = [(i, i / POINTS) for i in range(POINTS)]


# -- item 2: many events before a run's start --------------------------------------------------


def test_a_first_cell_logging_30000_points_is_delivered_to_mlflow_and_delta(project):
    """The run's start is written after the cell's 30,000 points: all of them arrive."""
    import papermill

    write_notebook(project / "long.ipynb", ["%load_ext nbtrack", "%nbtrack end", LOG_POINTS])
    papermill.execute_notebook(str(project / "long.ipynb"), str(project / "long-out.ipynb"),
                               cwd=str(project), progress_bar=False)

    def the_run() -> Any:  # the run after `%nbtrack end` (the first cell's run holds no metrics)
        runs = [r for r in all_runs(project) if "loss" in r.data.metrics]
        return runs[0] if len(runs) == 1 else None

    def delivered() -> bool:
        run = the_run()
        return bool(run and run.info.status == "FINISHED"
                    and len(lake_points(project, run.info.run_id, "loss")) == POINTS)

    wait_for(delivered, timeout=240, interval=1.0)
    run = the_run()
    assert run is not None and run.info.status == "FINISHED"
    assert points(project, run.info.run_id, "loss") == EXPECTED
    assert lake_points(project, run.info.run_id, "loss") == EXPECTED


def test_recover_delivers_a_killed_plain_kernel_that_logged_30000_points(project):
    """A kernel that never learnt its notebook (so never wrote a run start) is killed after a
    long cell: `nbtrack recover` delivers every point, as a KILLED run in 'untitled'."""
    km, kc = start_kernel(project)
    try:
        execute(kc, "%load_ext nbtrack")
        daemon = freeze_delivery(project)
        execute(kc, LOG_POINTS)
    finally:
        kill_kernel_and_delivery(km, kc, daemon)
    out = recover(project)
    assert "delivered 1 of 1 journal(s), 1 run(s)" in out and "still open" not in out
    (run,) = all_runs(project)
    assert run.info.status == "KILLED"
    assert client_for(project).get_experiment(run.info.experiment_id).name == "untitled"
    assert points(project, run.info.run_id, "loss") == EXPECTED
    assert lake_points(project, run.info.run_id, "loss") == EXPECTED


# -- item 3: a torn last line -----------------------------------------------------------------


@pytest.mark.parametrize("notebook_known", [True, False], ids=["notebook-known", "notebook-unknown"])
def test_a_kernel_killed_mid_write_is_recovered_without_its_torn_line(project, notebook_known):
    nb = project / "torn.ipynb"
    if notebook_known:
        write_notebook(nb, ["x = 1"])
    km, kc = start_kernel(project, **({"NBTRACK_NOTEBOOK": str(nb)} if notebook_known else {}))
    try:
        execute(kc, "%load_ext nbtrack")
        daemon = freeze_delivery(project)
        # One cell: a kernel that does not know its notebook has not written the run's start yet.
        execute(kc, "import nbtrack\nfor i in range(5):\n    nbtrack.log(step=i, loss=i / 10)")
    finally:
        kill_kernel_and_delivery(km, kc, daemon)
    journal = the_journal(project)
    last = journal.read_bytes().splitlines()[-1]
    with open(journal, "ab") as f:  # what the kernel was writing when it died: half a line
        f.write(last[: len(last) // 2])
    out = recover(project)
    assert "delivered 1 of 1 journal(s), 1 run(s)" in out
    (run,) = all_runs(project)
    assert run.info.status == "KILLED"
    experiment = client_for(project).get_experiment(run.info.experiment_id).name
    assert experiment == ("torn.ipynb" if notebook_known else "untitled")
    assert points(project, run.info.run_id, "loss") == [(i, i / 10) for i in range(5)]
    assert lake_points(project, run.info.run_id, "loss") == [(i, i / 10) for i in range(5)]
    assert out.count("torn") == 1 and "skipped" in out  # said once
    assert "torn" not in recover(project)  # said once: a second recover has nothing to say


# -- item 8: a backlog the last kernel leaves while the store is down ---------------------------


def start_server(project: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{project / 'server.db'}", "--workers", "1"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(20)


def daemon_pid(project: Path) -> int | None:
    import psutil

    try:
        pid = int((project / ".nbtrack" / "delivery.pid").read_text())
        return pid if psutil.pid_exists(pid) else None
    except (OSError, ValueError):
        return None


def server_up(uri: str) -> bool:
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(uri).search_experiments(max_results=1)
        return True
    except Exception:  # noqa: BLE001 - still starting
        return False


def server_points(uri: str, experiment: str, key: str) -> tuple[str, list[tuple[int, float]]] | None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    try:
        found = client.get_experiment_by_name(experiment)
        runs = client.search_runs([found.experiment_id]) if found else []
    except Exception:  # noqa: BLE001 - the server is still starting
        return None
    if len(runs) != 1:
        return None
    history = client.get_metric_history(runs[0].info.run_id, key)
    return runs[0].info.status, sorted((m.step, m.value) for m in history)


def run_with_store_down(project: Path, uri: str, **env: str) -> list[str]:
    """A kernel logs five points while the store is down, then ends; returns what its cells printed."""
    nb = project / "down.ipynb"
    write_notebook(nb, ["x = 1"])
    km, kc = start_kernel(project, MLFLOW_TRACKING_URI=uri, NBTRACK_NOTEBOOK=str(nb),
                          NBTRACK_DAEMON_IDLE="1", **env)
    printed = []
    try:
        printed.append(execute(kc, "%load_ext nbtrack"))
        for i in range(5):
            printed.append(execute(kc, f"import time\ntime.sleep(0.3)\nval_loss = {i / 10}"))

        def status_with_problem() -> str:
            out = execute(kc, "%nbtrack status")
            return out if "problem:" in out else ""

        printed.append(wait_for(status_with_problem, timeout=30))
        printed.append(execute(kc, "time.sleep(1.1)\ndone = True"))  # the kernel looks at delivery again
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    return printed


@pytest.fixture
def quick_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's own MLflow client asks a server that is down without retrying for minutes."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def test_a_backlog_left_by_the_last_kernel_is_retried_until_the_store_is_back(project, quick_client):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    printed = run_with_store_down(project, uri)
    down = f"mlflow delivery failing: cannot reach {uri}; events are kept and retried"
    warnings = [line for out in printed for line in out.splitlines() if line.startswith("nbtrack:")]
    assert warnings == [f"nbtrack: {down}"]  # one readable line, shown once by the kernel
    status = printed[-2]
    assert f"problem: {down} (failing since " in status and "attempt(s), next in " in status

    time.sleep(4)  # the last kernel ended; idle time (1 s) is long past
    assert daemon_pid(project) is not None, "the delivery process left its backlog behind"
    out = recover(project)
    assert "delivered 0 of 1 journal(s), 0 run(s); 1 still open:" in out
    assert f"{down} (failing since " in out
    assert "the delivery process (pid" in out and "keeps delivering them" in out

    server = start_server(project, port)
    try:
        expected = ("FINISHED", [(i, i / 10) for i in range(5)])
        wait_for(lambda: server_points(uri, "down.ipynb", "val_loss") == expected, timeout=150, interval=1.0)
        assert server_points(uri, "down.ipynb", "val_loss") == expected
    finally:
        stop_server(server)
    assert wait_for(lambda: daemon_pid(project) is None, timeout=30), "delivered, yet still running"


def test_the_delivery_process_stops_retrying_after_its_window_and_says_so(project, quick_client):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    run_with_store_down(project, uri, NBTRACK_DELIVERY_RETRY_HOURS="0.001")  # 3.6 s
    assert wait_for(lambda: daemon_pid(project) is None, timeout=60), "still retrying after its window"
    log = (project / ".nbtrack" / "delivery.log").read_text()
    assert "giving up" in log and "`nbtrack recover`" in log
    out = recover(project)
    assert "1 still open:" in out and f"cannot reach {uri}" in out
    assert "nothing retries them now" in out
    server = start_server(project, port)
    try:
        assert wait_for(lambda: server_up(uri), timeout=60, interval=0.5)
        out = recover(project)
        assert "delivered 1 of 1 journal(s), 1 run(s)" in out and "still open" not in out
        assert server_points(uri, "down.ipynb", "val_loss") == ("FINISHED", [(i, i / 10) for i in range(5)])
    finally:
        stop_server(server)


# -- item 9: a delivery process that cannot start -------------------------------------------------


def test_a_delivery_process_that_cannot_start_is_one_warning_with_reason_and_log(
        shell, project, monkeypatch, capsys, tmp_path):
    broken = tmp_path / "python3"  # an interpreter that cannot start, as a broken install gives
    broken.write_text("#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
                      "echo 'ImportError: libpython3.11.so.1.0: cannot open shared object file' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("NBTRACK_DELIVERY", "process")
    monkeypatch.setattr(sys, "executable", str(broken))
    write_notebook(project / "nb.ipynb", ["x = 1"])
    monkeypatch.setenv("NBTRACK_NOTEBOOK", str(project / "nb.ipynb"))
    shell.run_cell("%load_ext nbtrack")
    for i in range(4):
        assert shell.run_cell(f"import time\ntime.sleep(0.6)\nval_loss = {i}").success
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "delivery process" in line]
    log = project / ".nbtrack" / "delivery.log"
    assert warnings == [f"nbtrack: the delivery process exited with an error (ImportError: libpython3.11.so.1.0: "
                        f"cannot open shared object file); events are kept in the journal and delivered "
                        f"once it runs; see {log}"]
    shell.run_cell("%nbtrack status")
    assert "problem: the delivery process exited with an error (ImportError" in capsys.readouterr().out
