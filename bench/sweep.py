"""Benchmark: a sweep with W workers against the same executions run serially by plain papermill.

    python bench/sweep.py [--executions 8] [--workers 2] [--sleep 1.0]

Measures, in a fresh project (a temporary git repository):

1. plain papermill, serially, in one process (papermill imported once): the
   baseline a user would write as a loop;
2. ``nbtrack sweep --workers W`` (the command line, end to end: MLflow store,
   parent and child runs, capture in every kernel, delivery of every run's final
   status and metrics);
3. ``nbtrack sweep --workers 1``: its difference from (1), per execution. It is
   not tracking's cost alone: the worker starts each kernel while the execution
   before it runs, which plain papermill cannot, so it can come out negative.

The notebook is tests/notebooks_for_tests/sweep_grid.ipynb: a parameters cell,
``time.sleep(sleep_s)`` (stand-in for work that does not need this CPU, e.g. a
query or a GPU), and two metrics. The goal is a speed-up of at least 1.8x with
2 workers on 2 cores. Prints one line per measurement and a one-line summary.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "tests" / "notebooks_for_tests" / "sweep_grid.ipynb"


def serial_papermill(project: Path, n: int, sleep: float) -> float:
    """Plain papermill in a child process (so its imports count, as for a user)."""
    code = (
        "import sys, papermill\n"
        f"for i in range({n}):\n"
        f"    papermill.execute_notebook('nb.ipynb', f'plain/{{i}}.ipynb', progress_bar=False,\n"
        f"        parameters={{'x': i, 'sleep_s': {sleep}}})\n"
    )
    (project / "plain").mkdir(exist_ok=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=project, check=True, capture_output=True)
    return time.perf_counter() - started


def nbtrack_sweep(project: Path, n: int, sleep: float, workers: int) -> float:
    values = ",".join(str(i) for i in range(n))
    argv = [sys.executable, "-m", "nbtrack", "sweep", "nb.ipynb", "-p", f"x={values}",
            "-p", f"sleep_s={sleep}", "--workers", str(workers), "--no-progress"]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or f"{n} finished, 0 failed" not in done.stdout:
        sys.exit(f"nbtrack sweep failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def stop_delivery(project: Path) -> None:
    pid_file = project / ".nbtrack" / "delivery.pid"
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds of work per execution")
    args = parser.parse_args()
    n, workers = args.executions, args.workers
    os.environ.setdefault("NBTRACK_DAEMON_IDLE", "5")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "NBTRACK_TRACKING_URI"):
        os.environ.pop(name, None)
    load = os.getloadavg()[0]
    print(f"{n} executions of {NOTEBOOK.name} (sleep {args.sleep:g} s each), "
          f"{os.cpu_count()} CPUs, load average {load:.1f}")
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-") as tmp:
        project = Path(tmp)
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        (project / "nb.ipynb").write_bytes(NOTEBOOK.read_bytes())
        try:
            # a first, untimed sweep creates the store and warms the OS caches for all three
            nbtrack_sweep(project, 1, 0.0, 1)
            plain = serial_papermill(project, n, args.sleep)
            print(f"plain papermill, serial      : {plain:6.1f} s  ({plain / n:.2f} s/execution)")
            parallel = nbtrack_sweep(project, n, args.sleep, workers)
            print(f"nbtrack sweep --workers {workers:<4} : {parallel:6.1f} s  "
                  f"(speed-up {plain / parallel:.2f}x)")
            single = nbtrack_sweep(project, n, args.sleep, 1)
            overhead = (single - plain) / n
            print(f"nbtrack sweep --workers 1    : {single:6.1f} s  "
                  f"(vs plain {overhead:+.2f} s/execution, "
                  f"{100 * (single - plain) / plain:+.0f}%)")
        finally:
            stop_delivery(project)
    goal = "met" if plain / parallel >= 1.8 else "NOT met"
    print(f"summary: {n} executions, plain serial {plain:.1f} s, sweep -w {workers} "
          f"{parallel:.1f} s = {plain / parallel:.2f}x (goal 1.8x {goal}), -w 1 vs plain "
          f"{overhead:+.2f} s/execution, load {load:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
