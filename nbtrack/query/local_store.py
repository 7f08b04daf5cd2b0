"""Reading the embedded store (``.nbtrack/mlflow.db`` and its local artifacts) without MLflow.

Importing MLflow takes a command one to two seconds; what a comparison reads of a run (its
row, tags, params, latest metrics, metric history, artifact files) is a few indexed
queries on MLflow's SQLite tables and a folder listing. :class:`LocalStoreReader` answers
the calls ``nbtrack.query`` makes of an ``MlflowClient`` (``get_run``, ``get_experiment``,
``get_metric_history``, ``list_artifacts``, ``download_artifacts``) with the values MLflow
would return, read-only. :func:`read_client` gives it for an embedded store, and MLflow's
client for any other (a tracking server, a store this reader does not understand).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.errors import NotFound

if TYPE_CHECKING:
    from nbtrack.store import StoreRef

#: The MLflow tables and columns read here; a store without them is read through MLflow.
_NEEDED = {
    "runs": {"run_uuid", "name", "experiment_id", "status", "start_time", "end_time",
             "artifact_uri", "lifecycle_stage"},
    "experiments": {"experiment_id", "name"},
    "tags": {"key", "value", "run_uuid"},
    "params": {"key", "value", "run_uuid"},
    "latest_metrics": {"key", "value", "is_nan", "run_uuid"},
    "metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
}


@dataclass
class RunInfo:
    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str


@dataclass
class RunData:
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    info: RunInfo
    data: RunData


@dataclass
class Experiment:
    experiment_id: str
    name: str


@dataclass
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


@dataclass
class FileInfo:
    path: str
    is_dir: bool
    file_size: int | None


class LocalStoreReader:
    """The read calls of ``MlflowClient`` that queries make, on an embedded SQLite store."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"{self.db.resolve().as_uri()}?mode=ro", uri=True, timeout=10) as conn:
            return conn.execute(sql, args).fetchall()

    def get_run(self, run_id: str) -> Run:
        found = self._rows("SELECT run_uuid, name, experiment_id, status, start_time, end_time, "
                           "artifact_uri, lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,))
        if not found:
            raise NotFound(f"no run {run_id} in {self.db}")
        rid, name, experiment, status, start, end, artifacts, stage = found[0]
        data = RunData(
            params=dict(self._rows("SELECT key, value FROM params WHERE run_uuid = ?", (rid,))),
            metrics={key: float("nan") if is_nan else value for key, value, is_nan in self._rows(
                "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (rid,))},
            tags=dict(self._rows("SELECT key, value FROM tags WHERE run_uuid = ?", (rid,))),
        )
        info = RunInfo(rid, name or "", str(experiment), status, start, end, artifacts or "", stage)
        return Run(info, data)

    def get_experiment(self, experiment_id: str) -> Experiment:
        found = self._rows("SELECT name FROM experiments WHERE experiment_id = ?", (int(experiment_id),))
        if not found:
            raise NotFound(f"no experiment {experiment_id} in {self.db}")
        return Experiment(str(experiment_id), found[0][0])

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        rows = self._rows("SELECT value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? "
                          "AND key = ? ORDER BY timestamp, step", (run_id, key))
        return [Metric(key, float("nan") if is_nan else value, timestamp, step)
                for value, timestamp, step, is_nan in rows]

    def _artifact_dir(self, run_id: str) -> Path:
        from nbtrack.query.artifacts import local_artifact_dir

        uri = self._rows("SELECT artifact_uri FROM runs WHERE run_uuid = ?", (run_id,))
        local = local_artifact_dir(uri[0][0]) if uri and uri[0][0] else None
        if local is None:
            raise NotFound(f"the artifacts of run {run_id} are not in a local folder")
        return local

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """As MLflow's local artifact repository lists them: one level, sorted by path."""
        root = self._artifact_dir(run_id)
        folder = root / path if path else root
        if not folder.is_dir():
            return []
        infos = []
        for entry in os.scandir(folder):
            relative = Path(entry.path).relative_to(root).as_posix()
            is_dir = entry.is_dir()
            infos.append(FileInfo(relative, is_dir, None if is_dir else entry.stat().st_size))
        return sorted(infos, key=lambda info: info.path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        source = self._artifact_dir(run_id) / path
        if not source.exists():
            raise NotFound(f"no artifact {path} in run {run_id}")
        if dst_path is None:
            return str(source)
        target = Path(dst_path) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
        return str(target)


def read_client(ref: StoreRef) -> Any:
    """What queries read runs through: :class:`LocalStoreReader` for an embedded SQLite store
    with MLflow's tables, else MLflow's client."""
    db = ref.embedded_db
    if db is not None and db.is_file() and _has_tables(db):
        return LocalStoreReader(db)
    return ref.client()


def _has_tables(db: Path) -> bool:
    try:
        reader = LocalStoreReader(db)
        for table, columns in _NEEDED.items():
            present = {row[1] for row in reader._rows(f"PRAGMA table_info({table})")}
            if not columns <= present:
                return False
    except sqlite3.Error:
        return False
    return True
