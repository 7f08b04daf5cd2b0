"""What re-runs hand back: the table of a sweep's runs, and a re-run's reproducibility report.

Both are pandas DataFrames (the Python API returns them); the ``render_*``
functions draw them with rich for the command line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbtrack.metric_direction import lower_is_better

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

EQUAL, CHANGED, MISSING, NEW = "equal", "changed", "missing", "new"


def sort_runs(frame: pd.DataFrame, metric: str | None, maximize: bool | None) -> pd.DataFrame:
    """By ``metrics.<metric>`` (best first, runs without it last), else by combination number."""
    if not metric:
        return frame.sort_values("index", kind="stable").reset_index(drop=True)
    column = metric if metric.startswith("metrics.") else f"metrics.{metric}"
    if column not in frame.columns:
        return frame.sort_values("index", kind="stable").reset_index(drop=True)
    # The shared rule decides unless the user said (--maximize / --minimize).
    ascending = lower_is_better(column[len("metrics."):]) if maximize is None else not maximize
    return frame.sort_values(column, ascending=ascending, na_position="last",
                             kind="stable").reset_index(drop=True)


def runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of ``index, run_id, status, error, duration_s, output, params.*, metrics.*``."""
    import pandas as pd

    base = ["index", "run_id", "status", "error", "duration_s", "output"]
    frame = pd.DataFrame(rows)
    for column in base:
        if column not in frame.columns:
            frame[column] = None
    params = sorted(c for c in frame.columns if c.startswith("params."))
    metrics = sorted(c for c in frame.columns if c.startswith("metrics."))
    rest = [c for c in frame.columns if c not in base and c not in params and c not in metrics]
    return frame[base + params + metrics + rest]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def reproducibility(original: Mapping[str, float], rerun: Mapping[str, float]) -> pd.DataFrame:
    """Every metric of either run: ``equal`` (bit for bit), ``changed`` (with delta), ``missing``
    (the re-run did not log it) or ``new`` (only the re-run logged it)."""
    import pandas as pd

    rows = []
    for key in sorted(set(original) | set(rerun)):
        before, after = original.get(key), rerun.get(key)
        if key not in rerun:
            verdict, delta = MISSING, None
        elif key not in original:
            verdict, delta = NEW, None
        elif _same(before, after):
            verdict, delta = EQUAL, 0.0
        else:
            verdict = CHANGED
            delta = after - before if before is not None and after is not None else None
        rows.append({"metric": key, "original": before, "rerun": after, "delta": delta,
                     "verdict": verdict})
    return pd.DataFrame(rows, columns=["metric", "original", "rerun", "delta", "verdict"])


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def render_runs(frame: pd.DataFrame, console: Console, *, metric: str | None = None,
                title: str = "") -> None:
    """The end-of-sweep table: one line per run, best first when a metric was chosen."""
    from rich.table import Table

    table = Table(title=title or None, show_lines=False)
    params = [c for c in frame.columns if c.startswith("params.")]
    metrics = [c for c in frame.columns if c.startswith("metrics.")]
    chosen = metric if metric and metric.startswith("metrics.") else f"metrics.{metric}"
    if metric and chosen in metrics:
        metrics = [chosen] + [m for m in metrics if m != chosen]
    columns = ["index", "status", *params, *metrics, "run_id"]
    if "error" in frame.columns and frame["error"].notna().any():
        columns.append("error")
    for column in columns:
        label = column.split(".", 1)[1] if "." in column else column
        style = "bold" if column == chosen else None
        table.add_column(label, style=style, overflow="fold")
    for _, row in frame.iterrows():
        cells = [_fmt(row.get(c)) if not _isna(row.get(c)) else "" for c in columns]
        status = cells[1]
        cells[1] = f"[green]{status}[/]" if status == "FINISHED" else f"[red]{status}[/]"
        table.add_row(*cells)
    console.print(table)


def render_report(report: pd.DataFrame, console: Console, *, title: str = "") -> None:
    """The reproducibility report of a re-run: how every metric moved."""
    from rich.table import Table

    colours = {EQUAL: "green", CHANGED: "yellow", MISSING: "red", NEW: "cyan"}
    table = Table(title=title or None)
    for column in ("metric", "original", "rerun", "delta", "verdict"):
        table.add_column(column)
    for _, row in report.iterrows():
        verdict = row["verdict"]
        # None becomes NaN in a float column: the verdict says which side was not logged.
        original = "" if verdict == NEW else _fmt(row["original"])
        rerun = "" if verdict == MISSING else _fmt(row["rerun"])
        delta = "" if verdict in (NEW, MISSING) else _fmt(row["delta"])
        table.add_row(row["metric"], original, rerun, delta, f"[{colours[verdict]}]{verdict}[/]")
    console.print(table)
    counts = report["verdict"].value_counts().to_dict() if len(report) else {}
    summary = ", ".join(f"{counts[v]} {v}" for v in (EQUAL, CHANGED, MISSING, NEW) if v in counts)
    console.print(summary or "no metrics logged by either run")


def _isna(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, (list, dict)) else False
    except (TypeError, ValueError):
        return False
