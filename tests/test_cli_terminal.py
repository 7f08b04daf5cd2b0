"""The command line's tables in a real terminal: every command run in a pseudo-terminal of 80
and 120 columns, on the quickstart notebook (5 params, 8 metrics) swept by real kernels into
4 runs. What a user sees: no line wider than the window, each run's short id and status on
one line, the params that differ, the sweep's metric; piped output keeps every value whole.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import stop_daemons
from rich.cells import cell_len

from nbtrack.cli.tables import number

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "nbtrack" / "examples" / "quickstart.ipynb"
WIDTHS = [80, 120]
GRID = {"max_depth": ["1", "2"], "learning_rate": ["0.1", "0.05"]}
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x1b\x07]*(\x1b\\|\x07)")


@dataclass
class Screen:
    """What a command printed to a terminal, escape sequences removed."""

    exit_code: int
    lines: list[str]
    stderr: str

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def line_with(self, word: str) -> str:
        found = [line for line in self.lines if word in line]
        assert len(found) == 1, (word, self.text)
        return found[0]

    def row(self, run_id: str, *, first: bool = False) -> str:
        """The one line of a table that starts with ``run_id`` (after a row number, in a
        sweep's table); ``first``: the first of several (compare's runs table, then its headers)."""
        found = [line for line in self.lines if run_id in line.split()[:2]]
        assert found and (first or len(found) == 1), (run_id, self.text)
        return found[0]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NBTRACK_", "MLFLOW_", "JPY_SESSION")) and k not in ("COLUMNS", "LINES")}
    return {**env, "TERM": "xterm-256color", "NBTRACK_DAEMON_IDLE": "3"}


def in_terminal(cwd: Path, columns: int, *argv: str, timeout: float = 280) -> Screen:
    """Run ``nbtrack ARGV`` with stdout on a pseudo-terminal ``columns`` wide (stderr apart)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "nbtrack", *argv], cwd=cwd, stdin=slave,
                            stdout=slave, stderr=subprocess.PIPE, env=_env())
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other side closed: the command ended
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
    os.close(master)
    code = proc.wait(timeout=30)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    text = _ESCAPES.sub("", output.decode()).replace("\r\n", "\n")
    return Screen(code, text.splitlines(), stderr)


