"""The input data of compared runs, and whether it moved: the ``inputs`` part of a comparison.

Every run is checked against the first one compared (the baseline), with the
lineage profiles ``nbtrack.read_delta`` recorded; see
:func:`nbtrack.capture.lineage.input_drift` for what counts as a moved column. The
records live in the lake only (MLflow keeps no profile), so without a lake
every comparison has ``differ`` false.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities import Run

#: Recorded fields of an input that a comparison carries (JSON-ready).
RECORD_FIELDS = ("table_uri", "version", "schema_hash", "rows", "profile", "t")


def no_inputs() -> dict[str, Any]:
    """The ``inputs`` of a comparison where no run recorded any."""
    return {"differ": False, "drift": [], "runs": {}}


def compare_inputs(
    run_ids: list[str], records: Mapping[str, list[Mapping[str, Any]]]
) -> dict[str, Any]:
    """``{"differ", "drift", "runs"}`` for runs in order; each drift names its two runs.

    ``drift`` holds one ``InputDrift.to_dict()`` (plus ``run_a``, ``run_b``; an
    infinite column ``score`` as ``"inf"``) per table that moved between the
    baseline and a later run; ``runs`` holds every run's input records, or is
    empty when no run recorded any.
    """
    found = {rid: [_record(r) for r in records.get(rid, [])] for rid in run_ids}
    if not any(found.values()):
        return no_inputs()
    from nbtrack.lake.profile import input_drift

    baseline, *others = run_ids
    drift = []
    for other in others:
        for moved in input_drift(found[baseline], found[other]):
            entry = moved.to_dict()
            for column in entry["columns"]:  # an added or retyped column scores inf
                score = float(column["score"])
                column["score"] = score if math.isfinite(score) else "inf"
            drift.append({**entry, "run_a": baseline, "run_b": other})
    return {"differ": bool(drift), "drift": drift, "runs": found}


def moved_columns(inputs: Mapping[str, Any]) -> list[str]:
    """The columns that moved in any input, in order of first appearance ("inputs differ: …")."""
    names: dict[str, None] = {}
    for drift in inputs.get("drift", []):
        for column in drift.get("columns", []):
            names.setdefault(str(column["column"]), None)
    return list(names)


def drift_headline(inputs: Mapping[str, Any]) -> str | None:
    """``inputs differ: columns x, y`` (or why, when no column moved); None when they agree."""
    if not inputs.get("differ"):
        return None
    columns = moved_columns(inputs)
    if columns:
        return "inputs differ: columns " + ", ".join(columns)
    return "inputs differ: " + "; ".join(d["summary"] for d in inputs["drift"])


def mlflow_input_versions(run: Run) -> dict[str, int]:
    """``{table_uri: version}`` of the Delta inputs a run recorded, as MLflow keeps them (dataset
    inputs of source type ``delta``): what a re-run pins and a retrain compares."""
    versions: dict[str, int] = {}
    inputs = getattr(run, "inputs", None)
    for item in getattr(inputs, "dataset_inputs", None) or []:
        dataset = item.dataset
        if dataset.source_type != "delta":
            continue
        try:
            source = json.loads(dataset.source)
        except ValueError:
            continue
        if source.get("path") and source.get("version") is not None:
            path, version = str(source["path"]), int(source["version"])
            versions[path] = max(version, versions.get(path, version))
    return versions


def _record(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {key: record.get(key) for key in RECORD_FIELDS}
    if hasattr(out["t"], "isoformat"):
        out["t"] = out["t"].isoformat()
    return out
