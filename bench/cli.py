"""Benchmark: how fast the CLI refuses bad arguments, against what importing MLflow costs.

    python bench/cli.py [--repeat 3]

In a fresh project with a real MLflow SQLite store (created by MLflow, with one run), each
command below is run as a user runs it (``python -m nbtrack ...``, a new process each
time) and timed, median of ``--repeat``. Each fails on its arguments: a missing notebook,
an unknown, malformed or empty run id, an empty ``-p`` value. The reference is the same
project's ``nbtrack runs NOTEBOOK`` that succeeds (it must open MLflow), and a bare
``python -c "import mlflow"``. Ends with a one-line summary.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAILING = [
    ["runs", "missing.ipynb"],
    ["compare", "0123abcd"],
    ["compare", "run-1"],
    ["rerun", "0123abcd"],
    ["rerun", "0123abcd", "-p", "x="],
    ["sweep", "missing.ipynb", "-p", "x=1"],
    ["sweep", "nb.ipynb", "-p", "x="],
    ["demo", "-p", "max_depth="],
]


def timed(argv: list[str], cwd: Path, repeat: int) -> tuple[float, int]:
    """Median wall time of ``argv`` in a new process, and its exit code."""
    times, code = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        code = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=300).returncode
        times.append(time.perf_counter() - start)
    return statistics.median(times), code


def make_project(root: Path) -> None:
    """A git project with a notebook and one run of it in a real embedded store."""
    import nbformat

    from nbtrack.project import Project
    from nbtrack.store import get_or_create_experiment, open_client

    subprocess.run(["git", "init", "-q", str(root)], check=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]})]
    nbformat.write(nb, root / "nb.ipynb")
    project = Project(root)
    project.ensure()
    client = open_client(project.default_tracking_uri)
    experiment = get_or_create_experiment(client, project.experiment_name(root / "nb.ipynb"), project)
    client.set_terminated(client.create_run(experiment).info.run_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-cli-") as tmp:
        root = Path(tmp)
        make_project(root)
        failing = []
        for argv in FAILING:
            seconds, code = timed([sys.executable, "-m", "nbtrack", *argv], root, args.repeat)
            failing.append(seconds)
            print(f"{seconds:6.2f} s  exit {code}  nbtrack {' '.join(argv)}")
        ok, code = timed([sys.executable, "-m", "nbtrack", "runs", "nb.ipynb"], root, args.repeat)
        print(f"{ok:6.2f} s  exit {code}  nbtrack runs nb.ipynb (succeeds: opens MLflow)")
        mlflow, _ = timed([sys.executable, "-c", "import mlflow"], root, args.repeat)
        print(f"{mlflow:6.2f} s  python -c 'import mlflow'")
    print(f"summary: {len(FAILING)} commands with bad arguments answer in "
          f"{min(failing):.2f}-{max(failing):.2f} s (median of {args.repeat}); a command that "
          f"opens the store takes {ok:.2f} s, importing mlflow alone {mlflow:.2f} s")


if __name__ == "__main__":
    main()