def piped(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbtrack", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=280, env=_env())


@dataclass
class Swept:
    root: Path
    sweep_id: str
    screen: Screen  # the sweep's own output, in an 80-column terminal
    runs: list[dict]  # `nbtrack runs --json`: the 4 executions and the sweep's parent run

    @property
    def children(self) -> list[dict]:
        return [r for r in self.runs if r["parent_run_id"]]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Iterator[Swept]:
    root = tmp_path_factory.mktemp("tables") / "proj"
    (root / ".nbtrack").mkdir(parents=True)
    shutil.copy(empty_store, root / ".nbtrack" / "mlflow.db")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    shutil.copy(QUICKSTART, root / "quickstart.ipynb")
    try:
        grid = [arg for name, values in GRID.items() for arg in ("-p", f"{name}={','.join(values)}")]
        screen = in_terminal(root, 80, "sweep", "quickstart.ipynb", *grid, "--workers", "2",
                             "--metric", "val_acc", "--no-progress")
        assert screen.exit_code == 0, screen.text + screen.stderr
        sweep_id = screen.lines[0].split()[1]
        listed = piped(root, "runs", "quickstart.ipynb", "--json")
        assert listed.returncode == 0, listed.stderr
        yield Swept(root, sweep_id, screen, json.loads(listed.stdout))
    finally:
        stop_daemons(root.parent)


def _assert_fits(screen: Screen, columns: int) -> None:
    assert screen.exit_code == 0, screen.text + screen.stderr
    wide = [line for line in screen.lines if cell_len(line) > columns]
    assert not wide, f"lines wider than {columns} columns:\n" + "\n".join(wide)


def _assert_runs_on_their_lines(screen: Screen, runs: list[dict]) -> None:
    """Each run's short id and its whole status word on one line, with its differing params."""
    for run in runs:
        line = screen.row(run["run_id"][:8])
        assert run["run_id"] not in line  # the terminal gets the 8 characters every command takes
        assert run["status"] in line.split(), line
        if run["parent_run_id"]:
            for name in GRID:
                assert run["params"][name] in line.split(), (name, line)


# -- every command in a real terminal -------------------------------------------------------------


def test_the_sweep_table_fits_80_columns_best_first(swept: Swept):
    screen = swept.screen
    _assert_fits(screen, 80)
    _assert_runs_on_their_lines(screen, swept.children)
    best = max(swept.children, key=lambda r: r["metrics"]["val_acc"])
    assert f"★ {number(best['metrics']['val_acc'])}" in screen.row(best["run_id"][:8])
    rows = [line for line in screen.lines if any(r["run_id"][:8] in line for r in swept.children)]
    assert best["run_id"][:8] in rows[0]  # sorted by --metric, best first
    assert any(line.startswith("not shown:") and "--json" in line for line in screen.lines)
    assert screen.lines[-1] == f"sweep {swept.sweep_id}: 4 finished, 0 failed"


@pytest.mark.parametrize("columns", WIDTHS)
def test_a_resumed_sweep_prints_the_same_table(swept: Swept, columns: int):
    screen = in_terminal(swept.root, columns, "sweep", "--resume", swept.sweep_id)
    _assert_fits(screen, columns)
    _assert_runs_on_their_lines(screen, swept.children)
    assert "★" in screen.text  # ordered and marked by the sweep's own --metric
    assert "already finished" in " ".join(screen.stderr.split())


@pytest.mark.parametrize("columns", WIDTHS)
def test_runs(swept: Swept, columns: int):
    screen = in_terminal(swept.root, columns, "runs", "quickstart.ipynb")
    _assert_fits(screen, columns)
    _assert_runs_on_their_lines(screen, swept.runs)
    assert "learning_" in screen.text and "depth" in screen.text
    header = next(line for line in screen.lines if line.startswith("run id"))
    assert "val_acc" in header  # the sweep's --metric comes first
    for run in swept.children:
        assert number(run["metrics"]["val_acc"]) in screen.row(run["run_id"][:8])
    footer = screen.lines[-1]
    assert footer.startswith("not shown:") and "--columns" in footer and "--json" in footer
    assert "test_size" not in header  # the same in every run: named in the footer instead


def test_runs_columns_picks_what_is_shown(swept: Swept):
    screen = in_terminal(swept.root, 80, "runs", "quickstart.ipynb", "--columns",
                         "seed,test_f1", "--metric", "test_f1")
    _assert_fits(screen, 80)
    header = next(line for line in screen.lines if line.startswith("run id"))
    assert header.split()[-2:] == ["seed", "test_f1"] and "val_acc" not in screen.text
    wrong = in_terminal(swept.root, 80, "runs", "quickstart.ipynb", "--columns", "nope")
    assert wrong.exit_code == 2 and "no param or metric 'nope'" in wrong.stderr


@pytest.mark.parametrize("columns", WIDTHS)
def test_compare_keeps_runs_as_columns(swept: Swept, columns: int):
    ids = [r["run_id"][:8] for r in swept.children]
    screen = in_terminal(swept.root, columns, "compare", *ids)
    _assert_fits(screen, columns)
    for run in swept.children:
        assert run["status"] in screen.row(run["run_id"][:8], first=True).split()
    params = next(line for line in screen.lines if line.startswith("learning_rate ≠"))
    assert params.split()[2:] == [r["params"]["learning_rate"] for r in swept.children]
    heads = screen.lines[screen.lines.index("metrics: last (best) · ★ best run") + 1]
    assert heads.split() == ids  # the four runs side by side


def test_compare_with_more_runs_than_fit_pages_them(swept: Swept):
    ids = [r["run_id"][:8] for r in swept.runs]  # the parent too: five runs
    screen = in_terminal(swept.root, 80, "compare", *ids)
    _assert_fits(screen, 80)
    pages = [line for line in screen.lines if "metrics: last (best)" in line]
    assert len(pages) >= 2 and pages[0].startswith("runs 1–") and f"of {len(ids)} ·" in pages[0]
    assert "page at a time" in screen.lines[-1] and "compare fewer" in screen.lines[-1]


@pytest.mark.parametrize("columns", WIDTHS)
def test_lake_show_and_sql(swept: Swept, columns: int):
    screen = in_terminal(swept.root, columns, "lake", "show")
    _assert_fits(screen, columns)
    assert all(name in screen.text for name in ("runs", "metrics", "leaderboard"))
    screen = in_terminal(swept.root, columns, "lake", "sql", "SELECT * FROM runs")
    _assert_fits(screen, columns)
    for run in swept.runs:
        assert run["status"] in screen.row(run["run_id"][:8]).split()
    assert screen.lines[-1].startswith("not shown:") and "--csv" in screen.lines[-1]


@pytest.mark.parametrize("columns", WIDTHS)
def test_rerun_report(swept: Swept, columns: int):
    original = swept.children[0]
    screen = in_terminal(swept.root, columns, "rerun", original["run_id"][:8], "--no-progress")
    _assert_fits(screen, columns)
    assert screen.line_with(f"vs {original['run_id'][:8]}")
    for metric, value in original["metrics"].items():
        if metric.startswith("system/"):
            continue  # what the run cost is not in a reproducibility report
        assert screen.line_with(f"{metric} ").split() == [metric, number(value), number(value), "0",
                                                          "equal"]
    assert "8 equal" in screen.lines


# -- piped: what a script wants ---------------------------------------------------------------------


def test_piped_runs_keep_full_values_and_csv_has_every_column(swept: Swept):
    out = piped(swept.root, "runs", "quickstart.ipynb").stdout
    assert "…" not in out
    for run in swept.children:
        line = next(line for line in out.splitlines() if run["run_id"] in line)
        assert str(run["metrics"]["val_acc"]) in line and run["params"]["test_size"] in line
    rows = list(csv.DictReader(io.StringIO(piped(swept.root, "runs", "quickstart.ipynb",
                                                 "--csv").stdout)))
    assert {r["run_id"] for r in swept.runs} <= {r["run_id"] for r in rows}
    assert sum(k.startswith("params.") for k in rows[0]) == 5
    assert sum(k.startswith("metrics.") and not k.startswith("metrics.system/") for k in rows[0]) == 8
    sweep = piped(swept.root, "sweep", "--resume", swept.sweep_id, "--json")
    assert {r["run_id"] for r in json.loads(sweep.stdout)} == {r["run_id"] for r in swept.children}
    assert f"sweep {swept.sweep_id}: 4 finished" in sweep.stderr


def test_json_and_csv_wherever_a_table_is_printed(swept: Swept):
    ids = [r["run_id"] for r in swept.children]
    rows = list(csv.DictReader(io.StringIO(piped(swept.root, "compare", *ids, "--csv").stdout)))
    lr = next(r for r in rows if r["kind"] == "param" and r["key"] == "learning_rate")
    assert [lr[i] for i in ids] == [r["params"]["learning_rate"] for r in swept.children]
    best = next(r for r in rows if r["kind"] == "metric.last" and r["key"] == "val_acc")
    assert [float(best[i]) for i in ids] == [r["metrics"]["val_acc"] for r in swept.children]
    tables = json.loads(piped(swept.root, "lake", "show", "--json").stdout)
    assert {"runs", "metrics", "leaderboard"} <= {t["table"] for t in tables}
    assert "leaderboard" in piped(swept.root, "lake", "show", "--csv").stdout
    found = piped(swept.root, "lake", "sql", "SELECT run_id, status FROM runs", "--csv").stdout
    assert {r["run_id"] for r in swept.runs} <= {r["run_id"] for r in csv.DictReader(io.StringIO(found))}
    found = json.loads(piped(swept.root, "lake", "sql", "SELECT run_id FROM runs", "--json").stdout)
    assert {r["run_id"] for r in swept.runs} <= {r["run_id"] for r in found}


def test_wide_in_a_terminal_prints_everything_whole(swept: Swept):
    screen = in_terminal(swept.root, 80, "runs", "quickstart.ipynb", "--wide")
    assert screen.exit_code == 0, screen.stderr
    header = next(line for line in screen.lines if line.startswith("run id"))
    assert all(name in header for name in ("n_estimators", "seed", "test_size", "train_loss"))
    for run in swept.children:
        assert str(run["metrics"]["val_acc"]) in screen.line_with(run["run_id"])
    assert "…" not in screen.text and "not shown" not in screen.text
