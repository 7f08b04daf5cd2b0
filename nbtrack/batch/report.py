"""What re-runs hand back: the table of a sweep's runs, and a re-run's reproducibility report.

Both are pandas DataFrames (the Python API returns them); ``nbtrack sweep`` and
``nbtrack rerun`` print them (``nbtrack/cli/sweep.py``, ``rerun.py``) with the command
line's table rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.metric_direction import lower_is_better

if TYPE_CHECKING:
    import pandas as pd

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
    results = {k for k in set(original) | set(rerun) if not k.startswith(tags.SYSTEM_METRICS)}  # not its cost
    for key in sorted(results):
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
