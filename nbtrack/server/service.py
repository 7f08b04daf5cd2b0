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
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from traitlets import Int, Unicode
from traitlets.config import LoggingConfigurable

from nbtrack.errors import ExecutionFailed, NotFound, UsageProblem
from nbtrack.query.runs import runs_records
from nbtrack.query.values import json_safe
from nbtrack.server.jobs import Job, JobRegistry
from nbtrack.version import __version__

if TYPE_CHECKING:

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
        """The runs of one notebook, newest first, with where they are stored."""
        from nbtrack.query.runs import list_runs

        path = self.resolve_notebook(notebook)
        ref = self.store_for(notebook)
        frame = list_runs(
            path, project=ref.project, tracking_uri=ref.tracking_uri, max_results=self.max_runs
        )
        experiment = ref.project.experiment_name(path)
        return {
            "notebook": {
                "path": notebook,
                "absolute_path": str(path),
                "project": str(ref.project.root),
                "experiment": experiment,
                "experiment_id": self._experiment_id(ref, experiment),
                "tracking_uri": ref.tracking_uri,
            },
            "mlflow_ui_url": self.mlflow_ui_url.rstrip("/") or None,
            "runs": runs_records(frame),
        }

    def compare(self, run_ids: list[str], notebook: str | None) -> dict[str, Any]:
        """The query layer's comparison of ``run_ids``, as JSON values."""
        from nbtrack.query.compare import compare

        ref = self.store_for(notebook)
        comparison = compare(run_ids, tracking_uri=ref.tracking_uri, project=ref.project)
        return json_safe(comparison.to_dict())

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

        def work(progress: Any) -> dict[str, Any]:
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
        return json_safe(self.jobs.get(job_id).to_dict())

    # -- helpers -----------------------------------------------------------------------

    def _experiment_id(self, ref: StoreRef, experiment: str) -> str | None:
        if not self.mlflow_ui_url or not ref.exists():
            return None
        found = ref.client().get_experiment_by_name(experiment)
        return found.experiment_id if found is not None else None


def typed_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Edited values typed as the CLI's ``-p name=value`` types them (``"0.5"`` -> 0.5);
    every name checked, whatever its value (a name is written into the notebook as code)."""
    from nbtrack.batch.params import check_name, parse_override

    return {check_name(name): parse_override(name, value) if isinstance(value, str) else value
            for name, value in params.items()}


def _artifact_path(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if not path or relative.is_absolute() or ".." in relative.parts or "\\" in path:
        raise UsageProblem(
            f"artifact path {path!r} must be relative to the run's artifact root, without '..'"
        )
    return relative


