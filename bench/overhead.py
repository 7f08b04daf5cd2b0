"""What nbtrack costs a kernel, measured against plain IPython and plain MLflow in the same run.

    python bench/overhead.py [--cells 2000] [--metrics 10000] [--mlflow-metrics N]

Prints: added median time per cell (goal <= 0.3 ms, 200 variables in the
namespace), ``%load_ext nbtrack`` time in a fresh process (goal < 0.3 s), memory
the kernel gains from loading it (goal < 40 MB), and the throughput of logging
metrics through nbtrack vs an ``mlflow.log_metric`` loop on the same kind of
store (goal >= 50x): both as the notebook's cell sees it and until every point
is delivered to SQLite. Ends with a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHILD_LOAD = textwrap.dedent("""
    import json, os, time, psutil
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    for i in range(200):
        shell.user_ns[f"var_{i}"] = i
    shell.run_cell("x = 1")
    rss0 = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    shell.run_cell("%load_ext nbtrack")
    load = time.perf_counter() - t0
    for i in range(20):
        shell.run_cell(f"val_loss = {i} / 10")
    rss1 = psutil.Process().memory_info().rss
    print(json.dumps({"load_s": load, "rss_mb": (rss1 - rss0) / 2**20}))
    shell.run_cell("%unload_ext nbtrack")
""")


def per_cell(cells: int, project: Path) -> tuple[float, float]:
    """Median run_cell time without and with nbtrack (same process, same namespace)."""
    from IPython.core.interactiveshell import InteractiveShell

    os.chdir(project)
    shell = InteractiveShell.instance()
    for i in range(200):
        shell.user_ns[f"var_{i}"] = i
    sources = [f"a_{i % 50} = {i}\nval_acc = {i} / {cells}" for i in range(cells)]

    def measure() -> float:
        times = []
        for source in sources:
            start = time.perf_counter()
            shell.run_cell(source, store_history=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    measure()  # warm up IPython's caches
    plain = measure()
    shell.run_cell("%load_ext nbtrack")
    tracked = measure()
    shell.run_cell("%unload_ext nbtrack")
    return plain, tracked


def load_and_memory(project: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD_LOAD], cwd=project, capture_output=True,
                         text=True, check=True, env={**os.environ, "NBTRACK_NOTEBOOK": ""})
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(n: int, n_mlflow: int, project: Path) -> tuple[float, float, float]:
    """Metrics per second: the notebook's logging cell with nbtrack.log, the same until every point
    is delivered to SQLite, and an mlflow.log_metric loop on the same kind of store."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    os.chdir(project)
    shell.run_cell("%load_ext nbtrack")
    shell.run_cell("import nbtrack; nbtrack.flush(120)")  # store and delivery process ready
    start = time.perf_counter()
    shell.run_cell(f"for i in range({n}):\n    nbtrack.log(step=i, bench_loss=i / {n})\n")
    in_cell = n / (time.perf_counter() - start)
    shell.run_cell("assert nbtrack.flush(300)")
    ours = n / (time.perf_counter() - start)
    shell.run_cell("%unload_ext nbtrack")

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'plain.db'}")
    mlflow.set_experiment("plain")
    with mlflow.start_run():
        mlflow.log_metric("warm", 0.0)
        start = time.perf_counter()
        for i in range(n_mlflow):
            mlflow.log_metric("bench_loss", i / n_mlflow, step=i)
        theirs = n_mlflow / (time.perf_counter() - start)
    return in_cell, ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=10000)
    parser.add_argument("--mlflow-metrics", type=int, default=10000,
                        help="points for the plain MLflow loop (its rate is what is compared)")
    args = parser.parse_args()
    os.environ.setdefault("NBTRACK_DAEMON_IDLE", "5")
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        subprocess.run(["git", "init", "-q", tmp], check=True)
        info = load_and_memory(project)
        plain, tracked = per_cell(args.cells, project)
        in_cell, ours, theirs = throughput(args.metrics, args.mlflow_metrics, project)
        os.chdir(Path(__file__).resolve().parent)
    added_ms = (tracked - plain) * 1000
    print(f"per cell: plain IPython {plain * 1000:.3f} ms, with nbtrack {tracked * 1000:.3f} ms "
          f"(+{added_ms:.3f} ms; goal <= 0.3 ms; {args.cells} cells, 200 variables)")
    print(f"%load_ext nbtrack: {info['load_s'] * 1000:.0f} ms in a fresh kernel (goal < 300 ms)")
    print(f"memory gained by the kernel: {info['rss_mb']:.1f} MB (goal < 40 MB)")
    print(f"logging {args.metrics} metrics: the notebook's cell with nbtrack.log {in_cell:,.0f}/s "
          f"= {in_cell / theirs:.0f}x mlflow.log_metric ({theirs:,.0f}/s; goal >= 50x); "
          f"until all are in SQLite {ours:,.0f}/s = {ours / theirs:.0f}x")
    print(f"SUMMARY overhead: +{added_ms:.3f} ms/cell, load {info['load_s'] * 1000:.0f} ms, "
          f"+{info['rss_mb']:.1f} MB, metrics {in_cell / theirs:.0f}x mlflow.log_metric in the cell, "
          f"{ours / theirs:.0f}x until delivered")


if __name__ == "__main__":
    main()
