"""Progress of executions: a live rich bar on stderr and/or a callback of plain dicts.

The callback is for other surfaces (the JupyterLab server runs a re-run on a
background thread and forwards these dicts to the panel). Every dict has
``state`` (``running`` | ``finished`` | ``failed`` | ``delivering`` | ``done``),
the counts ``done``, ``failed``, ``running``, ``total``, and where known
``index``, ``run_id``, ``cell`` and ``cells`` (the cell being executed, 1-based).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any

from nbtrack.batch.jobs import FINISHED

Callback = Callable[[dict[str, Any]], None]
ProgressOption = bool | Callback | None


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
        self._bar: Any = None
        self._task: Any = None
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

    def _emit(self, state: str, index: int | None = None, **extra: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done + self.failed, counts=self._counts())
        if self._callback is None:
            return
        event: dict[str, Any] = {
            "state": state, "done": self.done, "failed": self.failed,
            "running": len(self.running), "total": self.total,
        }
        if index is not None:
            event["index"] = index
            if index in self._run_ids:
                event["run_id"] = self._run_ids[index]
        event.update(extra)
        try:
            self._callback(event)
        except Exception as exc:  # a broken callback must not stop the executions
            warnings.warn(f"nbtrack: progress callback failed: {exc!r}", stacklevel=2)
            self._callback = None

    def started(self, index: int) -> None:
        if index not in self._finished:
            self.running.add(index)
            self._emit("running", index)

    def cell(self, index: int, cell: int, cells: int) -> None:
        self._emit("running", index, cell=cell, cells=cells)

    def finished(self, index: int, status: str, error: str | None = None) -> None:
        """Idempotent: the spark backend may learn of an end twice (store poll, then result)."""
        if index in self._finished:
            return
        self._finished.add(index)
        self.running.discard(index)
        if status == FINISHED:
            self.done += 1
            self._emit("finished", index, status=status)
        else:
            self.failed += 1
            self._emit("failed", index, status=status, error=error)

    def note(self, state: str, **extra: Any) -> None:
        """A phase of the whole batch: ``delivering`` (waiting for the store), ``done``."""
        self._emit(state, **extra)


def _rich_bar() -> Any:
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
