"""A comparison of runs, and its two shapes for other surfaces: one DataFrame
(:meth:`Comparison.to_pandas`) and one JSON-ready dict (:meth:`Comparison.to_dict`, what
the JupyterLab server returns). :func:`nbtrack.query.compare.compare` builds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbtrack.metric_direction import Direction
from nbtrack.query.artifacts import CellDiff, FigureGroup
from nbtrack.query.inputs import no_inputs
from nbtrack.query.values import is_missing, json_number

if TYPE_CHECKING:
    import pandas as pd

    from nbtrack.query.models import RunModel

#: Version of the ``to_dict()`` shape; bumped on any incompatible change.
SCHEMA_VERSION = 2


@dataclass
class RunSummary:
    """What identifies a compared run."""

    run_id: str
    run_name: str
    label: str  # unique display name: "<run_name> (<first 8 of id>)"
    experiment_id: str
    experiment_name: str
    status: str
    start_time: int | None  # ms since the epoch, as MLflow keeps it
    end_time: int | None
    artifact_uri: str
    tags: dict[str, str]  # nbtrack.* tags and MLflow's parent/run-name tags
    # the runs the notebook's own MLflow made during this run (query.links.user_runs)
    user_runs: list[dict[str, Any]] = field(default_factory=list)
    # why a FAILED or KILLED run failed (query.failures); None for any other run
    error: dict[str, Any] | None = None
    models: list[RunModel] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        duration = (self.end_time - self.start_time) / 1000.0 if (
            self.end_time and self.start_time) else None
        return {
            "run_id": self.run_id, "run_name": self.run_name, "label": self.label,
            "experiment_id": self.experiment_id, "experiment_name": self.experiment_name,
            "status": self.status, "start_time": _iso(self.start_time),
            "end_time": _iso(self.end_time), "duration_s": duration,
            "artifact_uri": self.artifact_uri, "tags": dict(self.tags),
            "user_runs": [dict(item) for item in self.user_runs],
            "error": self.error, "models": [dict(item) for item in self.models],
        }


@dataclass
class Comparison:
    """N runs side by side; see :meth:`to_dict` for the serialised shape."""

    runs: list[RunSummary]
    # param key (sorted) -> run id -> value as logged (None: the run has no such param)
    param_values: dict[str, dict[str, str | None]]
    # metric (sorted) -> run id -> (last, best), for the runs that logged it
    metric_values: dict[str, dict[str, tuple[float, float]]]
    directions: dict[str, Direction]
    best_runs: dict[str, dict[str, list[str]]]  # metric -> {"last"|"best": winning run ids}
    histories: dict[str, dict[str, list[tuple[int, float]]]]  # metric -> run id -> (step, value)
    figures: list[FigureGroup] = field(default_factory=list)
    cells: list[CellDiff] = field(default_factory=list)
    tracking_uri: str = ""
    # {"differ": bool, "drift": [...], "runs": {run id: [records]}}; see to_dict()
    inputs: dict[str, Any] = field(default_factory=no_inputs)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    @property
    def labels(self) -> dict[str, str]:
        return {r.run_id: r.label for r in self.runs}

    @property
    def params(self) -> pd.DataFrame:
        """index: param key; columns: run ids, then "differs" (bool). Built on access: the
        comparison itself needs no pandas (``nbtrack compare`` answers without importing it)."""
        import pandas as pd

        ids, keys = self.run_ids, list(self.param_values)
        table = pd.DataFrame([[self.param_values[key].get(rid) for rid in ids] for key in keys],
                             index=pd.Index(keys, name="param"), columns=ids, dtype=object)
        table["differs"] = [_differs(self.param_values[key].get(rid) for rid in ids) for key in keys]
        return table

    @property
    def metrics(self) -> pd.DataFrame:
        """index: metric; columns: (run id, "last"|"best"), NaN where a run did not log it."""
        import pandas as pd

        ids = self.run_ids
        columns = pd.MultiIndex.from_product([ids, ["last", "best"]], names=["run", "stat"])
        table = pd.DataFrame(index=pd.Index(list(self.metric_values), name="metric"),
                             columns=columns, dtype=float)
        for key, per_run in self.metric_values.items():
            for rid, (last, best) in per_run.items():
                table.at[key, (rid, "last")] = last
                table.at[key, (rid, "best")] = best
        return table

    def to_pandas(self) -> pd.DataFrame:
        """Params and last metric values in one table: rows ``(kind, key)``, one column per run."""
        import pandas as pd

        params = self.params.copy()
        params.index = pd.MultiIndex.from_product([["param"], params.index], names=["kind", "key"])
        metrics = self.metrics
        last = metrics.xs("last", axis=1, level=1) if len(metrics.columns) else (
            pd.DataFrame(index=metrics.index, columns=self.run_ids))
        assert isinstance(last, pd.DataFrame)  # a column level of a frame is a frame
        last = last.reindex(columns=self.run_ids).astype(object)
        last["differs"] = [_differs(row) for row in last.itertuples(index=False)]
        last.index = pd.MultiIndex.from_product([["metric"], last.index], names=["kind", "key"])
        return pd.concat([params, last])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``json.dumps(..., allow_nan=False)`` works). Shape (v2)::

            {"version": 2, "tracking_uri": str,
             "runs": [{"run_id", "run_name", "label", "experiment_id", "experiment_name",
                       "status", "start_time": ISO-8601 str | null, "end_time": ... | null,
                       "duration_s": float | null, "artifact_uri", "tags": {str: str},
                       "user_runs": [{"run_id", "experiment_id", "name", "tracking_uri",
                                      "parent_run_id"?, "ended": bool, "url": str | null}],
                       "error": {"name", "value", "message", "cell": {"cell_id", "index",
                                 "number", "exec_count", "source"} | null, "output": str | null,
                                 "output_path": str | null, "traceback": str | null} | null,
                       "models": [{"name", "flavor", "size": int | null, "uri": "runs:/<run_id>/<name>"}]}],
             "params": [{"key": str, "values": {run_id: str | null}, "differs": bool}],
             "metrics": [{"key": str, "direction": "min" | "max",
                          "values": {run_id: {"last": NUM, "best": NUM, "steps": int} | null},
                          "best_runs": {"last": [run_id], "best": [run_id]}}],
             "histories": {metric: {run_id: [[step: int, value: NUM], ...]}},
             "figures": [{"key": "<cell_id>-<n>" | file name, "cell_id": str | null,
                          "n": int | null, "index": int | null, "runs": {run_id: [{"path", "ext",
                          "exec_count": int | null, "uri", "local_path": str | null}]}}],
             "cells": [{"cell_id", "index": int | null, "sources": {run_id: str | null},
                        "diffs": {run_id: unified diff str}}],
             "inputs": {"differ": bool,
                        "drift": [{"table_uri", "version_a", "version_b", "rows_a", "rows_b",
                                   "schema_changed": bool, "only_in": "a" | "b" | null,
                                   "summary": str, "run_a": run_id, "run_b": run_id,
                                   "columns": [{"column", "score": float | "inf", "reason"}]}],
                        "runs": {run_id: [{"table_uri", "version", "schema_hash", "rows",
                                           "profile": {column: {...}}, "t": ISO str | null}]}}}

        NUM is a float, or ``"nan"`` / ``"inf"`` / ``"-inf"``; null means "not logged".
        Dicts keyed by run id hold the runs in ``runs`` order; ``best_runs`` lists are
        empty when fewer than two runs have a finite value or all are tied. ``inputs``
        checks each run against the first (``run_a``); with no run having recorded an
        input it is ``{"differ": false, "drift": [], "runs": {}}``. v2 added ``inputs``;
        ``user_runs`` lists the runs the notebook's own MLflow made (added within v2), as were
        ``error`` (see :mod:`nbtrack.query.failures`), ``models`` (each model's flavor and pickled
        size in bytes) and a figure's cell ``index`` (0-based; a
        cell's number is ``index + 1`` everywhere, as JupyterLab's status bar counts cells).
        ``start_time``/``end_time`` are the lake's when it answers, as in the run list, so a
        run's duration reads the same in the list and the comparison.
        """
        ids = self.run_ids
        params = []
        for key, per_run in self.param_values.items():
            row = {rid: None if is_missing(per_run.get(rid)) else per_run.get(rid) for rid in ids}
            params.append({"key": key, "values": row, "differs": _differs(row.values())})
        metrics = []
        for key, stats in self.metric_values.items():
            steps = self.histories.get(key, {})
            values: dict[str, Any] = {}
            for rid in ids:
                last, best = stats.get(rid, (math.nan, math.nan))
                if rid not in steps and is_missing(last):
                    values[rid] = None
                    continue
                values[rid] = {"last": json_number(last), "best": json_number(best),
                               "steps": len(steps.get(rid, []))}
            metrics.append({"key": key, "direction": self.directions[key], "values": values,
                            "best_runs": self.best_runs.get(key, {"last": [], "best": []})})
        histories = {
            key: {rid: [[int(s), json_number(v)] for s, v in points] for rid, points in per.items()}
            for key, per in self.histories.items()
        }
        return {
            "version": SCHEMA_VERSION, "tracking_uri": self.tracking_uri,
            "runs": [r.to_dict() for r in self.runs], "params": params, "metrics": metrics,
            "histories": histories, "figures": [g.to_dict() for g in self.figures],
            "cells": [c.to_dict() for c in self.cells], "inputs": self.inputs,
        }

    def _repr_html_(self) -> str:
        from nbtrack.query.compare_html import render_comparison_html

        return render_comparison_html(self)

    def __repr__(self) -> str:
        names = ", ".join(r.label for r in self.runs)
        return f"<Comparison of {len(self.runs)} runs: {names}>"


def _differs(values: Any) -> bool:
    normalised = {None if is_missing(v) else v for v in values}
    return len(normalised) > 1


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc).isoformat()
