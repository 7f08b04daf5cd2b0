"""The kernel's tracking session: run boundaries, params, metrics, figures, cells.

Everything here turns into journal events and returns; nothing waits on MLflow
or Delta. A run starts with the first cell after ``%load_ext nbtrack`` and ends
at ``%nbtrack end`` / ``new``, when the parameters change, or when the kernel
exits. Its ``run_start`` event is written once the notebook is known (papermill
only reveals it a few cells in); the delivery process holds the run's earlier
events until then.
"""

from __future__ import annotations

import ast
import atexit
import math
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbtrack import env, tags
from nbtrack.capture import notebook as nbdetect
from nbtrack.capture.figures import figure_from_bundle, render_figure
from nbtrack.capture.metrics import MetricNames, as_number, assigned_names, key_problem
from nbtrack.capture.params import json_value, literal_assignments, param_string
from nbtrack.capture.safety import Safety
from nbtrack.capture.user_mlflow import UserMlflow, describe, link_tag
from nbtrack.config import NbtrackConfig
from nbtrack.journal import JournalWriter
from nbtrack.project import Project
from nbtrack.store import StoreRef, resolve

_PAPERMILL_PATH_VARS = (
    "PAPERMILL_INPUT_PATH", "PAPERMILL_OUTPUT_PATH", "PAPERMILL_INPUT_DIR", "PAPERMILL_OUTPUT_DIR",
)
_MAX_DEFER_CELLS = 3  # cells to wait for the notebook's name before settling on "untitled"
_NOT_IMPORTED = object()  # MLflow's state before a cell, when the notebook had not imported it yet


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


@dataclass
class CellState:
    raw: str
    cell_id: str | None
    exec_count: int
    start: float
    figures: int = 0
    display_ids: dict[str, int] = field(default_factory=dict)
    outputs: int = 0
    ref: nbdetect.CellRef | None = None  # the notebook cell, found once at the cell's start


@dataclass(frozen=True)
class RunHandle:
    """What ``nbtrack.current_run()`` returns."""

    key: str
    experiment: str
    notebook: str | None
    params: dict[str, str]
    tracking_uri: str
    _session: TrackingSession

    @property
    def run_id(self) -> str | None:
        """The MLflow run id, once the delivery process has created the run."""
        from nbtrack.journal.state import RunIndex

        folder = self._session.journal.journal_dir
        for where in (folder, folder / "done"):  # a delivered journal is archived to done/
            run_id = RunIndex(where, self._session.session_id).get(self.key)
            if run_id:
                return run_id
        return None


