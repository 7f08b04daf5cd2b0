"""Register a run's model in MLflow's Model Registry: ``nbtrack register RUN --name NAME``.

Every input is checked before anything is written (the name, the alias, the run,
its model, a clash with another notebook's model), and a registration that fails
half-way is undone: a new registered model or version is deleted again, so the
registry holds the whole registration or none of it. Registering the model a
version already holds is not a second version: that version is returned (and
given the alias).

A name clash: the registered model already holds versions that come from another
notebook (another MLflow experiment). Adding to it is usually a mistake (two
notebooks' models under one name); ``force=True`` does it anyway.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.errors import NbtrackError, NotFound, StoreUnavailable, UsageProblem
from nbtrack.query.lookup import resolve_run_id
from nbtrack.query.store import ProjectLike, StoreRef, resolve_store

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel, Run
    from mlflow.tracking import MlflowClient

#: Seconds to wait for a run's model that the delivery process is still logging.
MODEL_WAIT_S = 60.0
_ALIAS = re.compile(r"^[\w\-]{1,255}$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
_GLOBAL_URI = threading.Lock()


@dataclass(frozen=True)
class Registration:
    """A registered model version, and where it came from."""

    name: str
    version: int
    run_id: str
    model: str  # the model's name in the run
    model_id: str
    aliases: list[str] = field(default_factory=list)
    created: bool = True  # False: the model already was this version

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def check_name(name: str) -> str:
    """A registered model name MLflow accepts (not empty, no ``/`` or ``:``)."""
    name = str(name or "").strip()
    if not name or "/" in name or ":" in name or len(name) > 256:
        raise UsageProblem(f"{name!r} cannot name a registered model: give 1 to 256 characters "
                           "without '/' or ':'")
    return name


def check_alias(alias: str | None) -> str | None:
    """An alias MLflow accepts: letters, digits, ``_`` and ``-``; not ``latest`` nor ``v3``."""
    if alias is None:
        return None
    if not _ALIAS.match(alias) or alias.lower() == "latest" or _VERSION_ALIAS.match(alias):
        raise UsageProblem(f"{alias!r} cannot be an alias: use letters, digits, '_' and '-' "
                           "(not 'latest', nor v<number>, which name versions)")
    return alias


def register(
    run_id: str,
    name: str,
    *,
    model: str | None = None,
    alias: str | None = None,
    force: bool = False,
    project: ProjectLike | None = None,
    tracking_uri: str | None = None,
    wait: float = MODEL_WAIT_S,
    warn: Callable[[str], None] | None = None,
) -> Registration:
    """Register run ``run_id``'s model (``model``: its name in the run, needed when it has
    several) as a new version of ``name``; ``alias`` (``champion``) then points at it."""
    name, alias = check_name(name), check_alias(alias)
    ref = resolve_store(project=project, tracking_uri=tracking_uri)
    full_id = resolve_run_id(ref, run_id)
    with mlflow_errors(), global_tracking_uri(ref.tracking_uri):
        client = ref.client()
        run = client.get_run(full_id)
        chosen = pick_model(run, run_models(client, run, wait), model)
        version = _existing_version(client, name, chosen.model_id)
        created = version is None
        if version is None:
            check_clash(client, name, run, force)
            version = _create(client, name, run, chosen, alias)
        elif alias:
            client.set_registered_model_alias(name, alias, str(version.version))
        registration = Registration(
            name=name, version=int(version.version), run_id=full_id, model=chosen.name,
            model_id=chosen.model_id, created=created,
            aliases=sorted(client.get_model_version(name, str(version.version)).aliases),
        )
        record_in_lake(ref, client, registration, alias, warn=warn)
    return registration


@contextmanager
def global_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's registry looks logged models up through the process's default store: make it
    this one for the time of the call (one call at a time; the previous value is restored)."""
    import os

    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _GLOBAL_URI:
        variable = os.environ.get("MLFLOW_TRACKING_URI")  # MLflow sets and unsets it with its setting
        try:
            with _use_tracking_uri(uri):
                yield
        finally:
            if variable is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = variable


