"""Values read back from MLflow, the lake or pandas, as plain Python and JSON: one home for
"is this missing", MLflow's stored infinities, and NaN/inf in JSON."""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def is_missing(value: Any) -> bool:
    """None, NaN, or pandas' NA/NaT: a run without that value. Never true for a string or a list."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str | list | tuple | dict | set):
        return False
    if "pandas" not in sys.modules:  # no pandas value can exist: numpy's NaN at most
        numpy = sys.modules.get("numpy")  # (pyarrow imports numpy; asking pandas costs 0.3 s)
        if numpy is None or not isinstance(value, numpy.floating):
            return False
        return bool(numpy.isnan(value))
    try:
        import pandas as pd

        result = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return False if hasattr(result, "__len__") else bool(result)


def metric_value(value: float) -> float:
    """A stored metric value as logged: MLflow's SQL store keeps +-inf as +-float max."""
    if value == sys.float_info.max:
        return math.inf
    if value == -sys.float_info.max:
        return -math.inf
    return value


def json_number(value: float | int | None) -> float | int | str | None:
    """A number JSON can carry: NaN and infinities become ``"nan"``, ``"inf"``, ``"-inf"``."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def json_object(value: Mapping[Any, Any]) -> dict[str, Any]:
    """:func:`json_safe` of a mapping: text keys, plain JSON values."""
    return {str(k): json_safe(v) for k, v in value.items()}


def json_safe(value: Any) -> Any:
    """Plain JSON values: NaN/inf as :func:`json_number` writes them, timestamps as ISO text,
    numpy scalars as numbers, paths as text."""
    if isinstance(value, Mapping):
        return json_object(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, dt.datetime | dt.date):
        return None if value != value else value.isoformat()  # NaT is not equal to itself
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    isoformat = getattr(value, "isoformat", None)  # pandas Timestamp
    if callable(isoformat):
        try:
            return isoformat()
        except ValueError:  # NaT
            return None
    return None if is_missing(value) else str(value)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts keyed by column name (``to_dict(orient="records")``)."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]
