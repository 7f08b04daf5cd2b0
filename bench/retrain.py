"""Benchmark: ``nbtrack retrain`` when nothing moved, on a notebook with 1,000 runs.

    python bench/retrain.py [--repeat 5] [--runs 1000]

A git project whose notebook has ``--runs`` runs (1,000 by default) delivered as in use: into
the embedded MLflow SQLite store (bulk-loaded with MLflow's own models, as ``bench/lake.py``
does) and into the project's Delta lake through nbtrack's Delta sink from real journals, every
run having read ``data/train`` (a Delta table written with ``deltalake``) through
``nbtrack.read_delta`` (an ``input`` event; the newest run's input is in MLflow too). The
check a cron job or ``--watch`` makes, ``nbtrack retrain notebooks/train.ipynb --metric acc``,
is run as a user runs it (a new process each time, bytecode compiled as in an installed
package) and timed, median of ``--repeat`` after one untimed run; goal: under 1 s. In the same
run: the check with the lake switched off (the store's file answers), the check in Python
(``nbtrack.retrain``) and whether it imported MLflow, and ``python -c "import mlflow"``.

The machine's load average is printed with the figures. Ends with a one-line summary.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli import load, timed  # noqa: E402

NOTEBOOK = "notebooks/train.ipynb"
METRIC = "acc"
GOAL_S = 1.0


def make_project(root: Path, work: Path, runs: int) -> str:
    """The project (see the module); returns the newest run's id (the champion)."""
    import nbformat
    import pyarrow as pa
    from deltalake import write_deltalake
    from lake import EXPERIMENT, ingest, load_mlflow, write_journals

    from nbtrack.journal import JournalWriter
    from nbtrack.project import Project
    from nbtrack.sinks.mlflow import _log_input
    from nbtrack.store import open_client

    assert EXPERIMENT == NOTEBOOK
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import nbtrack\ndf = nbtrack.read_delta('data/train')")]
    (root / "notebooks").mkdir()
    nbformat.write(nb, root / NOTEBOOK)
    table = str(root / "data" / "train")
    write_deltalake(table, pa.table({"x": list(range(100)), "y": [i % 2 for i in range(100)]}))
    project = Project(root)
    project.ensure()
    journals, run_ids, specs = write_journals(work / "journal", runs)
    reads = JournalWriter(work / "journal", "bench-inputs")  # each run's read_delta of data/train
    reads.append("session_start", pid=os.getpid(), host="bench", python="3", version="bench")
    read = {"table_uri": table, "version": 0, "schema_hash": "bench", "rows": 100, "profile": {}}
    for key in run_ids:
        reads.append("input", run=key, **read)
    reads.append("session_end")
    reads.close()
    ingest(str(project.lake_dir), [*journals, reads.path], run_ids)
    load_mlflow(project.default_tracking_uri, specs)
    champion = str(specs[-1]["id"])
    _log_input(open_client(project.default_tracking_uri), champion, read)
    return champion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    check = [sys.executable, "-m", "nbtrack", "retrain", NOTEBOOK, "--metric", METRIC]
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-retrain-") as tmp:
        root, work = Path(tmp) / "project", Path(tmp) / "work"
        root.mkdir()
        started = time.perf_counter()
        champion = make_project(root, work, args.runs)
        print(f"project with {args.runs:,} runs (MLflow + lake) made in {time.perf_counter() - started:.0f} s")
        print(load())
        said = subprocess.run(check, cwd=root, capture_output=True, text=True, timeout=300)
        expected = f"inputs unchanged since run {champion} (data/train v0); nothing to retrain"
        if said.returncode != 0 or said.stdout.strip() != expected:
            sys.exit(f"unexpected answer (exit {said.returncode}): {said.stdout}{said.stderr}")
        print(f"  {said.stdout.strip()}")
        lake_s, code = timed(check, root, args.repeat)
        print(f"{lake_s:6.2f} s  exit {code}  nbtrack retrain {NOTEBOOK} --metric {METRIC} ({args.runs:,} runs)")
        store_s, code = timed(check, root, args.repeat, NBTRACK_LAKE="false")
        print(f"{store_s:6.2f} s  exit {code}  the same, NBTRACK_LAKE=false (the store's SQLite file answers)")
        probe = ("import sys, time; t = time.perf_counter(); import nbtrack; "
                 f"d = nbtrack.retrain({NOTEBOOK!r}, {METRIC!r}); "
                 "print(d.outcome, round(time.perf_counter() - t, 3), 'mlflow' in sys.modules)")
        answers = [subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True,
                                  timeout=300).stdout.split() for _ in range(args.repeat)]
        python_s = statistics.median(float(a[1]) for a in answers)
        imported = any(a[2] == "True" for a in answers)
        print(f"{python_s:6.2f} s  nbtrack.retrain() in a fresh interpreter: {answers[0][0]}, "
              f"MLflow {'imported' if imported else 'not imported'}")
        mlflow_s, _ = timed([sys.executable, "-c", "import mlflow"], root, args.repeat)
        print(f"{mlflow_s:6.2f} s  python -c 'import mlflow'")
        print(load())
    met = lake_s < GOAL_S and store_s < GOAL_S
    print(f"SUMMARY unchanged check on {args.runs:,} runs: {lake_s:.2f} s (lake), {store_s:.2f} s (lake off), "
          f"{python_s:.2f} s in Python, MLflow {'imported' if imported else 'not imported'}; vs import mlflow "
          f"{mlflow_s:.2f} s (median of {args.repeat}; {load()}) | goal (<{GOAL_S:g} s) "
          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
