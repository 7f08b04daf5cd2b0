"""Journal ``model`` events -> MLflow 3 logged models of their flavor, linked to the run.

The kernel left a snapshot of the model (:mod:`nbtrack.capture.model_recorder`);
here it is unpickled and logged as MLflow's flavors log it (``mlflow.sklearn`` and the
others: the flavor's ``save_model``, then the logged model's artifacts, the run's output
link and READY, through one client, so no process-wide MLflow setting changes) under
the variable's name, in the run's experiment: ``runs:/<run id>/<name>`` and
``models:/<model id>`` both name it.

Idempotent: a replayed event finds the run's READY model of that name and logs
nothing. The model's pip requirements are the packages its pickle imported (as
MLflow infers them, without MLflow's subprocess that loads the model again: half
a minute per model here), pinned to the versions installed.

A snapshot that never came (the kernel died while writing it, or could not write
it) or that cannot be logged (its library is missing here) is skipped with a
warning in the delivery log and the journal's status; the run's other events go on.
An unreachable store raises, so the event is retried like any other.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from nbtrack.events import Event
from nbtrack.journal.frames import read_frames

log = logging.getLogger(__name__)

#: Seconds a snapshot may show no progress before it is given up.
SNAPSHOT_WAIT = 60.0

#: flavor -> MLflow module logging it
_MODULES = {"sklearn": "mlflow.sklearn", "xgboost": "mlflow.xgboost", "lightgbm": "mlflow.lightgbm",
            "pytorch": "mlflow.pytorch", "keras": "mlflow.keras"}
_NOT_PACKAGES = {"__main__", "builtins", "copyreg", "nbtrack", "cloudpickle"}
_NETWORK = ("connection refused", "max retries exceeded", "failed to establish", "timed out",
            "temporarily unavailable", "name or service not known", "connection reset")

SnapshotState = Literal["ready", "writing", "lost"]


class ModelSkipped(Exception):  # noqa: N818 - an outcome, not a failure of delivery
    """A captured model that cannot be logged; the message says why."""


def snapshot_state(journal_dir: Path, event: Event, now: float | None = None) -> SnapshotState:
    """Is the snapshot written (ready), still being written, or never coming (lost)?"""
    path = journal_dir / str(event.get("file"))
    if path.is_file():
        return "ready"
    if path.with_name(path.name + ".failed").exists():
        return "lost"
    tmp = path.with_name(path.name + ".tmp")
    try:
        progress = tmp.stat().st_mtime
    except OSError:
        progress = float(event.get("t") or 0.0)
    return "writing" if (now or time.time()) - progress < SNAPSHOT_WAIT else "lost"


def log_snapshot(client: Any, run_id: str, event: Event, journal_dir: Path) -> str:
    """Log the event's model into ``run_id``; returns its model id. Raises :class:`ModelSkipped`
    when it cannot be logged (a problem of the model, not of the store)."""
    name = str(event["name"])
    run = client.get_run(run_id)
    experiment_id = run.info.experiment_id
    existing = _logged_model(client, experiment_id, run_id, name)
    if existing is not None:
        return str(existing)
    path = journal_dir / str(event["file"])
    failed = path.with_name(path.name + ".failed")
    if not path.is_file():
        reason = failed.read_text(errors="replace") if failed.exists() else "its snapshot was never written"
        raise ModelSkipped(f"model {name} of run {run_id} is not logged: {reason}")
    try:
        model, example, modules = load_snapshot(path)
        flavor = _flavor_module(str(event.get("flavor")))
        requirements = pip_requirements(str(event.get("flavor")), flavor, modules)
    except Exception as exc:  # noqa: BLE001 - a library missing here, a snapshot that does not load
        raise ModelSkipped(f"model {name} of run {run_id} could not be loaded to be logged: "
                           f"{type(exc).__name__}: {exc}") from exc
    logged = client.create_logged_model(
        experiment_id=experiment_id, name=name, source_run_id=run_id,
        params={k: str(v) for k, v in run.data.params.items()},
        tags={"nbtrack.flavor": str(event.get("flavor")), "nbtrack.model_class": str(event.get("model_class")),
              "nbtrack.event_id": str(event.get("id"))},
    )
    try:
        _save_and_upload(client, flavor, model, logged, run_id, example, requirements, str(event.get("flavor")))
    except Exception as exc:
        _finalize(client, logged.model_id, ok=False)
        if unreachable(exc):
            raise
        raise ModelSkipped(f"model {name} of run {run_id} could not be logged: "
                           f"{type(exc).__name__}: {exc}") from exc
    return str(logged.model_id)


def _save_and_upload(client: Any, flavor: Any, model: Any, logged: Any, run_id: str, example: Any,
                     requirements: list[str], flavor_name: str) -> None:
    """What a flavor's ``log_model`` does, through this client only: no process-wide MLflow
    setting changes (a kernel delivering from a thread keeps its own MLflow as it was)."""
    import tempfile

    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model

    # A torch module is pickled whole (MLflow 3's default, a traced pt2 graph, needs an example input).
    extra = {"serialization_format": "pickle"} if flavor_name == "pytorch" else {}
    with tempfile.TemporaryDirectory(prefix="nbtrack-model-") as folder:
        local = str(Path(folder) / "model")
        description = Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id, run_id=run_id,
                            model_id=logged.model_id)
        flavor.save_model(model, path=local, mlflow_model=description, input_example=example,
                          pip_requirements=requirements, **extra)
        client.log_model_artifacts(logged.model_id, local)
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    _finalize(client, logged.model_id, ok=True)


def _finalize(client: Any, model_id: str, *, ok: bool) -> None:
    from mlflow.entities import LoggedModelStatus

    try:
        client.finalize_logged_model(model_id, LoggedModelStatus.READY if ok else LoggedModelStatus.FAILED)
    except Exception:  # noqa: BLE001 - a failed model is deleted and logged again on a retry
        if ok:
            raise


def _logged_model(client: Any, experiment_id: str, run_id: str, name: str) -> str | None:
    """The run's READY model of that name (a replay), removing an unfinished one."""
    from mlflow.entities import LoggedModelStatus

    found = client.search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{name}'")
    for model in found:
        if model.status == LoggedModelStatus.READY:
            return str(model.model_id)
    for model in found:  # a delivery that stopped half-way: log it again, whole
        client.delete_logged_model(model.model_id)
    return None


