"""Turns journal events into the rows of each lake table (pure Python, no I/O but git).

Each table takes only the event types it needs (``FEEDS``). Append tables get
one row per event; the upsert tables (``runs``, ``leaderboard``) get one row per
run holding only what this batch knows, which the writer merges into what the
table already has (later non-null values win; ``best.<k>`` keeps the best).
"""

from __future__ import annotations

import getpass
import json
import math
import subprocess
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from nbtrack import tags as tag_names
from nbtrack.events import Event
from nbtrack.lake.schemas import BEST_PREFIX, METRIC_PREFIX, PARAM_PREFIX, safe_column
from nbtrack.metric_direction import lower_is_better

Row = dict[str, Any]

#: table -> the event types that produce its rows.
FEEDS: dict[str, frozenset[str]] = {
    "events": frozenset(),  # every event
    "runs": frozenset({"run_start", "tags", "run_end"}),
    "params": frozenset({"params"}),
    "metrics": frozenset({"metric"}),
    "cells": frozenset({"cell"}),
    "artifacts": frozenset({"artifact"}),
    "inputs": frozenset({"input"}),
    "models": frozenset({"model"}),
    "leaderboard": frozenset({"run_start", "tags", "run_end", "params", "metric"}),
}

_ENVELOPE = ("id", "seq", "session", "t", "type", "run")


def app_id(event: Event) -> str:
    """The Delta application-transaction id of an event's stream: its journal (session).

    The sink protocol hands a sink each journal's events in ``seq`` order (the
    delivery loop delivers prefixes, holding back from the first event it cannot
    deliver yet), so "the last ``seq`` committed" says exactly what is done. One id
    per session keeps the Delta log's transaction set small.
    """
    return f"nbtrack/{event.get('session', '')}"


def feeds(table: str, event: Event) -> bool:
    wanted = FEEDS[table]
    return not wanted or event.get("type") in wanted


def micros(t: Any) -> int | None:
    """Unix seconds (float) to integer microseconds, the lake's timestamp unit."""
    if isinstance(t, (int, float)) and math.isfinite(t):
        return int(t * 1_000_000)
    return None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


