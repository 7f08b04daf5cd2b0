"""Commands that fail on their arguments say so before importing MLflow or pandas (seconds).

Each case runs the real ``nbtrack`` command in a fresh interpreter, in a project that has a
store, and reads which heavy modules were imported when it exited: what a user sees is the
one-line message and the exit code, at once. (Timings: ``python bench/cli.py``.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_notebook

HEAVY = ("mlflow", "pandas")
MARK = "heavy modules imported: "
#: The CLI, reporting the heavy modules it imported on its way out.
WRAPPER = (
    "import atexit, sys\n"
    f"atexit.register(lambda: print({MARK!r} + ','.join(m for m in {HEAVY!r} if m in sys.modules),"
    " file=sys.stderr))\n"
    "from nbtrack.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def nbtrack(cwd: Path, *argv: str) -> tuple[int, str, list[str]]:
    """Exit code, stderr without the report, and the heavy modules the command imported."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    lines = done.stderr.splitlines()
    report = next(line for line in lines if line.startswith(MARK))
    imported = [m for m in report[len(MARK):].split(",") if m]
    return done.returncode, "\n".join(line for line in lines if line != report), imported


CASES = [
    (["runs", "missing.ipynb"], 3, "nbtrack runs: no notebook at missing.ipynb"),
    (["runs", "nb.ipynb", "--project", "/no/such/folder"], 3,
     "nbtrack runs: no project folder at /no/such/folder"),
    (["compare", "0123abcd"], 3, "nbtrack compare: no run 0123abcd in sqlite:///"),
    (["compare", "0123abcd", "feed"], 3, "nbtrack compare: no run 0123abcd in sqlite:///"),
    (["compare", "run-1"], 2, "nbtrack compare: 'run-1' is not a run id"),
    (["compare"], 2, "nbtrack compare: give at least one run id to compare"),
    (["rerun", "0123abcd"], 3, "nbtrack rerun: no run 0123abcd in sqlite:///"),
    (["rerun", "run-1"], 2, "nbtrack rerun: 'run-1' is not a run id"),
    (["rerun", "0123abcd", "-p", "x="], 2, "nbtrack rerun: -p x=: empty value"),
    (["sweep", "missing.ipynb", "-p", "x=1"], 3, "nbtrack sweep: notebook not found"),
    (["sweep", "nb.ipynb", "-p", "x="], 2, "nbtrack sweep: -p x=: empty value"),
    (["sweep", "nb.ipynb", "-p", "class=1"], 2, "nbtrack sweep: -p: 'class' is not a valid"),
    (["demo", "-p", "max_depth="], 2, "nbtrack demo: -p max_depth=: empty value"),
    (["lake", "show"], 3, "nbtrack lake: no lake at"),
    (["lake", "sql", "SELECT count(*) FROM runs"], 3, "nbtrack lake: no lake at"),
]


@pytest.mark.parametrize(("argv", "code", "message"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_arguments_fail_before_mlflow_or_pandas_is_imported(project, argv, code, message):
    write_notebook(project / "nb.ipynb", [("x = 1", ["parameters"])])
    assert (project / ".nbtrack" / "mlflow.db").is_file()  # a store to look ids up in
    exit_code, err, imported = nbtrack(project, *argv)
    assert exit_code == code, err
    assert err.startswith(message) and len(err.splitlines()) == 1, err
    assert imported == [], f"{' '.join(argv)} imported {imported} before failing"
    assert not (project / "nbtrack-demo").exists() and not (project / ".nbtrack" / "outputs").exists()
