"""Creating a local sweep's MLflow runs on a thread while its kernels already start.

Why: importing MLflow and inserting the runs costs the sweep ~2-3 s that the
kernels need not wait for. Each kernel gets a run id *file* instead of a run id
(``NBTRACK_RUN_ID_FILE``); the delivery process waits for that file before it
logs anything, and this thread writes it (atomically) once the child run
exists. The parent run (and its journal, :mod:`nbtrack.batch.parent_run`),
``plan.json`` and its artifact are written here too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from nbtrack import tags
from nbtrack.batch.parent_run import ParentJournal, open_parent
from nbtrack.batch.plan import PLAN_ARTIFACT_DIR, PLAN_FILE, SweepPlan
from nbtrack.batch.store import Store, latest_attempts


def write_run_id(path: Path, run_id: str) -> None:
    """Temp file + rename: the delivery process never reads half an id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(run_id)
    os.replace(temp, path)


class RunCreator:
    """Opens the store, creates the parent (new sweeps) and one child per index, in order.

    ``run_ids`` fills as children appear. ``started(index)`` may come before the
    child exists: it is then created RUNNING instead of SCHEDULED. ``parent`` is the
    parent run's journal: given (``--resume``), or set once a new parent exists.
    """

    def __init__(self, plan: SweepPlan, todo: list[int], id_files: dict[int, Path], *,
                 open_store: Callable[[], Store], new_parent: dict[str, str] | None,
                 parent: ParentJournal | None = None,
                 on_error: Callable[[BaseException], None]) -> None:
        self.plan = plan
        self.todo = todo
        self.id_files = id_files
        self.run_ids: dict[int, str] = {}
        self.store: Store | None = None
        self.parent = parent
        self.error: BaseException | None = None
        self._open_store = open_store
        self._new_parent = new_parent  # extra tags of the parent run to create, if any
        self._on_error = on_error
        self._lock = threading.Lock()
        self._started: set[int] = set()
        self._thread = threading.Thread(target=self._main, name="nbtrack-sweep-runs", daemon=True)

    def start(self) -> RunCreator:
        self._thread.start()
        return self

    def started(self, index: int) -> None:
        """A worker took this job: its run is RUNNING (now, or as soon as it exists)."""
        with self._lock:
            run_id = self.run_ids.get(index)
            if run_id is None:
                self._started.add(index)
                return
        assert self.store is not None
        self.store.mark_running(run_id)

    def wait(self) -> Store:
        """The open store once every run exists; re-raises what went wrong on the thread."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.store is not None
        return self.store

    def join(self) -> None:
        """Wait for the thread without raising (an interrupted sweep cleans up what exists)."""
        self._thread.join()

    def _main(self) -> None:
        try:
            self._create()
        except BaseException as exc:  # noqa: BLE001 - handed to the sweep's thread
            self.error = exc
            self._on_error(exc)

    def _create(self) -> None:
        plan = self.plan
        self.store = store = self._open_store()
        if self._new_parent is not None:
            self.parent = open_parent(plan, store, extra_tags=self._new_parent)
            plan.save()
            store.client.log_artifact(plan.parent_run_id, str(plan.output_dir / PLAN_FILE),
                                      PLAN_ARTIFACT_DIR)
            previous = {}
        else:
            previous = latest_attempts(store.sweep_runs(plan.sweep_id)[1])
        for index in self.todo:
            with self._lock:
                running = index in self._started
            run_id = store.create_child(
                plan.experiment_id, parent_run_id=plan.parent_run_id, sweep_id=plan.sweep_id,
                index=index, params=plan.params(index), notebook=plan.notebook,
                output=str(plan.output(index)), status="RUNNING" if running else "SCHEDULED",
            )
            if index in previous:
                store.client.set_tag(previous[index].info.run_id, tags.SWEEP_SUPERSEDED_BY, run_id)
            with self._lock:
                self.run_ids[index] = run_id
                late = index in self._started and not running
            if late:  # started while its run was being created
                store.mark_running(run_id)
            write_run_id(self.id_files[index], run_id)
