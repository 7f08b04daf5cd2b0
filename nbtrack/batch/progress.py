"""Progress of executions: a live rich bar on stderr and/or a callback of progress events.

The callback is for other surfaces (the JupyterLab server runs a re-run on a
background thread and forwards these events to the panel). Each is a
:class:`~nbtrack.batch.protocol.ProgressEvent`: ``state`` (``running`` | ``finished``
| ``failed`` | ``delivering`` | ``done``), the counts ``done``, ``failed``,
``running``, ``total``, and where known ``index``, ``run_id``, ``cell`` and ``cells``
(the cell being executed, 1-based), ``status`` and ``error``.
"""

from __future__ import annotations

import warnings
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from nbtrack.batch.jobs import FINISHED
from nbtrack.batch.protocol import ProgressCallback, ProgressEvent, State, WorkerEvent

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

#: ``True`` for a rich bar on stderr, a callable for the events, None or False for neither.
ProgressOption = bool | ProgressCallback | None


class Progress:
    """Counts executions; shows them on a rich bar (``show``) and reports them to ``callback``."""

    def __init__(self, total: int, *, title: str = "sweep", progress: ProgressOption = None,
                 run_ids: dict[int, str] | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.running: set[int] = set()
        self._finished: set[int] = set()
        self._run_ids = run_ids if run_ids is not None else {}  # may fill later
        self._callback = progress if callable(progress) else None
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        if progress is True:
            self._bar = _rich_bar()
            self._task = self._bar.add_task(title, total=total, counts=self._counts())

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _counts(self) -> str:
        return (f"[green]✓ {self.done}[/] [red]✗ {self.failed}[/] "
                f"[cyan]▶ {len(self.running)}[/]")

    def _event(self, state: State, index: int | None = None) -> ProgressEvent:
        """The counts as they are now, and the execution ``index`` with its run where known."""
        event: ProgressEvent = {
            "state": state, "done": self.done, "failed": self.failed,
            "running": len(self.running), "total": self.total,
        }
        if index is not None:
            event["index"] = index
            if index in self._run_ids:
                event["run_id"] = self._run_ids[index]
        return event

    def _emit(self, event: ProgressEvent) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done + self.failed, counts=self._counts())
        if self._callback is None:
            return
        try:
            self._callback(event)
        except Exception as exc:  # a broken callback must not stop the executions
            warnings.warn(f"nbtrack: progress callback failed: {exc!r}", stacklevel=2)
            self._callback = None

    def started(self, index: int) -> None:
        if index not in self._finished:
            self.running.add(index)
            self._emit(self._event("running", index))

    def cell(self, index: int, cell: int, cells: int) -> None:
        event = self._event("running", index)
        event["cell"], event["cells"] = cell, cells
        self._emit(event)

    def finished(self, index: int, status: str, error: str | None = None) -> None:
        """Idempotent: the spark backend may learn of an end twice (store poll, then result)."""
        if index in self._finished:
            return
        self._finished.add(index)
        self.running.discard(index)
        if status == FINISHED:
            self.done += 1
            event = self._event("finished", index)
            event["status"] = status
        else:
            self.failed += 1
            event = self._event("failed", index)
            event["status"], event["error"] = status, error
        self._emit(event)

    def follow(self, event: WorkerEvent) -> None:
        """Show what a worker reported: an execution started, a cell, an execution's end."""
        if event["event"] == "start":
            self.started(event["index"])
        elif event["event"] == "cell":
            self.cell(event["index"], event["cell"], event["cells"])
        else:
            self.finished(event["index"], event["status"], event["error"])

    def note(self, state: Literal["delivering", "done"], *, status: str | None = None) -> None:
        """A phase of the whole batch: ``delivering`` (waiting for the store), ``done`` (with
        the batch's ``status`` when it has one)."""
        event = self._event(state)
        if status is not None:
            event["status"] = status
        self._emit(event)


def _rich_bar() -> RichProgress:
    from rich import progress as rp
    from rich.console import Console

    return rp.Progress(
        rp.SpinnerColumn(),
        rp.TextColumn("[bold]{task.description}"),
        rp.BarColumn(),
        rp.MofNCompleteColumn(),
        rp.TextColumn("{task.fields[counts]}"),
        rp.TimeElapsedColumn(),
        rp.TextColumn("ETA"),
        rp.TimeRemainingColumn(),
        console=Console(stderr=True),
    )
