"""Run numbers and display names: one rule for the side panel, ``%nbtrack panel`` and comparisons.

A notebook's runs are numbered ``#1``, ``#2``, … in the order they started; a sweep's parent
run executes nothing and has no number. The display name says what sets a run apart:

- a re-run: ``rerun of #2 · n_estimators=30`` (the params it changed against its original);
  a retrain (``nbtrack retrain``, which re-runs its champion on new data): ``retrain of #2``;
- a sweep's execution: its sweep params (``lr=0.1, depth=3``); the sweep's own ``#k`` prefix,
  which every sweep repeats, is dropped: the notebook-wide number keeps labels unique;
- a run MLflow named at random (``amazing-panda-982``): the params it changed against the
  run before it (``lr=0.3``), else the random name;
- any other name (``%nbtrack new baseline``) as given.

Rows are the JSON rows of :func:`nbtrack.query.runs.runs_records` (``run_id``, ``run_name``,
``start_time``, ``rerun_of``, ``retrain_of``, ``sweep_id``, ``parent_run_id``, ``params``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: MLflow's generated run names: ``<predicate>-<noun>-<0..999>`` (mlflow.utils.name_utils).
_RANDOM_NAME = re.compile(r"^[a-z]+-[a-z]+-\d{1,3}$")
#: A sweep execution's own name: ``#<index> <params>``.
_SWEEP_PREFIX = re.compile(r"^#\d+\s+")
#: Changed params named in a label; more are counted ("+2").
MAX_NAMED = 3


def is_random_name(name: str) -> bool:
    """Did MLflow make this name up (nobody chose it)?"""
    return bool(_RANDOM_NAME.match(name or ""))


def is_sweep_parent(row: Mapping[str, Any]) -> bool:
    return bool(row.get("sweep_id")) and not row.get("parent_run_id")


def changed_params(params: Mapping[str, Any], before: Mapping[str, Any]) -> str:
    """``"lr=0.5, depth=4"``: the params whose value differs from ``before`` (sorted by name)."""
    changed = [f"{k}={params[k]}" for k in sorted(params) if str(params[k]) != str(before.get(k))]
    if len(changed) > MAX_NAMED:
        changed = changed[:MAX_NAMED] + [f"+{len(changed) - MAX_NAMED}"]
    return ", ".join(changed)


def display_names(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{run_id: {"number": int | None, "label": str}}`` for one notebook's runs (any order)."""
    rows = list(rows)
    ordered = sorted(rows, key=lambda r: (str(r.get("start_time") or ""), str(r["run_id"])))
    numbers: dict[str, int] = {}
    for row in ordered:
        if not is_sweep_parent(row):
            numbers[row["run_id"]] = len(numbers) + 1
    by_id = {row["run_id"]: row for row in rows}
    names: dict[str, dict[str, Any]] = {}
    previous: Mapping[str, Any] | None = None  # the run before, outside sweeps
    for row in ordered:
        run_id = row["run_id"]
        names[run_id] = {"number": numbers.get(run_id), "label": _label(row, by_id, numbers, previous)}
        if not row.get("sweep_id") and not is_sweep_parent(row):
            previous = row
    return names


def _label(
    row: Mapping[str, Any],
    by_id: Mapping[str, Mapping[str, Any]],
    numbers: Mapping[str, int],
    previous: Mapping[str, Any] | None,
) -> str:
    name = str(row.get("run_name") or "")
    params = row.get("params") or {}
    original_id = row.get("rerun_of") or ""
    if original_id:
        original = by_id.get(original_id)
        which = f"#{numbers[original_id]}" if original_id in numbers else original_id[:8]
        changes = changed_params(params, original.get("params") or {}) if original else ""
        kind = "retrain" if row.get("retrain_of") else "rerun"
        return f"{kind} of {which}" + (f" · {changes}" if changes else "")
    if is_sweep_parent(row):
        return name or f"sweep {row.get('sweep_id')}"
    if row.get("sweep_id"):
        return _SWEEP_PREFIX.sub("", name) or changed_params(params, {}) or str(row["run_id"])[:8]
    if not name or is_random_name(name):
        changes = changed_params(params, previous.get("params") or {}) if previous else ""
        return changes or name or str(row["run_id"])[:8]
    return name
