"""Listing and comparing runs from the lake: the fast path of ``nbtrack.runs``/``compare``.

MLflow's search reads every run's params, metrics and tags row by row from its
store; the gold ``leaderboard`` already has one row per run with params and
metrics pivoted, so listing a notebook's runs is one filtered scan of one table.
Every function returns ``None`` when the lake cannot answer (no lake, a table
missing, a run not delivered yet), and the caller falls back to MLflow.

Tables are read with :mod:`nbtrack.lake.reader` (their current Parquet files,
only the columns needed, without pandas).

The lake lags MLflow by at most one delivery batch (MLflow is delivered first).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NbtrackError
from nbtrack.lake.reader import EPOCH, arrow_strings, open_cached, plain_rows, scan, scans
from nbtrack.lake.schemas import BEST_PREFIX, METRIC_PREFIX, PARAM_PREFIX

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

#: Columns of ``list_runs``: the same as ``nbtrack.query.runs.BASE_COLUMNS``.
BASE_COLUMNS = [
    "run_id", "run_name", "status", "start_time", "end_time", "duration_s",
    "origin", "sweep_id", "parent_run_id", "rerun_of", "git_commit", "models",
    "retrain_of", "retrain_trigger",
]
_RENAMES = {"name": "run_name", "start": "start_time", "end": "end_time"}
_SOURCES = {v: k for k, v in _RENAMES.items()}  # list column -> leaderboard column


def list_runs(
    lake_uri: str,
    experiment: str,
    *,
    max_results: int = 1000,
    tracking_uri: str | None = None,
    storage_options: dict[str, str] | None = None,
) -> pd.DataFrame | None:
    """Runs of ``experiment`` (a notebook's path relative to its project), newest first.

    Same shape as ``nbtrack.query.runs.runs_frame``: ``BASE_COLUMNS``, then
    ``params.<key>`` and ``metrics.<key>`` (last value) sorted by key, plus
    ``best.<key>`` (best value: min for losses/errors, else max). None when the
    lake has no leaderboard (fall back to MLflow). With ``tracking_uri``, only runs
    logged to that MLflow store (or to an unknown one) are listed.
    """
    table = runs_table(lake_uri, experiment, max_results=max_results, tracking_uri=tracking_uri,
                       storage_options=storage_options)
    return None if table is None else _runs_arrow(table).to_pandas()


def runs_table(
    lake_uri: str,
    experiment: str,
    *,
    max_results: int = 1000,
    tracking_uri: str | None = None,
    best: bool = True,
    storage_options: dict[str, str] | None = None,
) -> pa.Table | None:
    """The leaderboard rows :func:`list_runs` lists, in its order, as Arrow (neither pandas nor
    any conversion of Python values, which would import pandas): ``run_id``, ``name``,
    ``status``, ``start``, ``end``, the tag columns, ``params.*``, ``metrics.*`` and, unless
    ``best=False``, ``best.*``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def wanted(rows: pa.Table) -> Any:  # a null (no experiment) drops the row
        mask = pc.equal(rows.column("experiment"), arrow_strings([experiment])[0])
        if tracking_uri and "tracking_uri" in rows.column_names:
            uri = rows.column("tracking_uri")
            mask = pc.and_(mask, pc.or_kleene(pc.is_null(uri),
                                              pc.equal(uri, arrow_strings([tracking_uri])[0])))
        return mask

    prefixes = (PARAM_PREFIX, METRIC_PREFIX) + ((BEST_PREFIX,) if best else ())
    try:
        dt = open_cached(lake_uri, "leaderboard", storage_options)
    except NbtrackError as exc:
        log.debug("lake fast path unavailable: %s", exc)
        return None
    dynamic = [f.name for f in dt.schema().fields if f.name.startswith(prefixes)]
    fixed = [_SOURCES.get(name, name) for name in BASE_COLUMNS if name != "duration_s"]
    data = scan(lake_uri, "leaderboard", where=wanted, storage_options=storage_options,
                 columns=[*fixed, "experiment", "tracking_uri", *dynamic])
    if data is None:
        return None
    # MLflow's order: start (to the millisecond it keeps) newest first, ties by run id;
    # an unknown start last (nulls sort last either way).
    millis = pc.cast(pc.cast(data.column("start"), pa.timestamp("ms", tz="UTC"), safe=False),
                     pa.int64())
    keys = pa.table({"ms": millis, "run_id": data.column("run_id")})
    order = pc.sort_indices(keys, [("ms", "descending"), ("run_id", "ascending")])
    return data.take(order[:max_results])


def _runs_arrow(data: pa.Table) -> pa.Table:
    """Leaderboard rows in the ``list_runs`` shape, as Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def column(name: str) -> pa.ChunkedArray | pa.Array:
        source = _SOURCES.get(name, name)
        if source in data.column_names:
            return data.column(source)
        kind = pa.timestamp("us", tz="UTC") if name.endswith("_time") else pa.string()
        return pa.nulls(data.num_rows, kind)

    columns: dict[str, Any] = {name: column(name) for name in BASE_COLUMNS if name != "duration_s"}
    elapsed = pc.subtract(pc.cast(columns["end_time"], pa.int64()),
                          pc.cast(columns["start_time"], pa.int64()))
    columns["duration_s"] = pc.divide(pc.cast(elapsed, pa.float64()), 1e6)
    for name in ("origin", "sweep_id", "parent_run_id", "rerun_of", "git_commit", "models",
                 "retrain_of", "retrain_trigger"):
        columns[name] = pc.fill_null(columns[name], "")
    ordered = {name: columns[name] for name in BASE_COLUMNS}
    for prefix in (PARAM_PREFIX, METRIC_PREFIX, BEST_PREFIX):
        for name in sorted(c for c in data.column_names if c.startswith(prefix)):
            if data.column(name).null_count < data.num_rows:
                ordered[name] = data.column(name)
    return pa.table(ordered)


def _of_runs(
    lake_uri: str,
    tables: list[tuple[str, list[str] | None]],
    run_ids: list[str],
    storage_options: dict[str, str] | None,
) -> list[pa.Table | None]:
    """Rows of ``run_ids`` in each ``(table, columns)``, read at once."""
    import pyarrow.compute as pc

    ids = arrow_strings(run_ids)

    def wanted(rows: pa.Table) -> Any:
        return pc.is_in(rows.column("run_id"), value_set=ids)

    return scans(lake_uri, [(table, columns, wanted) for table, columns in tables], storage_options)


def compare_data(
    lake_uri: str,
    run_ids: Sequence[str],
    *,
    storage_options: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Everything ``compare`` needs for ``run_ids`` in four scans, or None to fall back.

    Returns a dict of:

    - ``runs``: the runs' leaderboard rows (``list_runs`` shape), in ``run_ids`` order;
    - ``params``: ``{run_id: {key: value}}``;
    - ``histories``: ``{run_id: {metric: [(step, value), ...]}}`` in logging order;
    - ``inputs``: ``{run_id: [input records]}`` for :func:`nbtrack.capture.lineage.input_drift`.

    None when any run is not in the lake yet.
    """
    found = _compare(lake_uri, run_ids, storage_options)
    if found is None:
        return None
    board, data = found
    order = {run: i for i, run in enumerate(dict.fromkeys(run_ids))}
    frame = _runs_arrow(board).to_pandas()
    frame = frame.iloc[sorted(range(len(frame)), key=lambda i: order[frame["run_id"].iat[i]])]
    return {"runs": frame.reset_index(drop=True), **data}


def compare_rows(
    lake_uri: str,
    run_ids: Sequence[str],
    *,
    storage_options: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """:func:`compare_data` without pandas: ``runs`` is a list of the runs' leaderboard rows
    (dicts of ``list_runs``' fixed columns, ``start_time``/``end_time`` as UTC datetimes; no
    params or metrics columns) in ``run_ids`` order."""
    fixed = [_SOURCES.get(name, name) for name in BASE_COLUMNS if name != "duration_s"]
    found = _compare(lake_uri, run_ids, storage_options, board_columns=fixed)
    if found is None:
        return None
    board, data = found
    order = {run: i for i, run in enumerate(dict.fromkeys(run_ids))}
    rows = [{_RENAMES.get(k, k): v for k, v in row.items()} for row in plain_rows(board)]
    return {"runs": sorted(rows, key=lambda row: order[row["run_id"]]), **data}


def _compare(
    lake_uri: str, run_ids: Sequence[str], storage_options: dict[str, str] | None,
    board_columns: list[str] | None = None,
) -> tuple[pa.Table, dict[str, Any]] | None:
    """The runs' leaderboard rows (any order; ``board_columns`` or all) and their params,
    histories and inputs."""
    import pyarrow.compute as pc

    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return None
    board, rows, points, inputs = _of_runs(lake_uri, [
        ("leaderboard", board_columns), ("params", ["run_id", "key", "value", "t"]),
        ("metrics", ["run_id", "key", "step", "value", "timestamp"]), ("inputs", None),
    ], ids, storage_options)
    if board is None or set(board.column("run_id").to_pylist()) != set(ids):
        return None
    params: dict[str, dict[str, str]] = {run: {} for run in ids}
    if rows is not None:
        for row in sorted(plain_rows(rows, micros=True), key=lambda r: r["t"] or 0):
            params[row["run_id"]][row["key"]] = row["value"]
    histories: dict[str, dict[str, list[tuple[int, float]]]] = {run: {} for run in ids}
    if points is not None:
        order = pc.sort_indices(points, [("timestamp", "ascending"), ("step", "ascending")])
        for row in plain_rows(points.take(order), micros=True):
            histories[row["run_id"]].setdefault(row["key"], []).append((row["step"], row["value"]))
    return board, {
        "params": params,
        "histories": histories,
        "inputs": _inputs(inputs, ids) or {run: [] for run in ids},
    }


def run_inputs(
    lake_uri: str,
    run_ids: Sequence[str],
    *,
    storage_options: dict[str, str] | None = None,
) -> dict[str, list[dict[str, Any]]] | None:
    """``{run_id: [input records]}`` (profile decoded), oldest read first; None without a lake."""
    return _inputs(_of_runs(lake_uri, [("inputs", None)], list(run_ids), storage_options)[0], run_ids)


def _inputs(data: pa.Table | None, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]] | None:
    """The rows of the ``inputs`` table as :func:`run_inputs` returns them."""
    if data is None:
        return None
    found: dict[str, list[dict[str, Any]]] = {run: [] for run in run_ids}
    for row in sorted(plain_rows(data), key=lambda r: r["t"] or EPOCH):
        try:
            row["profile"] = json.loads(row["profile"]) if row["profile"] else {}
        except ValueError:
            row["profile"] = {}
        found.setdefault(row["run_id"], []).append(row)
    return found
