"""Each cell execution: matched to its notebook cell, turned into params, metrics and a cell record.

``pre`` runs before the cell (IPython's ``pre_run_cell``), ``post`` after it
(``post_run_cell``). Between the two the cell's figures and logged metrics refer
to it; afterwards its params, metrics, the notebook's own MLflow runs and the
cell record itself are written as one batch of journal lines.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbtrack import env
from nbtrack.capture.notebook import CellRef, source_sha
from nbtrack.capture.params import literal_assignments
from nbtrack.capture.usage import CellUsage
from nbtrack.tags import PEAK_MEMORY

if TYPE_CHECKING:
    from nbtrack.capture.session import TrackingSession

MAX_DEFER_CELLS = 3  # cells to wait for the notebook's name before settling on "untitled"


@dataclass
class CellState:
    raw: str
    cell_id: str | None
    exec_count: int
    start: float
    figures: int = 0
    display_ids: dict[str, int] = field(default_factory=dict)
    outputs: int = 0
    ref: CellRef | None = None  # the notebook cell, found once at the cell's start


class CellsRecorder:
    """Records every cell execution of a session, and what the cell set or printed."""

    def __init__(self, session: TrackingSession) -> None:
        self.session = session
        self.usage = CellUsage()
        self.sources: list[str] = []  # executed sources until the notebook is known
        self.last_index: int | None = None  # notebook index of the cell that ran last

    def pre(self, raw: str, cell_id: str | None, exec_count: int) -> None:
        session = self.session
        ref = session.nbfile.find(cell_id, raw, after=self.last_index)
        if cell_id is None and ref is not None:  # papermill sends no ids: matched by source, for figures
            cell_id = ref.cell_id
        session.cell = CellState(raw=raw, cell_id=cell_id, exec_count=exec_count, start=time.time(), ref=ref)
        session.user_mlflow.before_cell()
        session.loops.cell_started()
        session.output.cell_started()
        self.usage.start()
        wanted = env.NOTEBOOK.get()
        if wanted and wanted != session.detection.told:  # detect again only when the value changes
            session.set_notebook(wanted)

    def post(self, result: Any) -> None:
        session = self.session
        cell, session.cell = session.cell, None
        info = getattr(result, "info", None)
        raw = getattr(info, "raw_cell", None) or (cell.raw if cell else "")
        if cell is None:  # the %load_ext cell itself: no pre_run_cell was seen
            cell = CellState(raw=raw, cell_id=getattr(info, "cell_id", None),
                             exec_count=int(getattr(result, "execution_count", 0) or 0), start=time.time())
        if session.skip_next:
            session.skip_next = False
            return
        session.cell = cell  # metrics and params of this cell refer to it
        session.loops.cell_finished()
        session.output.cell_finished()
        try:
            with session.journal.batch():
                self._record(cell, raw, result)
        finally:
            session.cell = None
        session.poke_delivery()

    def _record(self, cell: CellState, raw: str, result: Any) -> None:
        session = self.session
        duration = time.time() - cell.start
        cpu_s, peak_mb = self.usage.finish()
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        exec_count = getattr(result, "execution_count", None) or cell.exec_count
        if session.idle and session.run is None and is_control_cell(raw):
            return  # %nbtrack runs after %nbtrack end must not open an empty run
        session.idle = False
        run = session.ensure_run()
        if session.notebook is None and not run.started:  # give up once the run settled on "untitled"
            self.sources.append(raw)
            session.retry_detection(self.sources)
        ref = cell.ref or session.nbfile.find(cell.cell_id, raw, after=self.last_index)  # %load_ext: no pre
        cell_id = cell.cell_id or (ref.cell_id if ref else None)
        cell.cell_id = cell_id
        tree = parse_cell(session.shell, raw)
        is_injected = raw.startswith("# Parameters\n") and (
            (ref is not None and "injected-parameters" in ref.tags) or not session.nbfile.has_source(raw)
        )
        metrics: list[str] = []
        with session.safety.guard("reading parameters"):
            if tree is not None and is_injected:
                session.params.injected_cell(literal_assignments(tree), cell_id)
            elif tree is not None and ref is not None and "parameters" in ref.tags:
                session.params.parameters_cell(literal_assignments(tree), cell_id)
            elif run.pending is not None:
                session.params.flush_pending(run)
        run = session.ensure_run()
        session.link_user_runs(run)
        if tree is not None and not error and session.config.auto_metrics and not is_injected:
            with session.safety.guard("reading metrics"):
                metrics = session.metrics.from_cell(tree, session.shell.user_ns, cell_id, skip=session.loops.covers)
                session.loops.tag_sampling()
        if not run.started and (session.notebook is not None or run.cells + 1 >= MAX_DEFER_CELLS):
            session.write_run_start(run)
        run.cells += 1
        run.last_error = error is not None
        index = ref.index if ref else None
        if index is not None:
            run.executions.append((index, cell_id or f"#{index}"))
            self.last_index = index
        session.record(
            "cell", exec_count=exec_count, cell_id=cell_id, source=raw,
            source_sha=source_sha(raw), start=cell.start, duration_s=round(duration, 6),
            status="error" if error is not None else "ok",
            error_name=type(error).__name__ if error is not None else None,
            error_value=str(error)[:2000] if error is not None else None,
            outputs=cell.outputs, metrics=metrics, index=index, cpu_s=round(cpu_s, 4),
            peak_memory_mb=round(peak_mb, 1) if peak_mb is not None else None,
        )
        if peak_mb is not None and round(peak_mb, 1) > run.peak_memory_mb:
            # The run's high-water mark, exact (sampling every few seconds misses short peaks): a
            # point only when a cell sets a new one, so its last value is what the run needed.
            run.peak_memory_mb = round(peak_mb, 1)
            session.metrics.log_one(PEAK_MEMORY, run.peak_memory_mb, None, cell_id)


def is_control_cell(raw: str) -> bool:
    """A cell of only nbtrack magics and comments (it says nothing about the experiment)."""
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    return bool(lines) and all(
        line.startswith(("%nbtrack", "%load_ext nbtrack", "%reload_ext nbtrack", "#")) for line in lines
    )


def parse_cell(shell: Any, raw: str) -> ast.Module | None:
    """The cell's Python, after IPython's transforms (magics, ``!cmd``) when plain parsing fails."""
    try:
        return ast.parse(raw)
    except SyntaxError:
        pass
    try:
        return ast.parse(shell.transform_cell(raw)) if shell is not None else None
    except (SyntaxError, ValueError, TypeError):
        return None


def out_of_order(executions: list[tuple[int, str]]) -> list[str]:
    """``"b ran after c"`` for each cell run above the one run before it."""
    found = []
    for (prev_index, prev_label), (index, label) in zip(executions, executions[1:], strict=False):
        if index < prev_index:
            found.append(f"{label} ran after {prev_label}")
    return found[:50]
