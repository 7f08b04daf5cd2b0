"""A run as the kernel keeps it while it is open, and what ``nbtrack.current_run()`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunState:
    key: str
    name: str | None = None
    started: bool = False  # run_start written
    params: dict[str, str] = field(default_factory=dict)  # as logged
    values: dict[str, Any] = field(default_factory=dict)  # params as Python values
    pending: dict[str, Any] | None = None  # parameters cell values awaiting papermill's injected cell
    steps: dict[str, int] = field(default_factory=dict)  # next step per metric
    executions: list[tuple[int, str]] = field(default_factory=list)  # (notebook index, label)
    cells: int = 0
    last_error: bool = False
    attach: str | None = None  # MLflow run id a sweep/re-run created for this run (NBTRACK_RUN_ID)
    attach_file: str | None = None  # the run id will be written there (by a sweep)
    extra_tags: dict[str, str] = field(default_factory=dict)
    user_runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # the notebook's own MLflow runs
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {name, flavor, size} logged
    logged_objects: set[int] = field(default_factory=set)  # ids of the objects logged as models
    peak_memory_mb: float = 0.0  # the highest cell peak so far (system/kernel_peak_memory_mb)


@dataclass(frozen=True)
class RunHandle:
    """What ``nbtrack.current_run()`` returns."""

    key: str
    experiment: str
    notebook: str | None
    params: dict[str, str]
    tracking_uri: str
    journal_dir: Path = field(repr=False)
    session: str = field(repr=False)

    @property
    def run_id(self) -> str | None:
        """The MLflow run id, once the delivery process has created the run."""
        from nbtrack.journal.state import RunIndex

        for where in (self.journal_dir, self.journal_dir / "done"):  # delivered journals are archived
            run_id = RunIndex(where, self.session).get(self.key)
            if run_id:
                return run_id
        return None
