"""Delivery of one big cell: N metric points logged by one cell of a real kernel.

    python bench/delivery.py [--points 1000000] [--unknown-notebook]

The cell runs ``nbtrack.log(step=i, loss=...)`` N times, so every point comes
before the run's start in the journal (capture writes it after the cell, or
with ``--unknown-notebook`` only when the kernel ends). Measures the cell's
time, the kernel's memory before and after it, the time from the end of the
cell (or of the kernel) until every point is in MLflow (SQLite) and in the
Delta ``metrics`` table, and the delivery process's peak memory. Ends with a
one-line summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CELL = """
import json, os, time, psutil
_rss0 = psutil.Process().memory_info().rss
_t0 = time.perf_counter()
import nbtrack
for i in range({points}):
    nbtrack.log(step=i, loss=i / {points})
_cell = time.perf_counter() - _t0
print(json.dumps({{"cell_s": _cell, "rss0": _rss0, "rss1": psutil.Process().memory_info().rss}}))
"""


def run_cell(kc: Any, code: str) -> str:
    printed: list[str] = []

    def hook(msg: dict) -> None:
        if msg["header"]["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            printed.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, timeout=3600, output_hook=hook)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(reply["content"])
    return "".join(printed)


def peak_mb(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM), in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def delivered(journal_dir: Path) -> dict[str, int]:
    """Delivered seq per sink, and the journal's last seq (from the status and cursor files)."""
    seqs: dict[str, int] = {}
    for folder in (journal_dir, journal_dir / "done"):
        for cursor in folder.glob("*.cursor"):
            sink = cursor.name.rsplit(".", 2)[-2]
            seqs[sink] = max(seqs.get(sink, 0), int(json.loads(cursor.read_text()).get("seq", 0)))
    return seqs


def last_seq(journal_dir: Path) -> int:
    from nbtrack.journal import last_event

    journals = list(journal_dir.glob("*.jsonl")) + list((journal_dir / "done").glob("*.jsonl"))
    return max(int((last_event(j) or {}).get("seq", 0)) for j in journals) if journals else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--unknown-notebook", action="store_true",
                        help="a plain kernel that never learns its notebook (the run starts at kernel end)")
    args = parser.parse_args()
    from jupyter_client.manager import start_new_kernel

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        subprocess.run(["git", "init", "-q", tmp], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "MLFLOW_"))}
        if not args.unknown_notebook:
            import nbformat

            nb = nbformat.v4.new_notebook()
            nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
            nbformat.write(nb, project / "big.ipynb")
            env["NBTRACK_NOTEBOOK"] = str(project / "big.ipynb")
        km, kc = start_new_kernel(kernel_name="python3", cwd=tmp, env=env)
        journal_dir = project / ".nbtrack" / "journal"
        try:
            run_cell(kc, "%load_ext nbtrack")
            pid_file = project / ".nbtrack" / "delivery.pid"
            while not pid_file.exists():
                time.sleep(0.1)
            daemon = int(pid_file.read_text())
            cell = json.loads(run_cell(kc, CELL.format(points=args.points)))
            if args.unknown_notebook:
                kc.stop_channels()
                km.shutdown_kernel(now=False)  # the run's start is written as the kernel ends
            else:
                run_cell(kc, "%nbtrack end")
            start = time.monotonic()
            target = last_seq(journal_dir) if args.unknown_notebook else None
            done: dict[str, float] = {}
            peak = 0.0
            while len(done) < 2 and time.monotonic() - start < 3600:
                peak = max(peak, peak_mb(daemon))
                target = target or last_seq(journal_dir)
                for sink, seq in delivered(journal_dir).items():
                    if sink not in done and seq >= target:
                        done[sink] = time.monotonic() - start
                time.sleep(0.2)
        finally:
            if not args.unknown_notebook:
                kc.stop_channels()
                km.shutdown_kernel(now=False)
        db = sqlite3.connect(project / ".nbtrack" / "mlflow.db")
        in_mlflow = db.execute("select count(*) from metrics where key = 'loss'").fetchone()[0]
        from deltalake import DeltaTable

        lake = DeltaTable(str(project / ".nbtrack" / "lake" / "metrics")).to_pyarrow_table(columns=["key"])
        in_delta = sum(1 for key in lake.column("key").to_pylist() if key == "loss")
    mode = "unknown notebook (from kernel end)" if args.unknown_notebook else "known notebook (from cell end)"
    rss0, rss1 = cell["rss0"] / 2**20, cell["rss1"] / 2**20
    mlflow_s, delta_s = done.get("mlflow", float("nan")), done.get("delta", float("nan"))
    print(f"cell: {args.points:,} x nbtrack.log in {cell['cell_s']:.1f} s "
          f"({args.points / cell['cell_s']:,.0f}/s); kernel memory {rss0:.0f} -> {rss1:.0f} MB")
    print(f"delivered, {mode}: MLflow {in_mlflow:,} points after {mlflow_s:.1f} s "
          f"({in_mlflow / mlflow_s:,.0f}/s), Delta {in_delta:,} after {delta_s:.1f} s; "
          f"delivery process peak {peak:.0f} MB")
    print(f"SUMMARY delivery: {args.points:,} points from one cell, {mode}: MLflow {mlflow_s:.0f} s, "
          f"Delta {delta_s:.0f} s, all there: {in_mlflow == args.points and in_delta == args.points}; "
          f"delivery process peak {peak:.0f} MB; kernel {rss0:.0f} -> {rss1:.0f} MB "
          f"(+{rss1 - rss0:.0f}); cell {cell['cell_s']:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