class _RecordingUnpickler(pickle.Unpickler):
    """Notes the top-level package of every class and function the pickle refers to."""

    def __init__(self, data: bytes | bytearray, buffers: list[bytearray]) -> None:
        super().__init__(io.BytesIO(data), buffers=buffers)
        self.modules: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.modules.add(module.split(".")[0])
        return super().find_class(module, name)


def load_snapshot(path: Path) -> tuple[Any, Any, set[str]]:
    """``(model, input example, top-level packages it needed)`` from a snapshot blob."""
    head, *buffers = read_frames(path)
    before = set(sys.modules)
    unpickler = _RecordingUnpickler(head, buffers)
    model, example = unpickler.load()
    modules = unpickler.modules | {name.split(".")[0] for name in set(sys.modules) - before}
    return model, example, modules


def _flavor_module(flavor: str) -> Any:
    import importlib

    if flavor == "keras" and not _keras_3():
        return importlib.import_module("mlflow.tensorflow")
    if flavor not in _MODULES:
        raise ValueError(f"unknown model flavor {flavor!r}")
    return importlib.import_module(_MODULES[flavor])


def _keras_3() -> bool:
    try:
        from importlib.metadata import version

        return int(version("keras").split(".")[0]) >= 3
    except Exception:  # noqa: BLE001 - tf.keras without the keras 3 package
        return False


def pip_requirements(flavor: str, module: Any, modules: set[str]) -> list[str]:
    """The flavor's own requirements plus the installed distributions of the packages the
    model's pickle imported, pinned (``scikit-learn==1.5.2``; local labels like ``+cpu`` dropped)."""
    kwargs = {"include_cloudpickle": True} if flavor in ("sklearn", "lightgbm") else {}
    pinned: dict[str, str] = {}
    for requirement in module.get_default_pip_requirements(**kwargs):
        dist, _, wanted = str(requirement).partition("==")
        pinned[_canonical(dist)] = str(requirement)
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    owners = _distributions()
    for top in sorted(modules - _NOT_PACKAGES - set(stdlib)):
        for dist in owners.get(top, ()):
            key = _canonical(dist)
            if key not in pinned and key != "mlflow" and not key.startswith("mlflow-"):
                installed = _version(dist)
                if installed:
                    pinned[key] = f"{dist}=={installed}"
    return sorted(pinned.values(), key=str.lower)


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return {k: list(v) for k, v in packages_distributions().items()}


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist).split("+")[0]
    except PackageNotFoundError:
        return None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def unreachable(exc: BaseException) -> bool:
    """Does this failure (or its cause) say the store cannot be reached right now?"""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ConnectionError) or any(w in str(seen).lower() for w in _NETWORK):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
