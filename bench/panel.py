"""The nbtrack panel in real Chromium at JupyterLab's default layout: first paint of the run
list with 1,000 runs, the main-area comparison of 10 runs with 100-step curves, and how soon a
run that ends elsewhere appears without a click.

    python bench/panel.py [--runs 1000] [--curves 10] [--steps 100] [--repeat 3]

Builds a temp project whose notebook has N runs, written as capture writes them (a journal)
and delivered by nbtrack's own delivery into MLflow and the Delta lake, as in real use; the
oldest ``--curves`` runs log ``--steps`` points of two metrics. Serves it with ``jupyter lab``
on a free port, opens the notebook and the panel in /usr/bin/chromium (Playwright) and reads
the panel's own performance marks:

- first paint: ``nbtrack-runs-request → nbtrack-runs-painted`` (the ``GET /nbtrack/api/runs``
  round trip, then building the table up to the frame after it is painted); goal < 1 s;
- comparison: ``nbtrack-compare-request → nbtrack-compare-painted`` for the ``--curves`` runs
  (server comparison, JSON, params/metrics tables, every curve chart); goal < 1 s;
- live update: a run is journaled and ends, the delivery delivers it (as the delivery
  process would), and the panel, never clicked, lists it: from the run's end to the row on
  screen; goal < 5 s.

Each is repeated ``--repeat`` times (warm server) and printed, then one summary line. Nothing
is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

MARKS_JS = """([start, end]) => {
  const last = name => performance.getEntriesByName(name).at(-1)?.startTime;
  return {start: last(start), end: last(end), count: performance.getEntriesByName(end).length};
}"""


class Runs:
    """Writes runs into a project's journal as capture does, and delivers them as the delivery
    process does (MLflow first, then the lake)."""

    def __init__(self, root: Path, notebook: str) -> None:
        from nbtrack.journal import JournalWriter
        from nbtrack.project import Project
        from nbtrack.store import resolve

        self.project = Project(root)
        self.project.ensure()
        self.path = root / notebook
        self.experiment = self.project.experiment_name(self.path)
        self.uri = resolve(project=self.project).tracking_uri
        self.root = root
        self.journal = JournalWriter(self.project.journal_dir, f"bench-panel-{time.time_ns()}")
        self.journal.append("session_start", pid=0, pid_started=None, host="bench", python="3",
                            delivery="process", executable=sys.executable, cwd=str(root), version="bench")

    def start(self, key: str, lr: float, steps: int, i: int, n: int) -> None:
        journal = self.journal
        journal.append("run_start", run=key, experiment=self.experiment, notebook=str(self.path),
                       project=str(self.root), tracking_uri=self.uri, name=None, mlflow_run_id=None,
                       parent_run_id=None, origin="papermill", tags={"nbtrack.run_key": key,
                                                                     "nbtrack.notebook": self.experiment},
                       papermill_input=None, papermill_output=None, adopted=False)
        journal.append("params", run=key, params={"lr": str(lr), "epochs": str(steps)},
                       values={"lr": lr, "epochs": steps}, source="papermill", cell_id=None)
        for step in range(steps):
            journal.append("metric", run=key, key="val_acc", value=0.5 + i / (4 * n) + step / (10 * steps),
                           step=step, cell_id=None, exec_count=3)
            if steps > 3:
                journal.append("metric", run=key, key="train_loss", value=1 / (1 + lr * (step + 1)) + i / (10 * n),
                               step=step, cell_id=None, exec_count=3)

    def end(self, key: str) -> None:
        self.journal.append("run_end", run=key, status="FINISHED", notebook=None, papermill_output=None,
                            out_of_order=[])

    def deliver(self) -> None:
        from nbtrack.delivery.deliverer import Deliverer

        deliverer = Deliverer(self.project)
        while deliverer.run_once():
            pass
        deliverer.close()


def deliver_runs(root: Path, n: int, curves: int = 0, steps: int = 100) -> str:
    """A project whose notebook has ``n`` finished runs (the oldest ``curves`` with ``steps``-point
    curves), journaled and delivered like real ones."""
    import nbformat
    from test_server_store import NOTEBOOK, notebook_source

    (root / ".git").mkdir(parents=True, exist_ok=True)
    path = root / NOTEBOOK
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook_source(), path)
    runs = Runs(root, NOTEBOOK)
    for i in range(n):
        key = f"bench{i:05d}"
        runs.start(key, (0.1, 0.01, 0.001)[i % 3], steps if i < curves else 3, i, n)
        runs.end(key)
    runs.deliver()
    return NOTEBOOK


def marks(page: Any, start: str, end: str) -> dict[str, float]:
    return page.evaluate(MARKS_JS, [start, end])


def wait_mark(page: Any, end: str, count: int) -> None:
    page.wait_for_function(f"() => performance.getEntriesByName('{end}').length > {count}", timeout=120_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--curves", type=int, default=10, help="runs compared, each with --steps points")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright
    from test_browser import VIEWPORT, jupyter_env, launch, open_panel, serve_lab

    tmp = Path(tempfile.mkdtemp(prefix="nbtrack-bench-panel-"))
    root = tmp / "project"
    started = time.perf_counter()
    notebook = deliver_runs(root, args.runs, args.curves, args.steps)
    print(f"made {args.runs} runs ({args.curves} with {args.steps}-step curves) in "
          f"{time.perf_counter() - started:.1f} s under {root}")

    served = serve_lab(root, jupyter_env(tmp / "home"), tmp / "lab.log")
    lab = next(served)
    paints: list[float] = []
    compares: list[float] = []
    lives: list[tuple[float, float]] = []
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport=VIEWPORT)
            page.on("pageerror", lambda error: print(f"page error: {error}"))
            panel = open_panel(page, lab, notebook)
            page.wait_for_function(
                f"() => document.querySelectorAll('#nbtrack-panel tr[data-run-id]').length === {args.runs}"
                " && performance.getEntriesByName('nbtrack-runs-painted').length > 0",
                timeout=120_000,
            )
            for i in range(args.repeat + 1):
                if i:
                    count = marks(page, "nbtrack-runs-request", "nbtrack-runs-painted")["count"]
                    panel.locator("button.nbtrack-refresh").click()
                    wait_mark(page, "nbtrack-runs-painted", count)
                m = marks(page, "nbtrack-runs-request", "nbtrack-runs-painted")
                paints.append(m["end"] - m["start"])
                print(f"{'first' if i == 0 else f'reload {i}':>9}: list of {args.runs} runs painted in "
                      f"{paints[-1]:7.1f} ms")

            # The comparison of the runs with curves (#1 … #curves), in the main area.
            panel.locator("input.nbtrack-filter").fill(f"number<={args.curves}")
            page.wait_for_function(
                f"() => document.querySelectorAll('#nbtrack-panel tr[data-run-id]').length === {args.curves}")
            panel.locator("input.nbtrack-select-all").check()
            panel.locator("button.nbtrack-compare-button").click()
            page.wait_for_function("() => performance.getEntriesByName('nbtrack-compare-painted').length > 0",
                                   timeout=120_000)
            for i in range(args.repeat + 1):
                if i:
                    count = marks(page, "nbtrack-compare-request", "nbtrack-compare-painted")["count"]
                    page.locator("#nbtrack-comparison button.nbtrack-reload").click()
                    wait_mark(page, "nbtrack-compare-painted", count)
                m = marks(page, "nbtrack-compare-request", "nbtrack-compare-painted")
                compares.append(m["end"] - m["start"])
                charts = page.locator("#nbtrack-comparison .nbtrack-chart canvas").count()
                print(f"{'first' if i == 0 else f'again {i}':>9}: comparison of {args.curves} runs "
                      f"({charts} curve charts) painted in {compares[-1]:7.1f} ms")
            panel.locator("input.nbtrack-filter").fill("")

            # Runs that end elsewhere: journal, end, deliver; the panel lists them by itself.
            runs = Runs(root, notebook)
            live_rows = "document.querySelectorAll('#nbtrack-panel td[data-param=\"lr\"]')"
            count_live = f"() => [...{live_rows}].filter(td => td.textContent === '0.5').length"
            for i in range(args.repeat):
                page.wait_for_function(f"() => ({count_live})() === {i}", timeout=60_000, polling=100)
                key = f"live{i:05d}"
                runs.start(key, 0.5, 3, i, 1)
                ended = time.perf_counter()
                runs.end(key)
                runs.deliver()
                delivered = time.perf_counter()
                page.wait_for_function(f"() => ({count_live})() === {i + 1}", timeout=60_000, polling=50)
                shown = time.perf_counter()
                lives.append((shown - ended, shown - delivered))
                print(f"   live {i + 1}: run listed {lives[-1][0]:5.2f} s after it ended "
                      f"(delivery {delivered - ended:4.2f} s, then the panel {lives[-1][1]:4.2f} s)")
            browser.close()
    finally:
        served.close()

    first, warm = paints[0], statistics.median(paints[1:]) if len(paints) > 1 else paints[0]
    compare = statistics.median(compares)
    live = max(t for t, _ in lives) if lives else float("nan")

    def verdict(value: float, goal: float) -> str:
        return "under" if value < goal else "OVER"

    print(
        f"panel with {args.runs} runs: first paint {first:.0f} ms ({verdict(first, 1000)} 1 s), warm {warm:.0f} ms; "
        f"comparison of {args.curves} runs x {args.steps} steps {compare:.0f} ms median "
        f"({verdict(compare, 1000)} 1 s); live update at most {live:.1f} s after a run ends "
        f"({verdict(live, 5)} 5 s)"
    )


if __name__ == "__main__":
    main()