class TrackingSession:
    """One kernel's capture state; created by ``%load_ext nbtrack``."""

    def __init__(self, shell: Any, config: NbtrackConfig) -> None:
        self.shell = shell
        self.config = config
        self.session_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.safety = Safety(strict=config.strict, record=self._record_warning)
        self.metric_names = MetricNames(config.metric_words)
        self.detection = nbdetect.Detection(None, "none")
        # MLFLOW_TRACKING_URI as it was at load: a notebook that points its own MLflow
        # elsewhere later does not move nbtrack's runs.
        self._env_tracking_uri = env.MLFLOW_TRACKING_URI.get()
        self.store: StoreRef = self._resolve()
        self.nbfile = nbdetect.NotebookFile(None)
        self.journal: JournalWriter = None  # type: ignore[assignment]  # set by open()
        self.run: RunState | None = None
        self.cell: CellState | None = None
        self.skip_next = False
        self.idle = False  # after %nbtrack end: only a real cell starts the next run
        self.sources: list[str] = []  # executed sources until the notebook is known
        self.last_index: int | None = None  # notebook index of the cell that ran last
        self.under_papermill = False
        self.delivery: Any = None
        self._first_run = True
        self._closed = False
        self._last_poke = 0.0
        self.user_mlflow = UserMlflow(self._note_user_run)
        self._user_notes: list[tuple[str, Any]] = []
        self._mlflow_before: Any = None  # MLflow's state before a cell it was not watched in

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Detect the notebook, open the journal, start delivery. Fast: no MLflow here."""
        self._detect()
        from nbtrack.config import apply_sources

        for problem in apply_sources(self.config, self.project.root):
            self.safety.warn(problem)
        self.store = self._resolve()  # [tool.nbtrack] and NBTRACK_* may name another project or store
        self.project.ensure()
        self.journal = JournalWriter(self.project.journal_dir, self.session_id, fsync=self.config.fsync)
        self.journal.append(
            "session_start",
            pid=os.getpid(),
            pid_started=_process_start_time(),
            host=socket.gethostname(),
            python=sys.version.split()[0],
            executable=sys.executable,
            cwd=os.getcwd(),
            version=_version(),
            delivery=self.config.delivery,
            tracking_uri=self.store.tracking_uri,
        )
        from nbtrack.delivery.launcher import start_delivery

        self.delivery = start_delivery(self.project, self.session_id, self.config)
        atexit.register(self.close)
        with self.safety.guard("reading parameters of cells run before %load_ext"):
            self._adopt_earlier_parameters()

    def _adopt_earlier_parameters(self) -> None:
        """Params set before nbtrack was loaded: papermill injects its cell at the very top of a
        notebook without a parameters cell, above ``%load_ext nbtrack``."""
        history = list(getattr(self.shell, "user_ns", {}).get("In", []) or [])[1:]
        for raw in history:
            if not isinstance(raw, str):
                continue
            tree = _parse(self.shell, raw)
            if tree is None:
                continue
            ref = self.nbfile.find(None, raw)
            if raw.startswith("# Parameters\n") and (ref is None or "parameters" not in ref.tags):
                self._injected_cell(literal_assignments(tree), ref.cell_id if ref else None)
            elif ref is not None and "parameters" in ref.tags:
                self._parameters_cell(literal_assignments(tree), ref.cell_id)

    def close(self, status: str | None = None) -> None:
        """End the run and the session; called at unload and at interpreter exit."""
        if self._closed:
            return
        self._closed = True
        try:
            self.end_run(status)
            self.journal.append("session_end")
            self.journal.close()
            if self.delivery is not None:
                self.delivery.stop(timeout=self.config.flush_timeout)
        except Exception as exc:  # noqa: BLE001 - exiting kernels must exit
            print(f"nbtrack: could not close the session cleanly ({exc})", file=sys.stderr)
        self.user_mlflow.unwatch()
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass

    # -- notebook and project ------------------------------------------------------------------

    def _detect(self, sources: list[str] | None = None) -> None:
        user_ns = getattr(self.shell, "user_ns", {}) if self.shell is not None else {}
        self.detection = nbdetect.detect(user_ns, self.config.notebook, sources or ())
        self.under_papermill = self.under_papermill or bool(
            self.detection.papermill_input or self.detection.papermill_output or env.SWEEP_ID.get()
        )
        if self.detection.notebook is not None:
            self.nbfile = nbdetect.NotebookFile(self.detection.notebook)
        self.store = self._resolve()

    def _resolve(self) -> StoreRef:
        """This session's project, store and lake, by the rule every process follows."""
        notebook = self.detection.notebook
        return resolve(notebook, config=self.config, env_tracking_uri=self._env_tracking_uri)

    @property
    def project(self) -> Project:
        return self.store.project

    @property
    def notebook(self) -> Path | None:
        return self.detection.notebook

    def set_notebook(self, path: str) -> None:
        """Point capture at another notebook (the JupyterLab panel tells us the real path)."""
        self.config.notebook = path
        old = self.notebook
        self._detect()
        if self.notebook != old and self.run is not None and self.run.started:
            self.end_run()

    def _retry_detection(self) -> None:
        """Cells run so far can name the notebook (by their sources, or papermill's output appearing);
        only the first few cells of the session are tried, so an unknown notebook costs no cell anything."""
        if self.notebook is not None or len(self.sources) > nbdetect.MAX_SOURCES:
            return
        self._detect(self.sources)

    # -- runs -----------------------------------------------------------------------------------

    def _ensure_run(self) -> RunState:
        if self.run is None:
            self.run = RunState(key=uuid.uuid4().hex)
            if self._first_run:
                self._first_run = False
                self.run.attach = env.RUN_ID.get()
                self.run.attach_file = env.RUN_ID_FILE.get() if self.run.attach is None else None
                self.run.extra_tags = env.run_tags()
        return self.run

    def _write_run_start(self, run: RunState) -> None:
        if run.started:
            return
        if self.notebook is None:
            self.safety.warn(
                nbdetect.not_found_message(self.detection),
                key="no-notebook",
            )
        run.started = True
        experiment = self.project.experiment_name(self.notebook)
        run_tags = {
            tags.NOTEBOOK: experiment,
            tags.SESSION: self.session_id,
            tags.RUN_KEY: run.key,
            tags.ORIGIN: self._origin(),
            **run.extra_tags,
        }
        if env.SWEEP_ID.get():
            run_tags[tags.SWEEP_ID] = env.SWEEP_ID.get() or ""
        if self.detection.papermill_input:
            run_tags[tags.PAPERMILL_INPUT] = str(self.detection.papermill_input)
        if self.detection.papermill_output:
            run_tags[tags.PAPERMILL_OUTPUT] = str(self.detection.papermill_output)
        self.journal.append(
            "run_start",
            run=run.key,
            experiment=experiment,
            notebook=str(self.notebook) if self.notebook else None,
            project=str(self.project.root),
            tracking_uri=self.store.tracking_uri,
            name=run.name,
            mlflow_run_id=run.attach,
            mlflow_run_id_file=run.attach_file,
            parent_run_id=env.PARENT_RUN_ID.get(),
            tags=run_tags,
            origin=run_tags[tags.ORIGIN],
            papermill_input=str(self.detection.papermill_input or "") or None,
            papermill_output=str(self.detection.papermill_output or "") or None,
        )

    def _origin(self) -> str:
        if self.under_papermill:
            return "papermill"
        return "nbconvert" if self.detection.how == nbdetect.NBCONVERT else "interactive"

    def _emit(self, type_: str, **payload: Any) -> None:
        run = self._ensure_run()
        self.journal.append(type_, run=run.key, **payload)

    def emit(self, type_: str, **payload: Any) -> None:
        """Record an event for the current run (used by nbtrack.capture.lineage); never raises."""
        with self.safety.guard(f"recording {type_}"):
            self._emit(type_, **payload)

    def new_run(self, name: str | None = None, carry: dict[str, Any] | None = None) -> RunState:
        """End the current run and start another, logging ``carry`` as its first params."""
        self.end_run()
        run = self._ensure_run()
        run.name = name
        if carry:
            self._log_params_now(run, carry, source="carried")
        return run

    def end_run(self, status: str | None = None) -> None:
        run = self.run
        if run is None:
            return
        self._flush_pending_params(run)
        if not run.started and run.cells == 0 and not run.params:
            self.run = None
            return
        with self.safety.guard("noting the notebook's own MLflow runs"):
            self._link_user_runs(run)  # runs MLflow ended since the last cell (at exit, say)
        self._write_run_start(run)
        if status is None:
            stops_on_error = self.under_papermill or self.detection.stops_on_error  # papermill, nbconvert
            status = "FAILED" if (stops_on_error and run.last_error) else "FINISHED"
        self._snapshot_notebook(run)
        self.journal.append(
            "run_end",
            run=run.key,
            status=status,
            notebook=str(self.notebook) if self.notebook else None,
            papermill_output=str(self.detection.papermill_output or "") or None,
            out_of_order=_out_of_order(run.executions),
        )
        self.run = None

    def _snapshot_notebook(self, run: RunState) -> None:
        if self.notebook is None or not self.notebook.is_file():
            return
        with self.safety.guard("saving the notebook snapshot"):
            artifact = f"notebook/{self.notebook.name}"
            blob = self.journal.write_blob(f"{run.key}/{artifact}", self.notebook.read_bytes())
            self.journal.append("artifact", run=run.key, path=artifact, file=blob, kind="notebook",
                                mime="application/x-ipynb+json", cell_id=None, exec_count=None)

    # -- params ---------------------------------------------------------------------------------

    def log_params(self, params: dict[Any, Any], *, source: str, cell_id: str | None = None) -> None:
        with self.safety.guard("logging params"):
            clean: dict[str, Any] = {}
            for key, value in params.items():
                if not isinstance(key, str):
                    self.safety.warn(f"param name {key!r} is not a string; logged as {str(key)!r}")
                    key = str(key)
                problem = key_problem(key)
                if problem:
                    self.safety.warn(f"param skipped: {problem}")
                    continue
                clean[key] = value
            run = self._ensure_run()
            changed = [k for k, v in clean.items() if k in run.params and run.params[k] != self._pstr(v)]
            if changed:  # params are immutable in MLflow: the new values make a new run
                self.new_run(carry={**run.values, **clean})
            else:
                self._log_params_now(run, clean, source=source, cell_id=cell_id)

    def _pstr(self, value: Any) -> str:
        return param_string(value, limit=self.config.max_param_length)

    def _log_params_now(self, run: RunState, values: dict[str, Any], *, source: str,
                        cell_id: str | None = None) -> None:
        new = {k: v for k, v in values.items() if run.params.get(k) != self._pstr(v)}
        if not new:
            return
        for key, value in new.items():
            text = self._pstr(value)
            self._warn_if_truncated(key, value)
            run.params[key] = text
            run.values[key] = value
        self._emit("params", params={k: run.params[k] for k in new},
                   values={k: json_value(v) for k, v in new.items()}, source=source, cell_id=cell_id)

    def _warn_if_truncated(self, key: str, value: Any) -> None:
        if len(self._pstr(value)) < len(str(value)) and not isinstance(value, (dict, list, tuple)):
            self.safety.warn(f"param {key} is longer than {self.config.max_param_length} characters; "
                             "it was truncated", key=f"long-param:{key}")

    def _flush_pending_params(self, run: RunState) -> None:
        if run.pending is not None:
            pending, run.pending = run.pending, None
            self._log_params_now(run, pending, source="parameters")

    def _parameters_cell(self, values: dict[str, Any], cell_id: str | None) -> None:
        """The ``parameters`` cell ran: a new run if values changed, else the same run."""
        for key, value in values.items():  # warned now, under this cell, though logged a cell later
            self._warn_if_truncated(key, value)
        run = self._ensure_run()
        self._flush_pending_params(run)
        if any(k in run.params and run.params[k] != self._pstr(v) for k, v in values.items()):
            run = self.new_run()  # changed values: a new run, whose params this cell defines
        run.pending = values  # papermill's injected cell may still override these

    def _injected_cell(self, values: dict[str, Any], cell_id: str | None) -> None:
        run = self._ensure_run()
        for var in _PAPERMILL_PATH_VARS:
            path = values.pop(var, None)
            if var == "PAPERMILL_INPUT_PATH" and path and self.notebook is None:
                self.config.notebook = str(path)
                self._detect()
            if path:
                run.extra_tags[f"nbtrack.papermill.{var.lower()}"] = str(path)
        merged = {**(run.pending or {}), **values}
        run.pending = None
        self.under_papermill = True
        self._log_params_now(run, merged, source="papermill", cell_id=cell_id)

    # -- metrics --------------------------------------------------------------------------------

    def log_metrics(self, metrics: dict[Any, Any], *, step: int | None = None,
                    cell_id: str | None = None) -> None:
        with self.safety.guard("logging metrics"):
            step = self._step(step)
            for key, value in metrics.items():
                problem = key_problem(key)
                if problem:
                    self.safety.warn(f"metric skipped: {problem}")
                    continue
                number = as_number(value)
                if number is None:
                    kind = type(value).__name__
                    self.safety.warn(f"metric {key} skipped: {kind} is not a number",
                                     key=f"not-a-number:{key}:{kind}")
                    continue
                self._log_metric(key, number, step, cell_id)

    def _step(self, step: Any) -> int | None:
        """A usable step, or None (the next step) with a warning: a bad step never costs the values."""
        if step is None:
            return None
        number = as_number(step)
        if number is not None and math.isfinite(number) and number == int(number):
            return int(number)
        self.safety.warn(f"step {step!r} is not an integer; the values were logged at the next step instead",
                         key=f"bad-step:{type(step).__name__}")
        return None

    def _log_metric(self, key: str, value: float, step: int | None, cell_id: str | None) -> None:
        run = self._ensure_run()
        if step is None:
            step = run.steps.get(key, 0)
        run.steps[key] = max(run.steps.get(key, 0), int(step) + 1)
        cell = self.cell
        self._emit("metric", key=key, value=value, step=int(step),
                   cell_id=cell_id or (cell.cell_id if cell else None),
                   exec_count=cell.exec_count if cell else None)

    # -- figures --------------------------------------------------------------------------------

    def on_display(self, data: Any, transient: Any = None) -> None:
        """Called for every display_data / execute_result the kernel publishes."""
        if not self.config.enabled or not self.config.capture_figures or self._closed:
            return
        with self.safety.guard("capturing a figure"):
            found = figure_from_bundle(data)
            cell = self.cell
            if cell is not None:
                cell.outputs += 1
            if found is None:
                return
            display_id = (transient or {}).get("display_id") if isinstance(transient, dict) else None
            self._save_figure(*found, display_id=display_id)

    def log_figure(self, figure: Any, name: str | None = None) -> None:
        with self.safety.guard("logging a figure"):
            ext, mime, content = render_figure(figure)
            if name:
                artifact = name if "." in Path(name).name else f"{name}.{ext}"
                self._write_figure(f"figures/{artifact}", mime, content)
            else:
                self._save_figure(ext, mime, content)

    def _save_figure(self, ext: str, mime: str, content: bytes, display_id: str | None = None) -> None:
        cell = self.cell
        if cell is None:
            exec_count, label = getattr(self.shell, "execution_count", 0), "x"
            n = 0
        else:
            exec_count, label = cell.exec_count, cell.cell_id or "x" + nbdetect.source_sha(cell.raw)[:8]
            if display_id is not None and display_id in cell.display_ids:
                n = cell.display_ids[display_id]  # an updated display replaces its figure
            else:
                n = cell.figures
                cell.figures += 1
                if display_id is not None:
                    cell.display_ids[display_id] = n
        self._write_figure(f"figures/{exec_count}-{label}-{n}.{ext}", mime, content)

    def _write_figure(self, artifact: str, mime: str, content: bytes) -> None:
        run = self._ensure_run()
        blob = self.journal.write_blob(f"{run.key}/{artifact}", content)
        cell = self.cell
        self._emit("artifact", path=artifact, file=blob, kind="figure", mime=mime,
                   cell_id=cell.cell_id if cell else None, exec_count=cell.exec_count if cell else None)

    # -- cells ----------------------------------------------------------------------------------

    def pre_cell(self, raw: str, cell_id: str | None, exec_count: int) -> None:
        ref = self.nbfile.find(cell_id, raw, after=self.last_index)
        if cell_id is None and ref is not None:  # papermill sends no ids: matched by source, for figures
            cell_id = ref.cell_id
        self.cell = CellState(raw=raw, cell_id=cell_id, exec_count=exec_count, start=time.time(), ref=ref)
        self._watch_user_mlflow()
        wanted = env.NOTEBOOK.get()
        if wanted and wanted != self.detection.told:  # detect again only when the value changes
            self.set_notebook(wanted)

    def post_cell(self, result: Any) -> None:
        cell, self.cell = self.cell, None
        info = getattr(result, "info", None)
        raw = getattr(info, "raw_cell", None) or (cell.raw if cell else "")
        if cell is None:  # the %load_ext cell itself: no pre_run_cell was seen
            cell = CellState(raw=raw, cell_id=getattr(info, "cell_id", None),
                             exec_count=int(getattr(result, "execution_count", 0) or 0), start=time.time())
        if self.skip_next:
            self.skip_next = False
            return
        self.cell = cell  # metrics and params of this cell refer to it
        try:
            with self.journal.batch():
                self._record_cell(cell, raw, result)
        finally:
            self.cell = None
        self._poke_delivery()

    def _record_cell(self, cell: CellState, raw: str, result: Any) -> None:
        duration = time.time() - cell.start
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        exec_count = getattr(result, "execution_count", None) or cell.exec_count
        if self.idle and self.run is None and _is_control_cell(raw):
            return  # %nbtrack runs after %nbtrack end must not open an empty run
        self.idle = False
        run = self._ensure_run()
        if self.notebook is None and not run.started:  # give up once the run settled on "untitled"
            self.sources.append(raw)
            self._retry_detection()
        ref = cell.ref or self.nbfile.find(cell.cell_id, raw, after=self.last_index)  # %load_ext had no pre_cell
        cell_id = cell.cell_id or (ref.cell_id if ref else None)
        cell.cell_id = cell_id
        tree = _parse(self.shell, raw)
        is_injected = raw.startswith("# Parameters\n") and (
            (ref is not None and "injected-parameters" in ref.tags) or not self.nbfile.has_source(raw)
        )
        metrics: list[str] = []
        with self.safety.guard("reading parameters"):
            if tree is not None and is_injected:
                self._injected_cell(literal_assignments(tree), cell_id)
            elif tree is not None and ref is not None and "parameters" in ref.tags:
                self._parameters_cell(literal_assignments(tree), cell_id)
            elif run.pending is not None:
                self._flush_pending_params(run)
        run = self._ensure_run()
        with self.safety.guard("noting the notebook's own MLflow runs"):
            self._link_user_runs(run)
        if tree is not None and not error and self.config.auto_metrics and not is_injected:
            with self.safety.guard("reading metrics"):
                metrics = self._auto_metrics(tree, cell_id)
        if not run.started and (self.notebook is not None or run.cells + 1 >= _MAX_DEFER_CELLS):
            self._write_run_start(run)
        run.cells += 1
        run.last_error = error is not None
        index = ref.index if ref else None
        if index is not None:
            run.executions.append((index, cell_id or f"#{index}"))
            self.last_index = index
        self._emit(
            "cell", exec_count=exec_count, cell_id=cell_id, source=raw,
            source_sha=nbdetect.source_sha(raw), start=cell.start, duration_s=round(duration, 6),
            status="error" if error is not None else "ok",
            error_name=type(error).__name__ if error is not None else None,
            error_value=str(error)[:2000] if error is not None else None,
            outputs=cell.outputs, metrics=metrics, index=index,
        )

    # -- the notebook's own MLflow ---------------------------------------------------------------

    def _watch_user_mlflow(self) -> None:
        """Before a cell: observe the notebook's own MLflow runs, if it imported MLflow."""
        if "mlflow.tracking.fluent" not in sys.modules:
            self._mlflow_before = _NOT_IMPORTED
        elif self.user_mlflow.watch():
            self._mlflow_before = None
        else:
            self._mlflow_before = self.user_mlflow.state()

    def _note_user_run(self, what: str, run: Any) -> None:
        self._user_notes.append((what, run))  # called inside MLflow's start_run/end_run: only a list append

    def _link_user_runs(self, run: RunState) -> None:
        """Record which MLflow runs the notebook started or ended, as a tag of nbtrack's run."""
        before, self._mlflow_before = self._mlflow_before, None
        if before is not None and "mlflow.tracking.fluent" in sys.modules:
            self.user_mlflow.catch_up(None if before is _NOT_IMPORTED else before)
            self.user_mlflow.watch()
        notes, self._user_notes = self._user_notes, []
        changed = False
        for what, obj in notes:
            info = describe(obj)
            known = run.user_runs.get(info["run_id"])
            if known is None:
                run.user_runs[info["run_id"]] = {**info, "ended": what == "end"}
                changed = True
            elif what == "end" and not known["ended"]:
                known["ended"] = changed = True
        if changed:
            self._emit("tags", tags={tags.USER_RUNS: link_tag(run.user_runs)})

    def _auto_metrics(self, tree: ast.Module, cell_id: str | None) -> list[str]:
        user_ns = self.shell.user_ns
        logged = []
        for name in assigned_names(tree):
            if name in self.metric_names and name in user_ns:
                number = as_number(user_ns[name])
                if number is not None:
                    self._log_metric(name, number, None, cell_id)
                    logged.append(name)
        return logged

    # -- delivery -------------------------------------------------------------------------------

    def _poke_delivery(self) -> None:
        now = time.monotonic()
        if now - self._last_poke < 1.0 or self.delivery is None:
            return
        self._last_poke = now
        with self.safety.guard("checking delivery"):
            for message in self.delivery.poke():
                self.safety.warn(message)

    def flush(self, timeout: float | None = None) -> bool:
        if self.run is not None:
            self._flush_pending_params(self.run)
            self._write_run_start(self.run)
        if self.delivery is None:
            return False
        return bool(self.delivery.wait(self.journal.seq, timeout or self.config.flush_timeout))

    def current_run(self) -> RunHandle | None:
        if self.run is None:
            return None
        params = dict(self.run.params)
        params.update({k: self._pstr(v) for k, v in (self.run.pending or {}).items()})
        return RunHandle(self.run.key, self.project.experiment_name(self.notebook),
                         str(self.notebook) if self.notebook else None, params,
                         self.store.tracking_uri, self)

    def _record_warning(self, message: str) -> None:
        if self.journal is not None and not self._closed:
            self.journal.append("warning", run=self.run.key if self.run else None, message=message)