@lru_cache(maxsize=256)
def _git_state(folder: str) -> tuple[str | None, str | None]:
    """(commit, branch) of the repository holding ``folder``; (None, None) outside git."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", folder, *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() or None if out.returncode == 0 else None

    return git("rev-parse", "HEAD"), git("rev-parse", "--abbrev-ref", "HEAD")


class RowBuilder:
    """Builds rows for one delivery batch; ``run_ids`` maps run keys to MLflow run ids.

    A run without an MLflow id (a lake-only setup) is identified by its run key.
    """

    def __init__(self, run_ids: Mapping[str, str]) -> None:
        self.run_ids = run_ids
        self.now = micros(time.time())

    def run_id(self, event: Event) -> str | None:
        key = event.get("run")
        if not key:
            return None
        return self.run_ids.get(key) or str(key)

    def rows(self, table: str, events: Iterable[Event]) -> list[Row]:
        events = [e for e in events if feeds(table, e)]
        if table in ("runs", "leaderboard"):
            return self._run_rows(events)
        make = getattr(self, f"_{table}")
        out: list[Row] = []
        for event in events:
            if table != "events" and not event.get("run"):
                continue
            out.extend(make(event))
        if table == "models":  # an upsert: one row per key in a merge
            return list({(row["run_id"], row["name"]): row for row in out}.values())
        return out

    def _base(self, event: Event) -> Row:
        return {"run_id": self.run_id(event), "run_key": event.get("run")}

    def _events(self, event: Event) -> list[Row]:
        payload = {k: v for k, v in event.items() if k not in _ENVELOPE}
        return [{
            "event_id": str(event.get("id")), "session": event.get("session"),
            "seq": _int(event.get("seq")), "t": micros(event.get("t")),
            "type": event.get("type"), "run_key": event.get("run"),
            "run_id": self.run_id(event), "payload": json.dumps(payload, default=str),
            "ingested": self.now,
        }]

    def _params(self, event: Event) -> list[Row]:
        params = event.get("params") or {}
        values = event.get("values") or {}
        return [
            {**self._base(event), "key": str(key), "value": _str(value),
             "value_json": json.dumps(values[key], default=str) if key in values else None,
             "source": event.get("source"), "cell_id": event.get("cell_id"),
             "t": micros(event.get("t")), "event_id": event.get("id")}
            for key, value in params.items()
        ]

    def _metrics(self, event: Event) -> list[Row]:
        return [{
            **self._base(event), "key": str(event.get("key")), "value": _float(event.get("value")),
            "step": _int(event.get("step")) or 0, "timestamp": micros(event.get("t")),
            "cell_id": event.get("cell_id"), "exec_count": _int(event.get("exec_count")),
            "event_id": event.get("id"),
        }]

    def _cells(self, event: Event) -> list[Row]:
        return [{
            **self._base(event), "exec_count": _int(event.get("exec_count")),
            "cell_id": event.get("cell_id"), "source": event.get("source"),
            "source_sha": event.get("source_sha"), "start": micros(event.get("start")),
            "duration_s": _float(event.get("duration_s")), "status": event.get("status"),
            "error_name": event.get("error_name"), "error_value": _str(event.get("error_value")),
            "event_id": event.get("id"), "cpu_s": _float(event.get("cpu_s")),
            "peak_memory_mb": _float(event.get("peak_memory_mb")),
        }]

    def _artifacts(self, event: Event) -> list[Row]:
        return [{
            **self._base(event), "path": event.get("path"), "kind": event.get("kind"),
            "mime": event.get("mime"), "cell_id": event.get("cell_id"),
            "exec_count": _int(event.get("exec_count")), "t": micros(event.get("t")),
            "event_id": event.get("id"),
        }]

    def _inputs(self, event: Event) -> list[Row]:
        return [{
            **self._base(event), "table_uri": event.get("table_uri"),
            "version": _int(event.get("version")), "schema_hash": event.get("schema_hash"),
            "rows": _int(event.get("rows")), "profile": _str(event.get("profile")),
            "t": micros(event.get("t")), "event_id": event.get("id"),
        }]

    def _models(self, event: Event) -> list[Row]:
        run_id, name = self.run_id(event), event.get("name")
        return [{
            **self._base(event), "name": name, "flavor": event.get("flavor"),
            "uri": f"runs:/{run_id}/{name}", "size_bytes": _int(event.get("size")),
            "model_class": event.get("model_class"), "source": event.get("source"),
            "t": micros(event.get("t")), "event_id": event.get("id"),
        }]

    def _run_rows(self, events: list[Event]) -> list[Row]:
        """One row per run with what these events say about it (None = unknown here)."""
        rows: dict[str, Row] = {}
        for event in events:
            run_id = self.run_id(event)
            if run_id is None:
                continue
            row = rows.setdefault(run_id, {"run_id": run_id, "run_key": event.get("run")})
            row["updated"] = self.now
            kind = event.get("type")
            if kind == "run_start":
                self._apply_start(row, event)
            elif kind == "tags":
                self._apply_tags(row, event.get("tags") or {})
            elif kind == "run_end":
                row["status"] = event.get("status")
                row["end"] = micros(event.get("t"))
            elif kind == "params":
                for key, value in (event.get("params") or {}).items():
                    row[safe_column(PARAM_PREFIX + str(key))] = _str(value)
            elif kind == "metric":
                self._apply_metric(row, event)
        return list(rows.values())

    def _apply_start(self, row: Row, event: Event) -> None:
        row["status"] = "RUNNING"
        row["start"] = micros(event.get("t"))
        for field in ("experiment", "notebook", "name", "parent_run_id", "origin",
                      "tracking_uri", "session"):
            if event.get(field) is not None:
                row[field] = str(event[field])
        row["user"] = getpass.getuser()
        self._apply_tags(row, event.get("tags") or {})
        # What the MLflow sink found in the run (sink run index): the name MLflow gave an unnamed
        # run, and the parent a sweep gave a run it made for its kernel. The lake mirrors MLflow.
        info = getattr(self.run_ids, "info", None)
        known = info(event.get("run")) if callable(info) else {}
        for field in ("name", "parent_run_id"):
            if row.get(field) is None and known.get(field):
                row[field] = str(known[field])
        # The commit the run started from, as the MLflow sink tags it (a commit made
        # while the run goes on does not change what it ran).
        notebook = event.get("notebook")
        self._apply_git(row, Path(str(notebook)).parent if notebook else event.get("project"))

    def _apply_tags(self, row: Row, tags: Mapping[str, Any]) -> None:
        names = {
            tag_names.SWEEP_ID: "sweep_id", tag_names.PARENT_RUN_ID: "parent_run_id",
            tag_names.RUN_NAME: "name", tag_names.GIT_COMMIT: "git_commit",
            tag_names.GIT_BRANCH: "git_branch", tag_names.ORIGIN: "origin",
            tag_names.RERUN_OF: "rerun_of", "mlflow.user": "user",
            tag_names.USER_RUNS: "user_runs", tag_names.MODELS: "models",
            tag_names.RETRAIN_OF: "retrain_of", tag_names.RETRAIN_TRIGGER: "retrain_trigger",
        }
        for tag, column in names.items():
            if tags.get(tag) not in (None, ""):
                row[column] = str(tags[tag])

    def _apply_git(self, row: Row, folder: Any) -> None:
        if row.get("git_commit") or not folder:
            return
        folder = Path(str(folder))
        if folder.is_dir():
            commit, branch = _git_state(str(folder))
            if commit:
                row["git_commit"], row["git_branch"] = commit, branch

    @staticmethod
    def _apply_metric(row: Row, event: Event) -> None:
        key = str(event.get("key"))
        value = _float(event.get("value"))
        if value is None:
            return
        row[safe_column(METRIC_PREFIX + key)] = value
        if math.isnan(value):
            return
        best_col = safe_column(BEST_PREFIX + key)
        best = row.get(best_col)
        pick = min if lower_is_better(key) else max
        row[best_col] = value if best is None else pick(best, value)
