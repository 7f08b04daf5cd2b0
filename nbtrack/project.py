"""Where a notebook's project lives and where nbtrack keeps its files there.

``<project>`` is the git root of the notebook, else the notebook's folder. All
of nbtrack's state lives in ``<project>/.nbtrack/``::

    .nbtrack/
      mlflow.db          MLflow SQLite store (embedded default)
      artifacts/         MLflow artifact roots, one folder per experiment
      journal/           append-only event journals, one per kernel session
      lake/              Delta tables (bronze / silver / gold)
      outputs/           papermill output notebooks of sweeps and re-runs
      delivery.lock      single-instance lock of the delivery process
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = ".nbtrack"


def find_project_root(start: str | os.PathLike[str]) -> Path:
    """The git root above ``start`` (a notebook file or folder), else the folder itself."""
    path = Path(start).resolve()
    folder = path if path.is_dir() else path.parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


@dataclass(frozen=True)
class Project:
    """Paths of one project's nbtrack state; creates nothing until asked."""

    root: Path

    @classmethod
    def for_notebook(cls, notebook: str | os.PathLike[str] | None) -> Project:
        return cls(find_project_root(notebook if notebook else Path.cwd()))

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def journal_dir(self) -> Path:
        return self.state_dir / "journal"

    @property
    def artifacts_dir(self) -> Path:
        return self.state_dir / "artifacts"

    @property
    def lake_dir(self) -> Path:
        return self.state_dir / "lake"

    @property
    def outputs_dir(self) -> Path:
        return self.state_dir / "outputs"

    @property
    def mlflow_db(self) -> Path:
        return self.state_dir / "mlflow.db"

    @property
    def default_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    def experiment_name(self, notebook: str | os.PathLike[str] | None) -> str:
        """The notebook's path relative to the project (posix), ``untitled`` if unknown."""
        if not notebook:
            return "untitled"
        path = Path(notebook)
        if not path.exists():
            return path.as_posix()  # a workspace path (Databricks): experiments are named by it
        path = path.resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def artifact_location(self, experiment: str) -> str:
        """A readable, unique artifact folder for an experiment of the embedded store."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("_")[:80] or "experiment"
        digest = hashlib.sha1(experiment.encode()).hexdigest()[:8]
        return (self.artifacts_dir / f"{slug}-{digest}").as_uri()

    def ensure(self) -> Path:
        """Create ``.nbtrack/`` (with a .gitignore so it is never committed by accident)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ignore = self.state_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")
        return self.state_dir
