"""Benchmark: the everyday commands and the refusal of bad arguments, against importing MLflow.

    python bench/cli.py [--repeat 3] [--runs 1000]

A git project with a notebook of ``--runs`` runs (1,000 by default), each with params and
metric curves, delivered as in use: into the embedded MLflow SQLite store (bulk-loaded
through MLflow's own models, as ``bench/lake.py`` does) and into the project's Delta lake
(through nbtrack's Delta sink from real journals); every journal delivered, so the lake is
current. Each command is run as a user runs it (``python -m nbtrack ...``, a new process
each time, bytecode compiled as in an installed package) and timed, median of ``--repeat``
after one untimed run:

- ``nbtrack runs NOTEBOOK`` (the newest 20 of the 1,000), ``nbtrack compare`` of 5 runs,
  ``nbtrack lake show``, ``nbtrack recover`` with nothing to deliver, and a not-found
  error (``nbtrack runs missing.ipynb``); goals: each under 0.5 s on a quiet machine, the
  not-found error under 0.3 s;
- commands failing on their arguments (a missing notebook, an unknown, malformed or empty
  run id, an empty ``-p`` value);
- in the same run, ``python -c "import mlflow"`` and ``nbtrack runs`` with the lake switched
  off (``NBTRACK_LAKE=false``: MLflow answers, the path without the lake).

The machine's load average is printed with the figures. Ends with a one-line summary.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

NOTEBOOK = "notebooks/train.ipynb"
FAILING = [
    ["runs", "missing.ipynb"],
    ["compare", "0123abcd"],
    ["compare", "run-1"],
    ["rerun", "0123abcd"],
    ["rerun", "0123abcd", "-p", "x="],
    ["sweep", "missing.ipynb", "-p", "x=1"],
    ["sweep", NOTEBOOK, "-p", "x="],
    ["demo", "-p", "max_depth="],
]
GOAL_S, NOT_FOUND_GOAL_S = 0.5, 0.3


def timed(argv: list[str], cwd: Path, repeat: int, **extra_env: str) -> tuple[float, int]:
    """Median wall time of ``argv`` in a new process, and its exit code (after one untimed run:
    an installed package has its bytecode compiled, so every run may write it, as Python does)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | extra_env
    subprocess.run(argv, cwd=cwd, capture_output=True, timeout=300, env=env)
    times, code = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=300, env=env)
        times.append(time.perf_counter() - start)
        code = done.returncode
    return statistics.median(times), code


def make_project(root: Path, work: Path, runs: int) -> list[str]:
    """A git project whose notebook has ``runs`` runs in MLflow and in a current lake; their ids."""
    import nbformat
    from lake import EXPERIMENT, ingest, load_mlflow, write_journals

    from nbtrack.project import Project

    assert EXPERIMENT == NOTEBOOK
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]})]
    (root / "notebooks").mkdir()
    nbformat.write(nb, root / NOTEBOOK)
    project = Project(root)
    project.ensure()
    # Journals delivered elsewhere: the project has no journal left, so its lake is current.
    journals, run_ids, specs = write_journals(work / "journal", runs)
    ingest(str(project.lake_dir), journals, run_ids)
    load_mlflow(project.default_tracking_uri, specs)
    return [spec["id"] for spec in specs]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    nbtrack = [sys.executable, "-m", "nbtrack"]
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-cli-") as tmp:
        root, work = Path(tmp) / "project", Path(tmp) / "work"
        root.mkdir()
        started = time.perf_counter()
        ids = make_project(root, work, args.runs)
        print(f"project with {args.runs:,} runs (MLflow + lake) made in {time.perf_counter() - started:.0f} s")
        print(load())
        chosen = [run_id[:8] for run_id in random.Random(1).sample(ids, 5)]
        everyday = {
            f"nbtrack runs {NOTEBOOK} ({args.runs:,} runs)": ["runs", NOTEBOOK],
            "nbtrack compare (5 runs)": ["compare", *chosen],
            "nbtrack lake show": ["lake", "show"],
            "nbtrack recover (nothing to do)": ["recover"],
            "nbtrack runs missing.ipynb (not found)": ["runs", "missing.ipynb"],
        }
        figures = {}
        for label, argv in everyday.items():
            seconds, code = timed([*nbtrack, *argv], root, args.repeat)
            figures[label] = seconds
            print(f"{seconds:6.2f} s  exit {code}  {label}")
        failing = []
        for argv in FAILING:
            seconds, code = timed([*nbtrack, *argv], root, args.repeat)
            failing.append(seconds)
            print(f"{seconds:6.2f} s  exit {code}  nbtrack {' '.join(argv)}")
        store, code = timed([*nbtrack, "runs", NOTEBOOK], root, args.repeat, NBTRACK_LAKE="false")
        print(f"{store:6.2f} s  exit {code}  NBTRACK_LAKE=false nbtrack runs {NOTEBOOK} (MLflow answers)")
        mlflow, _ = timed([sys.executable, "-c", "import mlflow"], root, args.repeat)
        print(f"{mlflow:6.2f} s  python -c 'import mlflow'")
        print(load())
    runs_s, compare_s, show_s, recover_s, not_found = figures.values()
    met = max(figures.values()) < GOAL_S and not_found < NOT_FOUND_GOAL_S
    print(f"SUMMARY runs {runs_s:.2f} s, compare {compare_s:.2f} s, lake show {show_s:.2f} s, "
          f"recover {recover_s:.2f} s, not found {not_found:.2f} s; bad arguments "
          f"{min(failing):.2f}-{max(failing):.2f} s; vs import mlflow {mlflow:.2f} s, runs through "
          f"MLflow {store:.2f} s (median of {args.repeat}; {load()}) | goal (<{GOAL_S} s each, "
          f"not found <{NOT_FOUND_GOAL_S} s) {'met' if met else 'NOT met'}")

if __name__ == "__main__":
    main()