def _is_control_cell(raw: str) -> bool:
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    return bool(lines) and all(
        line.startswith(("%nbtrack", "%load_ext nbtrack", "%reload_ext nbtrack", "#")) for line in lines
    )


def _parse(shell: Any, raw: str) -> ast.Module | None:
    try:
        return ast.parse(raw)
    except SyntaxError:
        pass
    try:
        return ast.parse(shell.transform_cell(raw)) if shell is not None else None
    except (SyntaxError, ValueError, TypeError):
        return None


def _out_of_order(executions: list[tuple[int, str]]) -> list[str]:
    found = []
    for (prev_index, prev_label), (index, label) in zip(executions, executions[1:], strict=False):
        if index < prev_index:
            found.append(f"{label} ran after {prev_label}")
    return found[:50]


def _process_start_time() -> float | None:
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001
        return None


def _version() -> str:
    from nbtrack import __version__

    return __version__


class _NoSession:
    """Stands in when nbtrack is not loaded: API calls warn once instead of failing."""

    _warned = False

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not _NoSession._warned:
                _NoSession._warned = True
                print("nbtrack: not loaded in this kernel, nothing was recorded. "
                      "Run %load_ext nbtrack first.", file=sys.stderr)
            return None if name != "flush" else False

        return call


_sessions: list[TrackingSession] = []


def current_session() -> Any:
    """The loaded session (the most recent), or a stand-in that records nothing."""
    return _sessions[-1] if _sessions else _NoSession()