@contextmanager
def mlflow_errors() -> Iterator[None]:
    """MLflow's refusals as nbtrack's typed errors (one line, a documented exit code)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        message = " ".join(str(exc.message).split())
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise NotFound(message) from exc
        if exc.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "BAD_REQUEST"):
            raise UsageProblem(message) from exc
        if exc.error_code in ("TEMPORARILY_UNAVAILABLE", "ENDPOINT_NOT_FOUND"):
            raise StoreUnavailable(message) from exc
        raise NbtrackError(message) from exc


def run_models(client: MlflowClient, run: Run, wait: float = MODEL_WAIT_S) -> list[LoggedModel]:
    """The run's READY logged models, waiting (at most ``wait`` s) for those the run's
    ``nbtrack.models`` tag names and the delivery process has not logged yet."""
    from mlflow.entities import LoggedModelStatus

    run_id, experiment = run.info.run_id, run.info.experiment_id
    expected = {entry.get("name") for entry in _captured(run)}
    deadline = time.monotonic() + wait
    while True:
        found = {m.model_id: m for m in client.search_logged_models(
            experiment_ids=[experiment], filter_string=f"source_run_id = '{run_id}'")}
        outputs = getattr(run.outputs, "model_outputs", None) or []
        for output in outputs:  # a model MLflow's own log_model linked to the run from elsewhere
            if output.model_id not in found:
                found[output.model_id] = client.get_logged_model(output.model_id)
        ready = [m for m in found.values() if m.status == LoggedModelStatus.READY]
        missing = expected - {m.name for m in ready}
        if not missing or time.monotonic() >= deadline:
            return ready
        time.sleep(0.5)
        run = client.get_run(run_id)


def _captured(run: Run) -> list[dict[str, Any]]:
    try:
        value = json.loads(run.data.tags.get(tags.MODELS, "[]"))
    except ValueError:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def pick_model(run: Run, models: list[LoggedModel], wanted: str | None) -> LoggedModel:
    """The model to register: the one named ``wanted``, or the run's only one."""
    short = run.info.run_id[:8]
    names = sorted({m.name for m in models})
    if not models:
        pending = [str(e.get("name")) for e in _captured(run)]
        if pending:
            raise NotFound(f"run {short}'s model {', '.join(pending)} is not in MLflow yet: its delivery "
                           "is still running or failed (see `nbtrack recover`)")
        raise NotFound(f"run {short} has no model: a run logs one when a top-level variable holds a "
                       "fitted model at its end, or with nbtrack.log_model(model)")
    if wanted is not None:
        for model in sorted(models, key=lambda m: m.creation_timestamp or 0, reverse=True):
            if model.name == wanted:
                return model
        raise NotFound(f"run {short} has no model named {wanted!r}; it has {', '.join(names)}")
    if len(names) > 1:
        raise UsageProblem(f"run {short} has {len(names)} models ({', '.join(names)}): "
                           "choose one with --model NAME")
    return max(models, key=lambda m: m.creation_timestamp or 0)


def _existing_version(client: MlflowClient, name: str, model_id: str) -> Any:
    """The version of ``name`` that already holds this logged model, if any."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{_quote(name)}'")
    except MlflowException:
        return None
    for version in versions:  # some stores leave model_id out of a search: the source names it too
        if getattr(version, "model_id", None) == model_id or version.source == f"models:/{model_id}":
            return version
    return None


def check_clash(client: MlflowClient, name: str, run: Run, force: bool) -> None:
    """Refuse to add a version to a registered model that holds another notebook's models."""
    from mlflow.exceptions import MlflowException

    if force:
        return
    try:
        versions = client.search_model_versions(f"name = '{_quote(name)}'", max_results=20)
    except MlflowException:
        return
    others: set[str] = set()
    for version in versions:
        if not version.run_id:
            continue
        try:
            experiment = client.get_run(version.run_id).info.experiment_id
        except MlflowException:
            continue
        if experiment != run.info.experiment_id:
            others.add(experiment)
    if others:
        found = [_experiment_name(client, e) for e in sorted(others)]
        raise UsageProblem(f"registered model {name!r} holds models of {', '.join(found)}, not of this "
                           "run's notebook: choose another --name, or add to it with --force")


