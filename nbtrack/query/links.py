"""Links from nbtrack's run to the runs the notebook's own MLflow made (tag ``nbtrack.user_runs``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nbtrack import tags


def user_runs(run_tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """The notebook's own MLflow runs, each with a ``url`` into its MLflow UI when one is known.

    Only a tracking server has a UI address; a SQLite or file store is opened with
    ``mlflow ui --backend-store-uri <tracking_uri>``, so its runs get ``url: None``.
    """
    try:
        items = json.loads(run_tags.get(tags.USER_RUNS) or "[]")
    except ValueError:
        return []
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or "run_id" not in item:
            continue  # {"more": N}: runs beyond what one tag holds
        found.append({**item, "url": run_url(item.get("tracking_uri"), item.get("experiment_id"), item["run_id"])})
    return found


def run_url(tracking_uri: str | None, experiment_id: str | None, run_id: str) -> str | None:
    """The MLflow UI page of a run on a tracking server (``http(s)://``), else None."""
    if not tracking_uri or not tracking_uri.startswith(("http://", "https://")) or not experiment_id:
        return None
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def ui_command(tracking_uri: str) -> str:
    """How to open a store's runs in MLflow's UI."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri
    return f"mlflow ui --backend-store-uri {tracking_uri}"
