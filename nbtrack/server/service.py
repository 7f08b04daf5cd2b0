"""The one object the server's handlers talk to: notebook paths in, JSON-ready dicts out.

It resolves a notebook path (relative to the Jupyter server's root) to its
project and tracking store, asks the query layer (``nbtrack.query``) and the
batch layer (``nbtrack.batch``: sweeps and re-runs) for answers and turns them into plain JSON
values. It holds no business logic of its own: listing, comparing and re-running
live in those layers, shared with the magics and the CLI.
"""

from __future__ import annotations

import mimetypes
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from traitlets import Int, Unicode
from traitlets.config import LoggingConfigurable

from nbtrack.errors import ExecutionFailed, NotFound, UsageProblem
from nbtrack.query.failures import FAILED_STATUSES
from nbtrack.query.names import display_names
from nbtrack.query.runs import runs_records
from nbtrack.query.values import json_object, json_safe
from nbtrack.server.jobs import Job, JobRegistry
from nbtrack.version import __version__

if TYPE_CHECKING:
    from nbtrack.batch.protocol import ProgressCallback
    from nbtrack.query.store import StoreRef


class NbtrackService(LoggingConfigurable):
    """Runs, comparisons, artifacts and re-runs of the notebooks under the server's root."""

    root_dir = Unicode(help="The Jupyter server's root directory; notebook paths are relative to it.")
    tracking_uri = Unicode(
        "",
        help="MLflow tracking URI for every notebook (default: each project's own "
        "<project>/.nbtrack/mlflow.db, or MLFLOW_TRACKING_URI).",
    ).tag(config=True)
    mlflow_ui_url = Unicode(
        "",
        help="Base URL of an MLflow UI that shows the same store (e.g. http://127.0.0.1:5000); "
        "the panel then links each run to it.",
    ).tag(config=True)
    max_runs = Int(1000, help="Most runs listed for one notebook (newest first).").tag(config=True)
    rerun_workers = Int(2, help="Re-runs executed at the same time; the others wait.").tag(
        config=True
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jobs = JobRegistry(workers=self.rerun_workers)
        # Why failed runs failed: a FAILED or KILLED run never changes, so each is read once.
        self._failures: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._failures_lock = threading.Lock()

    @property
    def version(self) -> str:
        return __version__

    def warm_up(self) -> threading.Thread:
        """Import MLflow and pandas and open the root project's store, off the event loop:
        the panel's first request would otherwise wait seconds for them."""

        def warm() -> None:
            try:
                import nbtrack.query.compare  # noqa: F401  (imports pandas and the query layer)

                ref = self.store_for(None)
                if ref.exists():
                    ref.client().search_experiments(max_results=1)
                import mlflow.tracking  # noqa: F401
            except Exception as exc:  # a store that cannot open now is reported per request
                self.log.debug("nbtrack warm-up: %s", exc)

        thread = threading.Thread(target=warm, name="nbtrack-warm-up", daemon=True)
        thread.start()
        return thread

    # -- paths and stores -------------------------------------------------------------

    def resolve_notebook(self, notebook: str) -> Path:
        """The absolute path of ``notebook`` (relative to the server root), kept inside the root."""
        if not notebook:
            raise UsageProblem("which notebook? pass ?notebook=<path relative to the server root>")
        root = Path(self.root_dir).resolve()
        path = (root / notebook.lstrip("/")).resolve()
        if not path.is_relative_to(root):
            raise UsageProblem(f"notebook path {notebook!r} is outside the server's root")
        return path

    def store_for(self, notebook: str | None) -> StoreRef:
        """The project and tracking store of ``notebook`` (of the server root when None)."""
        from nbtrack.query.store import resolve_store

        target = self.resolve_notebook(notebook) if notebook else Path(self.root_dir).resolve()
        return resolve_store(
            notebook=target, tracking_uri=self.tracking_uri or None, use_session=False
        )

    def info(self) -> dict[str, Any]:
        """What the panel's version handshake reads."""
        return {
            "name": "nbtrack",
            "version": __version__,
            "root_dir": str(Path(self.root_dir).resolve()),
            "mlflow_ui_url": self.mlflow_ui_url.rstrip("/") or None,
        }

    # -- queries -----------------------------------------------------------------------

    def runs(self, notebook: str) -> dict[str, Any]:
        """The runs of one notebook, newest first, with where they are stored.

        Each row also has its ``number`` and display ``label`` (:mod:`nbtrack.query.names`),
        and a failed run its ``error`` (:mod:`nbtrack.query.failures`, without traceback).
        ``token`` is the change token read before the list: :meth:`changes` differs from it
        once anything changed after.
        """
        from nbtrack.query.runs import list_runs

        path = self.resolve_notebook(notebook)
        ref = self.store_for(notebook)
        experiment = ref.project.experiment_name(path)
        token = self._token(ref, experiment)
        frame = list_runs(
            path, project=ref.project, tracking_uri=ref.tracking_uri, max_results=self.max_runs
        )
        rows = runs_records(frame)
        names = display_names(rows)
        errors = self._failed(ref, rows)
        for row in rows:
            row.update(names[row["run_id"]])
            if row["run_id"] in errors:
                row["error"] = errors[row["run_id"]]
        return {
            "token": token,
            "notebook": {
                "path": notebook,
                "absolute_path": str(path),
                "project": str(ref.project.root),
                "experiment": experiment,
                "experiment_id": self._experiment_id(ref, experiment),
                "tracking_uri": ref.tracking_uri,
            },
            "mlflow_ui_url": self.mlflow_ui_url.rstrip("/") or None,
            "limit": self.max_runs,  # a list this long holds the newest runs only
            "runs": rows,
        }

    def changes(self, notebook: str) -> dict[str, Any]:
        """The change token of a notebook's runs (a few ``stat`` calls): the panel polls it."""
        path = self.resolve_notebook(notebook)
        ref = self.store_for(notebook)
        return {"token": self._token(ref, ref.project.experiment_name(path))}

    def compare(self, run_ids: list[str], notebook: str | None) -> dict[str, Any]:
        """The query layer's comparison of ``run_ids``, as JSON values."""
        from nbtrack.query.compare import compare

        ref = self.store_for(notebook)
        comparison = compare(run_ids, tracking_uri=ref.tracking_uri, project=ref.project)
        return json_object(comparison.to_dict())

    def output_html(self, run_id: str, notebook: str | None) -> str:
        """A failed (or any papermill) run's output notebook as a static HTML page, tracebacks
        included: the evidence papermill saved, readable without opening the store's folder."""
        from nbtrack.query.failures import OUTPUT_DIR

        ref = self.store_for(notebook)
        run = self._run(ref, run_id)
        listed = self._output_artifacts(ref, run)
        if not listed:
            raise NotFound(f"run {run.info.run_id} has no output notebook (only papermill runs have one)")
        target, _ = self.artifact(run.info.run_id, f"{OUTPUT_DIR}/{listed[0]}", notebook)
        from nbtrack.server.output import notebook_html

        return notebook_html(target)

    def artifact(self, run_id: str, path: str, notebook: str | None) -> tuple[Path, str]:
        """A file from ``run_id``'s own artifact root, and its content type.

        Relative paths only, no ``..`` and no symlink leading outside that root.
        """
        from nbtrack.query.artifacts import local_artifact_dir
        from nbtrack.query.lookup import get_run

        relative = _artifact_path(path)
        ref = self.store_for(notebook)
        run = get_run(ref, run_id)
        run_id = run.info.run_id
        local_root = local_artifact_dir(run.info.artifact_uri or "")
        if local_root is not None:
            root = local_root.resolve()
            target = (root / relative).resolve()
            if not target.is_relative_to(root):
                raise UsageProblem(f"artifact path {path!r} leads outside run {run_id}'s artifacts")
        else:  # a remote artifact store: fetch the one file
            import mlflow.artifacts

            cache = Path(tempfile.gettempdir()) / "nbtrack-artifacts" / run_id
            try:
                target = Path(
                    mlflow.artifacts.download_artifacts(
                        run_id=run_id, artifact_path=str(relative),
                        tracking_uri=ref.tracking_uri, dst_path=str(cache),
                    )
                )
            except Exception as exc:
                raise NotFound(f"run {run_id} has no artifact {path!r} ({exc})") from None
        if not target.is_file():
            raise NotFound(f"run {run_id} has no artifact {path!r}")
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return target, content_type

    # -- the model registry --------------------------------------------------------------

    def register(self, run_id: Any, name: Any, notebook: str | None, *, model: Any = None,
                 alias: Any = None, force: bool = False) -> dict[str, Any]:
        """Register a run's model (:func:`nbtrack.registry.register.register`); its version as JSON."""
        from nbtrack.registry.register import register

        for field, value in (("run_id", run_id), ("name", name)):
            if not isinstance(value, str) or not value.strip():
                raise UsageProblem(f'pass {field}: {{"run_id": "<id>", "name": "<registered model>"}}')
        for field, value in (("model", model), ("alias", alias)):
            if value is not None and not isinstance(value, str):
                raise UsageProblem(f"{field} must be a string")
        ref = self.store_for(notebook)
        done = register(run_id, name, model=model or None, alias=alias or None, force=force,
                        project=ref.project, tracking_uri=ref.tracking_uri,
                        warn=lambda message: self.log.warning("nbtrack register: %s", message))
        return {"uri": done.uri, "name": done.name, "version": done.version, "run_id": done.run_id,
                "model": done.model, "model_id": done.model_id, "aliases": done.aliases,
                "created": done.created}

    # -- re-runs -----------------------------------------------------------------------

    def start_rerun(
        self,
        run_id: str,
        params: Mapping[str, Any] | None,
        notebook: str | None,
        *,
        current: bool = False,
    ) -> Job:
        """Re-execute a run's notebook snapshot in the background; poll the returned job.

        Bad input is refused now (400, 404), not as a failed job later; only a run whose
        notebook lies inside the server's root is executed.
        """
        from nbtrack.batch.rerun import check_inside_root, original_notebook
        from nbtrack.query.lookup import get_run

        if not isinstance(run_id, str) or not run_id:
            raise UsageProblem("pass the run to re-run: {\"run_id\": \"<id>\"}")
        if params is not None and not isinstance(params, Mapping):
            raise UsageProblem("params must be an object of name: value")
        overrides = typed_params(params or {})
        ref = self.store_for(notebook)
        run = get_run(ref, run_id)  # an unknown run is a 404 now, not a failed job later
        run_id = run.info.run_id
        root = Path(self.root_dir).resolve()
        check_inside_root(run_id, original_notebook(run, ref.project), root)

        def work(progress: ProgressCallback) -> dict[str, Any]:
            from nbtrack.batch.rerun import rerun

            frame = rerun(
                run_id,
                overrides or None,
                current=current,
                progress=progress,
                tracking_uri=ref.tracking_uri,
                project=str(ref.project.root),
                root=root,
                warn=lambda message: self.log.warning("nbtrack re-run of %s: %s", run_id, message),
            )
            rows = runs_records(frame)
            failed = [r for r in rows if r.get("status") != "FINISHED"]
            if failed:
                row = failed[0]
                raise ExecutionFailed(
                    f"re-run {row.get('run_id')} {str(row.get('status', 'failed')).lower()}: "
                    f"{row.get('error') or 'see its output notebook'} ({row.get('output', '')})"
                )
            return {"runs": rows}

        return self.jobs.submit("rerun", run_id, work)

    def job(self, job_id: str) -> dict[str, Any]:
        return json_object(self.jobs.get(job_id).to_dict())

    # -- helpers -----------------------------------------------------------------------

    def _token(self, ref: StoreRef, experiment: str) -> str:
        from nbtrack.query.changes import change_token

        return change_token(ref, experiment)

    def _failed(self, ref: StoreRef, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Failures of the failed rows, each read once per server (see ``self._failures``)."""
        from nbtrack.query.failures import failures

        failed = [r for r in rows if r.get("status") in FAILED_STATUSES]
        with self._failures_lock:
            known = {r["run_id"]: self._failures[r["run_id"]] for r in failed if r["run_id"] in self._failures}
        missing = [r for r in failed if r["run_id"] not in known]
        found = json_safe(failures(ref, missing)) if missing else {}
        with self._failures_lock:
            for run_id, failure in found.items():
                self._failures[run_id] = failure
            while len(self._failures) > FAILURES_KEPT:
                self._failures.popitem(last=False)
        return {**known, **found}

    def _run(self, ref: StoreRef, run_id: str) -> Any:
        from nbtrack.query.lookup import get_run

        return get_run(ref, run_id)

    def _output_artifacts(self, ref: StoreRef, run: Any) -> list[str]:
        from nbtrack.query.failures import OUTPUT_DIR

        try:
            listed = ref.client().list_artifacts(run.info.run_id, OUTPUT_DIR)
        except Exception:  # an artifact store that cannot be listed has none to show
            return []
        return sorted(item.path.rsplit("/", 1)[-1] for item in listed if item.path.endswith(".ipynb"))

    def _experiment_id(self, ref: StoreRef, experiment: str) -> str | None:
        if not self.mlflow_ui_url or not ref.exists():
            return None
        found = ref.client().get_experiment_by_name(experiment)
        return found.experiment_id if found is not None else None


#: Failed runs whose explanation the server keeps in memory.
FAILURES_KEPT = 5000


def typed_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Edited values typed as the CLI's ``-p name=value`` types them (``"0.5"`` -> 0.5);
    every name checked, whatever its value (a name is written into the notebook as code)."""
    from nbtrack.batch.params import check_name, parse_override

    for name, value in params.items():
        if isinstance(value, str) and not value.strip():  # said as a form field, not as a -p option
            raise UsageProblem(f"{check_name(name)}: empty value; give it one "
                               '(json:"" makes an empty string)')
    return {check_name(name): parse_override(name, value) if isinstance(value, str) else value
            for name, value in params.items()}


def _artifact_path(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if not path or relative.is_absolute() or ".." in relative.parts or "\\" in path:
        raise UsageProblem(
            f"artifact path {path!r} must be relative to the run's artifact root, without '..'"
        )
    return relative
