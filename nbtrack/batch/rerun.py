"""``nbtrack.rerun(run_id)``: execute a run's notebook snapshot again and report what moved.

The snapshot (artifact ``notebook/<name>.ipynb``, the file as saved when the run
ended) is executed, not the file as it is now (``current=True`` for that), with
the same parameters: exactly papermill's injected values when the run was a
papermill run (``metadata.papermill.parameters`` of its logged output), else
the run's MLflow params that differ from the snapshot's parameters cell. With
``pin_data``, Delta tables are read at the versions the original run recorded; without,
at their latest versions.

The new run is created here, in the original's experiment, tagged
``nbtrack.rerun_of``, and handed to the kernel (``NBTRACK_RUN_ID``); its metrics
are compared with the original's: equal (bit for bit), changed, missing, new. The
execution runs in a local kernel, or as a Spark task (``backend="spark"``, as a sweep's).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.batch import params as params_mod
from nbtrack.batch.jobs import KILLED, Job
from nbtrack.batch.plan import notebook_loads_nbtrack
from nbtrack.batch.progress import Progress, ProgressOption
from nbtrack.batch.report import reproducibility
from nbtrack.batch.store import DELIVERY_TIMEOUT_S, Store
from nbtrack.env import INPUT_VERSIONS
from nbtrack.errors import NotFound, UsageProblem
from nbtrack.project import Project
from nbtrack.query.inputs import mlflow_input_versions

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities import Run

    from nbtrack.batch.sweep import Backend

SNAPSHOT_DIR = "notebook"
PAPERMILL_OUTPUT_DIR = "notebook/papermill_output"


def rerun(
    run_id: str,
    params: Mapping[str, Any] | None = None,
    *,
    current: bool = False,
    pin_data: bool = False,
    progress: ProgressOption = None,
    tracking_uri: str | None = None,
    project: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    kernel_name: str | None = None,
    warn: Callable[[str], None] | None = None,
    delivery_timeout: float = DELIVERY_TIMEOUT_S,
    root: str | os.PathLike[str] | None = None,
    backend: Backend = "local",
    spark: Any = None,
    spark_master: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
) -> pd.DataFrame:
    """Re-execute run ``run_id`` (or a unique prefix of it) with its params plus ``params``
    overrides; one row back.

    The row holds ``run_id`` (the new run), ``rerun_of``, ``status``, ``error``,
    ``output``, ``params.*`` (what was injected) and ``metrics.*``;
    ``df.attrs["report"]`` is the reproducibility report (one row per metric).
    ``progress`` may be a callable receiving dicts such as
    ``{"state": "running", "cell": 3, "cells": 12, ...}``. With ``root`` (the Jupyter
    server's root) only a run whose notebook lies inside that folder is executed.
    ``backend="spark"`` executes it as a Spark task on ``spark`` (else the active session, else
    one for ``spark_master``). ``extra_tags`` are more tags of the new run (they win over
    ``nbtrack.origin=rerun``: a retrain says ``retrain``), ``run_name`` its name (default
    ``rerun of <name>``).
    """
    from nbtrack.query.lookup import resolve_run_id
    from nbtrack.query.store import resolve_store
    from nbtrack.store import resolve

    say = warn or (lambda message: warnings.warn(message, stacklevel=3))
    if backend not in ("local", "spark"):
        raise UsageProblem(f"unknown backend {backend!r}: use 'local' or 'spark'")
    ref = resolve_store(project=project, tracking_uri=tracking_uri)
    proj = ref.project
    run_id = resolve_run_id(ref, run_id)  # a wrong id fails here, before MLflow is imported
    store = Store.open(proj, ref.tracking_uri, create=False)
    original = store.get_run(run_id)
    notebook = original_notebook(original, proj)
    if root is not None:
        check_inside_root(run_id, notebook, root)
    if notebook is not None and not project:
        store.project = resolve(notebook).project
    workdir = store.project.outputs_dir / f"rerun-{time.strftime('%Y%m%d-%H%M%S')}-{run_id[:8]}"
    source, base_params = _source_and_params(store, original, notebook, current, workdir)
    declared = params_mod.inspect_parameters(source)
    overrides = dict(params or {})
    params_mod.warn_about_names(source, overrides, declared, say)
    params_mod.check_injectable([overrides], declared)
    injected = {**base_params, **{k: params_mod.to_jsonable(v) for k, v in overrides.items()}}
    params_mod.check_injectable([injected])  # the stored ones too: a name is code once injected
    pins = mlflow_input_versions(original) if pin_data else {}
    if pin_data and not pins:
        say(f"run {run_id} recorded no Delta inputs: nothing to pin")

    name = original.data.tags.get(tags.RUN_NAME) or run_id[:8]
    kernel_tags = {tags.RERUN_OF: run_id, tags.ORIGIN: "rerun", **(extra_tags or {})}
    new = store.client.create_run(original.info.experiment_id,
                                  run_name=(run_name or f"rerun of {name}")[:250],
                                  tags={**_new_tags(original, run_id, notebook or source), **kernel_tags})
    new_id = new.info.run_id
    output = str(workdir / "output.ipynb")
    from nbtrack.batch.jobs import kernel_env

    job_env = kernel_env(
        notebook=str(notebook if notebook and notebook.is_file() else source), output=output,
        run_id=new_id, tracking_uri=store.tracking_uri, project_root=str(store.project.root),
        tags=kernel_tags,
    )
    # Pinned versions, else none: not those of a re-run this process may itself be part of.
    job_env[INPUT_VERSIONS.name] = json.dumps(pins) if pins else ""
    cwd = notebook.parent if notebook and notebook.parent.is_dir() else source.parent
    job = Job(index=1, notebook=str(source), output=output, params=injected, env=job_env,
              cwd=str(cwd), kernel_name=kernel_name, timeout=timeout,
              load_extension=not notebook_loads_nbtrack(source))
    spark_option = (spark, spark_master) if backend == "spark" else None
    title = kernel_tags.get(tags.ORIGIN, "rerun")  # the progress bar says "retrain" for a retrain
    outcome = _execute(job, store, new_id, progress, delivery_timeout, spark_option, title)

    final = store.get_run(new_id)
    report = reproducibility(original.data.metrics, final.data.metrics)
    import pandas as pd

    row: dict[str, Any] = {
        "run_id": new_id, "rerun_of": run_id, "status": final.info.status,
        "error": outcome.error, "duration_s": outcome.duration_s, "output": output,
    }
    row.update({f"params.{k}": v for k, v in injected.items()})
    row.update({f"metrics.{k}": v for k, v in sorted(final.data.metrics.items())})
    frame = pd.DataFrame([row])
    frame.attrs["report"] = report
    return frame


def _execute(job: Job, store: Store, run_id: str, progress: ProgressOption,
             delivery_timeout: float, spark: tuple[Any, str | None] | None = None,
             title: str = "rerun") -> Any:
    """Run the job in a local kernel, or as a Spark task when ``spark`` is (session, master)."""
    from nbtrack.batch.execution import execute, finalize
    from nbtrack.batch.executor import LocalExecutor

    with Progress(1, title=title, progress=progress, run_ids={1: run_id}) as bar:
        try:
            if spark is None:
                with LocalExecutor(1, Path(job.output).parent / "logs") as executor:
                    outcome = executor.run([job], bar.follow)[0]
            else:
                outcome = execute([job], executor=None, workers=1, bar=bar, store=store,
                                  run_ids={1: run_id}, spark=spark)[0]
            bar.note("delivering")
            finalize(store, {1: run_id}, {1: outcome}, delivery_timeout)
        except BaseException:
            store.finalize(run_id, KILLED, "rerun interrupted")
            raise
        bar.note("done", status=store.status(run_id))
    return outcome


def original_notebook(run: Run, project: Project) -> Path | None:
    """Where the run's notebook lives: its absolute ``mlflow.source.name``, else its
    project-relative ``nbtrack.notebook`` (the first that is a file, when one is)."""
    source = run.data.tags.get(tags.SOURCE_NAME)
    relative = run.data.tags.get(tags.NOTEBOOK)
    candidates = [Path(source)] if source and Path(source).is_absolute() else []
    candidates += [project.root / relative] if relative else []
    return next((c for c in candidates if c.is_file()), candidates[0] if candidates else None)


def check_inside_root(run_id: str, notebook: Path | None, root: str | os.PathLike[str]) -> None:
    """A server executes only notebooks inside its root: a run's notebook path is a tag that
    anyone with access to the store can set, so it is never followed out of the root."""
    top = Path(root).resolve()
    path = notebook.resolve() if notebook is not None else None
    if path is not None and not path.is_relative_to(top):
        raise UsageProblem(
            f"the notebook of run {run_id} ({path}) is outside the server's root {top}; "
            f"re-run it from a terminal instead: nbtrack rerun {run_id[:8]}"
        )


def _source_and_params(store: Store, run: Run, notebook: Path | None, current: bool,
                       workdir: Path) -> tuple[Path, dict[str, Any]]:
    """The notebook to execute and the parameters that reproduce the original run."""
    run_id = run.info.run_id
    artifacts = [a.path for a in store.client.list_artifacts(run_id, SNAPSHOT_DIR)]
    if current:
        if notebook is None or not notebook.is_file():
            raise NotFound(f"the notebook of run {run_id} is not at {notebook} any more")
        source = notebook
    else:
        wanted = f"{SNAPSHOT_DIR}/{notebook.name}" if notebook else None
        snapshots = [p for p in artifacts if p.endswith(".ipynb")]
        chosen = wanted if wanted in snapshots else (snapshots[0] if snapshots else None)
        if chosen is None:
            raise NotFound(
                f"run {run_id} has no notebook snapshot (artifact notebook/<name>.ipynb); "
                "use --current to run the notebook as it is now"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        source = Path(store.client.download_artifacts(run_id, chosen, str(workdir)))
    papermill = _papermill_parameters(store, run_id, artifacts, workdir)
    if papermill is not None:
        return source, papermill
    return source, _params_from_store(run, params_mod.inspect_parameters(source).defaults)


def _papermill_parameters(store: Store, run_id: str, artifacts: list[str],
                          workdir: Path) -> dict[str, Any] | None:
    """papermill's injected values, typed, from the run's logged output notebook."""
    if PAPERMILL_OUTPUT_DIR not in artifacts:
        return None
    outputs = [a.path for a in store.client.list_artifacts(run_id, PAPERMILL_OUTPUT_DIR)
               if a.path.endswith(".ipynb")]
    if not outputs:
        return None
    folder = workdir / "original"
    folder.mkdir(parents=True, exist_ok=True)
    path = store.client.download_artifacts(run_id, outputs[0], str(folder))
    try:
        metadata = json.loads(Path(path).read_text()).get("metadata", {}).get("papermill", {})
    except (OSError, ValueError):
        return None
    found = metadata.get("parameters")
    return dict(found) if isinstance(found, dict) else None


def _params_from_store(run: Run, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """MLflow keeps params as text: inject those that differ from the cell, typed like its value."""
    from nbtrack.capture.params import param_string

    stored = run.data.params
    injected: dict[str, Any] = {}
    for name, default in defaults.items():
        if name not in stored or stored[name] == param_string(default):
            continue
        text = stored[name]
        if isinstance(default, str):
            injected[name] = text
            continue
        try:
            injected[name] = json.loads(text)
        except ValueError:
            injected[name] = params_mod.parse_value(text)
    return injected


def _new_tags(original: Run, run_id: str, notebook: Path) -> dict[str, str]:
    found = original.data.tags
    new = {tags.RERUN_OF: run_id, tags.ORIGIN: "rerun"}
    for key in (tags.NOTEBOOK, tags.SOURCE_NAME, tags.SOURCE_TYPE):
        if key in found:
            new[key] = found[key]
    new.setdefault(tags.NOTEBOOK, str(notebook))
    return new

