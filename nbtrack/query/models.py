"""A run's models as the surfaces show them, read from its ``nbtrack.models`` tag.

The kernel writes the tag (a JSON list of ``{"name", "flavor", "size"}``, size in bytes)
when it logs a model, so the run list, the comparison and the lake know a run's models
without asking MLflow's model store. Each is the MLflow model ``runs:/<run id>/<name>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypedDict


class ModelEntry(TypedDict):
    """One model of a run, as its ``nbtrack.models`` tag lists it."""

    name: str  # its name in the run (the variable that held it)
    flavor: str  # MLflow's flavor: sklearn, pytorch, ... ("" when unknown)
    size: int | float | None  # pickled size in bytes


class RunModel(ModelEntry):
    """A model of a compared run, with its MLflow URI ``runs:/<run id>/<name>``."""

    uri: str


def run_models(value: Any) -> list[ModelEntry]:
    """The tag's models (``[]`` for a run without any, or a value that is not the tag's JSON)."""
    if isinstance(value, list):
        items = value
    else:
        try:
            items = json.loads(value) if isinstance(value, str) and value else []
        except ValueError:
            return []
    if not isinstance(items, list):
        return []
    return [ModelEntry(name=str(m["name"]), flavor=str(m.get("flavor") or ""), size=m.get("size"))
            for m in items if isinstance(m, dict) and m.get("name")]


def model_names(value: Any) -> list[str]:
    return [m["name"] for m in run_models(value)]


def size_text(size: Any) -> str:
    """Bytes as a reader wants them: ``812 B``, ``14 kB``, ``1.2 MB``, ``3.4 GB``."""
    if not isinstance(size, (int, float)) or isinstance(size, bool):
        return ""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(size)} B"


def describe(model: Mapping[str, Any]) -> str:
    """``clf (sklearn, 1.2 MB)``."""
    details = ", ".join(p for p in (model.get("flavor"), size_text(model.get("size"))) if p)
    return f"{model['name']} ({details})" if details else str(model["name"])
