"""The kernel's tracking session: run boundaries, and the recorders that fill the run.

A run starts with the first cell after ``%load_ext nbtrack`` and ends at
``%nbtrack end`` / ``new``, when the parameters change, or when the kernel exits.
Its ``run_start`` event is written once the notebook is known (papermill only
reveals it a few cells in); the delivery process holds the run's earlier events
until then. What a run holds is recorded by one recorder per kind
(``capture.params``, ``metrics``, ``figures``, ``cells``, ``user_mlflow``, and
``model_recorder`` at run end); each turns into journal events and returns,
nothing waits on MLflow or Delta.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from nbtrack import env, tags
from nbtrack.capture.cells import CellsRecorder, CellState, out_of_order
from nbtrack.capture.detection import MAX_SOURCES, NBCONVERT, Detection, detect, not_found_message
from nbtrack.capture.figures import FiguresRecorder
from nbtrack.capture.loops import LoopRecorder
from nbtrack.capture.metrics import MetricsRecorder
from nbtrack.capture.model_recorder import ModelsRecorder
from nbtrack.capture.notebook import NotebookFile
from nbtrack.capture.output import OutputRecorder
from nbtrack.capture.params import ParamsRecorder
from nbtrack.capture.runs import RunHandle, RunState
from nbtrack.capture.safety import Safety
from nbtrack.capture.user_mlflow import UserMlflow, link_tag
from nbtrack.config import NbtrackConfig
from nbtrack.journal import JournalWriter
from nbtrack.project import Project
from nbtrack.store import StoreRef, resolve


class TrackingSession:
    """One kernel's capture state; created by ``%load_ext nbtrack``."""

    def __init__(self, shell: Any, config: NbtrackConfig) -> None:
        self.shell = shell
        self.config = config
        self.session_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.safety = Safety(strict=config.strict, record=self._record_warning)
        self.detection = Detection(None, "none")
        # MLFLOW_TRACKING_URI as it was at load: a notebook that points its own MLflow
        # elsewhere later does not move nbtrack's runs.
        self._env_tracking_uri = env.MLFLOW_TRACKING_URI.get()
        self.store: StoreRef = self._resolve()
        self.nbfile = NotebookFile(None)
        self.journal: JournalWriter = None  # type: ignore[assignment]  # set by open()
        self.run: RunState | None = None
        self.cell: CellState | None = None
        self.skip_next = False
        self.idle = False  # after %nbtrack end: only a real cell starts the next run
        self.under_papermill = False
        self.delivery: Any = None
        self._first_run = True
        self._closed = False
        self._last_poke = 0.0
        self.params = ParamsRecorder(self)
        self.metrics = MetricsRecorder(self)
        self.figures = FiguresRecorder(self)
        self.cells = CellsRecorder(self)
        self.loops = LoopRecorder(self)
        self.output = OutputRecorder(self)
        self.models = ModelsRecorder(self)
        self.user_mlflow = UserMlflow()

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
            self.params.adopt_earlier(list(getattr(self.shell, "user_ns", {}).get("In", []) or [])[1:])

    def close(self, status: str | None = None) -> None:
        """End the run and the session; called at unload and at interpreter exit."""
        if self._closed:
            return
        self._closed = True
        try:
            self.journal.release()
            self.end_run(status)
            self.models.close(self.config.flush_timeout)  # snapshots still being written
            self.journal.append("session_end")
            self.journal.close()
            if self.delivery is not None:
                self.delivery.stop(timeout=self.config.flush_timeout)
        except Exception as exc:  # noqa: BLE001 - exiting kernels must exit
            print(f"nbtrack: could not close the session cleanly ({exc})", file=sys.stderr)
        self.user_mlflow.unwatch()
        self.cells.usage.close()
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass

    # -- notebook and project ------------------------------------------------------------------

    def redetect(self, sources: list[str] | None = None) -> None:
        """Detect the notebook again (a setting changed, or executed cells may name it now)."""
        self._detect(sources)

    def _detect(self, sources: list[str] | None = None) -> None:
        user_ns = getattr(self.shell, "user_ns", {}) if self.shell is not None else {}
        self.detection = detect(user_ns, self.config.notebook, sources or ())
        self.under_papermill = self.under_papermill or bool(
            self.detection.papermill_input or self.detection.papermill_output or env.SWEEP_ID.get()
        )
        if self.detection.notebook is not None:
            self.nbfile = NotebookFile(self.detection.notebook)
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

    def retry_detection(self, sources: list[str]) -> None:
        """Cells run so far can name the notebook (by their sources, or papermill's output appearing);
        only the first few cells of the session are tried, so an unknown notebook costs no cell anything."""
        if self.notebook is not None or len(sources) > MAX_SOURCES:
            return
        self._detect(sources)

    # -- runs -----------------------------------------------------------------------------------

    def ensure_run(self) -> RunState:
        if self.run is None:
            self.run = RunState(key=uuid.uuid4().hex)
            if self._first_run:
                self._first_run = False
                self.run.attach = env.RUN_ID.get()
                self.run.attach_file = env.RUN_ID_FILE.get() if self.run.attach is None else None
                self.run.extra_tags = env.run_tags()
        return self.run

    def write_run_start(self, run: RunState) -> None:
        if run.started:
            return
        if self.notebook is None:
            self.safety.warn(
                not_found_message(self.detection),
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
        return "nbconvert" if self.detection.how == NBCONVERT else "interactive"

    def record(self, type_: str, **payload: Any) -> None:
        """Append an event of the current run (starting one) to the journal."""
        run = self.ensure_run()
        self.journal.append(type_, run=run.key, **payload)

    def emit(self, type_: str, **payload: Any) -> None:
        """Record an event for the current run (used by nbtrack.capture.lineage); never raises."""
        with self.safety.guard(f"recording {type_}"):
            self.record(type_, **payload)

    def new_run(self, name: str | None = None, carry: dict[str, Any] | None = None) -> RunState:
        """End the current run and start another, logging ``carry`` as its first params."""
        self.end_run()
        run = self.ensure_run()
        run.name = name
        if carry:
            self.params.log_now(run, carry, source="carried")
        return run

    def end_run(self, status: str | None = None) -> None:
        run = self.run
        if run is None:
            return
        self.params.flush_pending(run)
        if not run.started and run.cells == 0 and not run.params:
            self.run = None
            return
        self.link_user_runs(run)  # runs MLflow ended since the last cell (at exit, say)
        self.write_run_start(run)
        self.models.at_run_end(run)
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
            out_of_order=out_of_order(run.executions),
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

    # -- what capture records (each recorder holds its rules) ------------------------------------

    def log_params(self, params: dict[Any, Any], *, source: str, cell_id: str | None = None) -> None:
        self.params.log(params, source=source, cell_id=cell_id)

    def log_metrics(self, metrics: dict[Any, Any], *, step: Any = None, cell_id: str | None = None) -> None:
        self.metrics.log(metrics, step=step, cell_id=cell_id)

    def log_figure(self, figure: Any, name: str | None = None) -> None:
        self.figures.log(figure, name)

    def log_model(self, model: Any, name: str | None = None) -> None:
        self.models.log(model, name)

    def on_display(self, data: Any, transient: Any = None) -> None:
        """Called for every display_data / execute_result the kernel publishes."""
        if self.config.enabled and self.config.capture_figures and not self._closed:
            self.figures.on_display(data, transient)

    def pre_cell(self, raw: str, cell_id: str | None, exec_count: int) -> None:
        self.cells.pre(raw, cell_id, exec_count)

    def post_cell(self, result: Any) -> None:
        self.cells.post(result)

    def link_user_runs(self, run: RunState) -> None:
        """Record which MLflow runs the notebook started or ended, as a tag of nbtrack's run."""
        with self.safety.guard("noting the notebook's own MLflow runs"):
            if self.user_mlflow.fold_into(run.user_runs):
                self.record("tags", tags={tags.USER_RUNS: link_tag(run.user_runs)})

    # -- delivery -------------------------------------------------------------------------------

    def poke_delivery(self) -> None:
        """Check on delivery at most once a second; its new problems become warnings."""
        now = time.monotonic()
        if now - self._last_poke < 1.0 or self.delivery is None:
            return
        self._last_poke = now
        with self.safety.guard("checking delivery"):
            for message in self.delivery.poke():
                self.safety.warn(message)

    def flush(self, timeout: float | None = None) -> bool:
        self.journal.release()  # a loop's held points first: flush waits for everything captured
        if self.run is not None:
            self.params.flush_pending(self.run)
            self.write_run_start(self.run)
        if self.delivery is None:
            return False
        return bool(self.delivery.wait(self.journal.seq, timeout or self.config.flush_timeout))

    def current_run(self) -> RunHandle | None:
        if self.run is None:
            return None
        params = dict(self.run.params)
        params.update({k: self.params.text(v) for k, v in (self.run.pending or {}).items()})
        return RunHandle(self.run.key, self.project.experiment_name(self.notebook),
                         str(self.notebook) if self.notebook else None, params,
                         self.store.tracking_uri, self.journal.journal_dir, self.session_id)

    def _record_warning(self, message: str) -> None:
        if self.journal is not None and not self._closed:
            self.journal.append("warning", run=self.run.key if self.run else None, message=message)


def _process_start_time() -> float | None:
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001
        return None


def _version() -> str:
    from nbtrack.version import __version__

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
