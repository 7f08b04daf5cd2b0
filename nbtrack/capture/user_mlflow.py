"""The notebook's own MLflow use: observed, never touched.

A notebook that calls MLflow itself must behave exactly as without nbtrack:
nbtrack sets no MLflow setting in the kernel and never logs into, tags or ends a
run it did not create. It only notes which runs the notebook's MLflow started
and ended, and where, so nbtrack's own run can link to them.

MLflow keeps the active runs of a thread in a list (``fluent._active_run_stack``):
``start_run`` appends, ``end_run`` pops. Swapping that list for one that also
tells us about each append and pop observes every fluent run (nested ones,
autologging's, an implicit run from ``mlflow.log_param``) without a store call
and without changing a single MLflow call. Where the list cannot be swapped (MLflow
imported in the middle of a cell, another MLflow version), the runs are read off
MLflow's state after the cell instead. Nothing here imports MLflow.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

Note = Callable[[str, Any], None]  # ("start" | "end", MLflow's ActiveRun)
_NOT_IMPORTED = object()  # MLflow's state before a cell, when the notebook had not imported it yet
_FLUENT = "mlflow.tracking.fluent"


def _fluent() -> Any:
    return sys.modules.get(_FLUENT)


def _stack_variable(fluent: Any) -> Any:
    variable = getattr(fluent, "_active_run_stack", None)
    return variable if hasattr(variable, "get") and hasattr(variable, "set") else None


class RunStack(list):  # type: ignore[type-arg]
    """MLflow's list of active runs, noting each run the notebook starts or ends."""

    def __init__(self, items: list[Any], note: Note) -> None:
        super().__init__(items)
        self.note = note

    def append(self, run: Any) -> None:
        super().append(run)
        self._tell("start", run)

    def pop(self, *args: Any) -> Any:
        run = super().pop(*args)
        self._tell("end", run)
        return run

    def _tell(self, what: str, run: Any) -> None:
        try:
            self.note(what, run)
        except Exception:  # noqa: BLE001 - inside the user's MLflow call: never raise
            pass


class UserMlflow:
    """Watches the kernel's MLflow (when the notebook imported it) for runs of its own."""

    def __init__(self) -> None:
        self._stack: RunStack | None = None
        self._notes: list[tuple[str, Any]] = []
        self._before: Any = None  # MLflow's state before a cell it was not watched in

    def note(self, what: str, run: Any) -> None:
        self._notes.append((what, run))  # called inside MLflow's start_run/end_run: only a list append

    def before_cell(self) -> None:
        """Observe the notebook's own MLflow runs during the next cell, if it imported MLflow."""
        if _FLUENT not in sys.modules:
            self._before = _NOT_IMPORTED
        elif self.watch():
            self._before = None
        else:
            self._before = self.state()

    def fold_into(self, known: dict[str, dict[str, Any]]) -> bool:
        """Add the runs started or ended since the last call to ``known`` (run id -> link);
        True when ``known`` changed."""
        before, self._before = self._before, None
        if before is not None and _FLUENT in sys.modules:
            self.catch_up(None if before is _NOT_IMPORTED else before)
            self.watch()
        notes, self._notes = self._notes, []
        changed = False
        for what, obj in notes:
            info = describe(obj)
            link = known.get(info["run_id"])
            if link is None:
                known[info["run_id"]] = {**info, "ended": what == "end"}
                changed = True
            elif what == "end" and not link["ended"]:
                link["ended"] = changed = True
        return changed

    def watch(self) -> bool:
        """Observe this thread's active-run list from now on; True if it is observed."""
        fluent = _fluent()
        variable = _stack_variable(fluent) if fluent is not None else None
        if variable is None:
            return False
        current = variable.get()
        if isinstance(current, RunStack) and current is self._stack:
            return True
        if not isinstance(current, list):
            return False
        self._stack = RunStack(list(current), self.note)
        variable.set(self._stack)
        return True

    def state(self) -> tuple[tuple[str, ...], str | None] | None:
        """(active run ids, last ended run id): compared before and after an unobserved cell."""
        fluent = _fluent()
        variable = _stack_variable(fluent) if fluent is not None else None
        if fluent is None or variable is None:
            return None
        last = getattr(fluent, "_last_active_run_id", None)
        last_id = last.get() if last is not None and hasattr(last, "get") else last
        return tuple(_run_id(r) for r in variable.get()), last_id if isinstance(last_id, str) else None

    def catch_up(self, before: tuple[tuple[str, ...], str | None] | None) -> None:
        """After a cell that first imported MLflow: note what its state shows (the runs still
        active, and the last one ended); runs started and ended before the last are not seen."""
        after = self.state()
        if after is None or after == before:
            return
        fluent = _fluent()
        active = list(_stack_variable(fluent).get())
        seen = set(before[0]) if before else set()
        for run in active:
            if _run_id(run) not in seen:
                self.note("start", run)
        if after[1] and (before is None or after[1] != before[1]):
            self.note("end", _ended_run(after[1]))

    def unwatch(self) -> None:
        """Give MLflow back a plain list (``%unload_ext nbtrack``)."""
        fluent = _fluent()
        variable = _stack_variable(fluent) if fluent is not None else None
        if variable is not None and isinstance(variable.get(), RunStack):
            variable.set(list(variable.get()))
        self._stack = None


def _ended_run(run_id: str) -> Any:
    """A run that started and ended before we watched: read back from the notebook's own store
    (already open in this process, so this is one read and nothing else), else just its id."""
    mlflow = sys.modules.get("mlflow")
    try:
        return mlflow.MlflowClient().get_run(run_id) if mlflow is not None else run_id
    except Exception:  # noqa: BLE001 - the id alone still links the run
        return run_id


def _run_id(run: Any) -> str:
    return str(getattr(getattr(run, "info", None), "run_id", run))


def describe(run: Any) -> dict[str, Any]:
    """What nbtrack keeps of a user run: its id, experiment, name, parent and store."""
    info = getattr(run, "info", None)
    if info is None:  # only an id is known (a run ended in the cell that imported MLflow)
        return {"run_id": str(run), "tracking_uri": _tracking_uri()}
    tags = getattr(getattr(run, "data", None), "tags", None) or {}
    found: dict[str, Any] = {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "name": getattr(info, "run_name", None),
        "tracking_uri": _tracking_uri(),
    }
    parent = tags.get("mlflow.parentRunId")
    if parent:
        found["parent_run_id"] = parent
    return {k: v for k, v in found.items() if v is not None}


def _tracking_uri() -> str | None:
    mlflow = sys.modules.get("mlflow")
    try:
        return str(mlflow.get_tracking_uri()) if mlflow is not None else None
    except Exception:  # noqa: BLE001
        return None


_TAG_LIMIT = 7900  # MLflow keeps tag values up to 8,000 characters


def link_tag(runs: dict[str, dict[str, Any]]) -> str:
    """The user runs as one JSON tag value; beyond MLflow's limit, the first that fit and a count."""
    import json

    items = list(runs.values())
    kept: list[dict[str, Any]] = []
    size = 2
    for item in items:
        text = json.dumps(item, separators=(",", ":"), default=str)
        if size + len(text) + 1 > _TAG_LIMIT - 20:
            kept.append({"more": len(items) - len(kept)})
            break
        kept.append(item)
        size += len(text) + 1
    return json.dumps(kept, separators=(",", ":"), default=str)