def _experiment_name(client: MlflowClient, experiment_id: str) -> str:
    try:
        return str(client.get_experiment(experiment_id).name)
    except Exception:  # noqa: BLE001
        return f"experiment {experiment_id}"


def _create(client: MlflowClient, name: str, run: Run, model: LoggedModel, alias: str | None) -> Any:
    """A new version (and the registered model when new), alias set; undone on any failure."""
    from mlflow.exceptions import MlflowException

    created_model = False
    try:
        client.create_registered_model(name)
        created_model = True
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    version = None
    try:
        version = client.create_model_version(
            name, source=f"models:/{model.model_id}", run_id=run.info.run_id, model_id=model.model_id,
            tags={"nbtrack.model": model.name})
        if alias:
            client.set_registered_model_alias(name, alias, str(version.version))
    except BaseException:
        _undo(client, name, version, created_model)
        raise
    return version


def _undo(client: MlflowClient, name: str, version: Any, created_model: bool) -> None:
    try:
        if created_model:
            client.delete_registered_model(name)
        elif version is not None:
            client.delete_model_version(name, str(version.version))
    except Exception:  # noqa: BLE001 - the original failure is what the user must see
        pass


def record_in_lake(ref: StoreRef, client: MlflowClient, registration: Registration, alias: str | None,
                   *, warn: Callable[[str], None] | None = None) -> None:
    """The registration in the lake's ``models`` table (and the alias gone from the version that
    held it). The registry is the truth: a lake that cannot be written costs one warning."""
    from nbtrack.lake.rows import micros

    rows = [_lake_row(registration.run_id, registration.model, registration.name, registration.version,
                      registration.aliases)]
    if alias:  # the version that held the alias before holds it no more
        for found in client.search_model_versions(f"name = '{_quote(registration.name)}'"):
            model = (found.tags or {}).get("nbtrack.model")
            if int(found.version) == registration.version or not found.run_id or not model:
                continue
            version = client.get_model_version(registration.name, str(found.version))  # with its aliases
            if (found.run_id, model) != (registration.run_id, registration.model):
                rows.append(_lake_row(found.run_id, model, registration.name, int(found.version),
                                      list(version.aliases)))
    now = micros(time.time())
    unique = {(row["run_id"], row["name"]): dict(row, registered_at=now) for row in reversed(rows)}
    rows = list(unique.values())
    try:
        write_lake_rows(ref, rows)
    except Exception as exc:  # noqa: BLE001
        if warn is not None:
            warn(f"the registration is in MLflow, but the lake's models table could not be updated ({exc})")


def _lake_row(run_id: str, model: str, name: str, version: int, aliases: list[str]) -> dict[str, Any]:
    return {"run_id": run_id, "name": model, "uri": f"runs:/{run_id}/{model}", "registered_name": name,
            "registered_version": version, "aliases": ",".join(sorted(aliases))}


def write_lake_rows(ref: StoreRef, rows: list[dict[str, Any]], attempts: int = 20) -> None:
    """Merge rows into the lake's ``models`` table (nothing when the lake is off)."""
    from nbtrack.lake.tables import CommitConflict
    from nbtrack.sinks.delta import make_sink

    sink = make_sink(ref)
    if sink is None or not rows:
        return
    for attempt in range(attempts):
        try:
            sink.writer.commit("models", rows, {})
            return
        except CommitConflict:
            time.sleep(0.05 * (attempt + 1))
    raise RuntimeError("the models table kept changing under concurrent writers")


def _quote(name: str) -> str:
    return name.replace("'", "\\'")
