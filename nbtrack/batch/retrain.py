"""``nbtrack.retrain(notebook, metric)``: re-execute a notebook when the data its champion read moved.

One check, in order, each a clear error before anything is created:

1. the champion: the run holding ``<register>@champion`` when ``register`` names a registered
   model that has the alias, else the notebook's latest finished run (no runs: :class:`NotFound`);
2. the metric: the champion must have logged it (else :class:`UsageProblem`, naming those it did);
3. its inputs: the Delta versions it recorded (``nbtrack.read_delta`` / ``read_table``; none:
   :class:`UsageProblem`) against the tables' versions now (a table gone, recreated or vacuumed
   past the recorded version: :class:`NotFound`, see :mod:`nbtrack.query.freshness`).

When no input moved, or an earlier retrain of this champion already read today's versions, the
decision is ``unchanged`` and nothing is written anywhere. Otherwise the champion's snapshot is
re-executed with its params (:func:`nbtrack.batch.rerun.rerun`, reading the latest versions) as
a run tagged ``nbtrack.retrain_of`` (and ``nbtrack.retrain.trigger``: the inputs that moved),
both runs are compared on the metric with the metric-direction rule, and with ``register`` the
challenger's model becomes a version of that registered model, taking the ``champion`` alias
only when it is better. Each retrain is one row of the lake's ``retrains`` table.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nbtrack import tags
from nbtrack.batch.progress import ProgressOption
from nbtrack.errors import NbtrackError, NotFound, UsageProblem
from nbtrack.metric_direction import direction, is_better
from nbtrack.query.freshness import InputVersion, current_versions, recorded_versions, versions_text

if TYPE_CHECKING:
    from nbtrack.batch.sweep import Backend
    from nbtrack.store import StoreRef

Outcome = Literal["unchanged", "retrained", "promoted"]

#: Earlier challengers of a champion looked at before deciding a retrain is needed.
_EARLIER_CHALLENGERS = 5


@dataclass(frozen=True)
class RetrainDecision:
    """What one retrain check decided, and the runs it compared.

    ``outcome`` is ``unchanged`` (no input moved since the champion, or since an earlier
    challenger of it, ``previous``: nothing was created), ``retrained`` (a challenger ran; not
    promoted) or ``promoted`` (the challenger was better and now holds the ``champion`` alias).
    Input versions are ``{table: version}``; ``trigger`` lists the inputs that moved.
    """

    outcome: Outcome
    notebook: str
    metric: str
    champion: str
    champion_inputs: dict[str, int]
    root: Path | None = None
    champion_status: str = "FINISHED"
    previous: str | None = None
    previous_status: str | None = None
    challenger: str | None = None
    challenger_inputs: dict[str, int] = field(default_factory=dict)
    trigger: tuple[InputVersion, ...] = ()
    champion_value: float | None = None
    challenger_value: float | None = None
    status: str | None = None
    error: str | None = None
    output: str | None = None
    better: bool = False
    registered: str | None = None
    retrain_id: str | None = None
    checked_at: float = field(default_factory=time.time)  # when the check began (epoch seconds)
    #: Why the challenger's model could not be registered (no model, a name clash); not promoted.
    registration_error: NbtrackError | None = None

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    def versions(self, which: Literal["champion", "challenger"] = "champion") -> str:
        """``data/train v3, data/labels v7``: an input list as a user reads it."""
        found = self.champion_inputs if which == "champion" else self.challenger_inputs
        return versions_text(found, self.root)

    def headline(self) -> str:
        """The decision in one line (what ``nbtrack retrain`` prints last)."""
        if self.outcome == "unchanged":
            since = (f"retrain {self.previous} of run {self.champion}" if self.previous
                     else f"run {self.champion}")
            shown = self.versions("challenger" if self.previous else "champion")
            failed = "; that retrain failed" if self.previous_status == "FAILED" else ""
            return f"inputs unchanged since {since} ({shown}{failed}); nothing to retrain"
        read = ", ".join(versions_text({m.table: m.current}, self.root) for m in self.trigger)
        was = ", ".join(f"v{m.read}" for m in self.trigger)
        head = f"retrained: challenger {self.challenger} read {read} (champion {self.champion} read {was})"
        if self.status != "FINISHED":
            why = f" ({self.error})" if self.error else ""
            return f"{head}; it ended {self.status}{why}: the champion stays"
        better = "higher" if direction(self.metric) == "max" else "lower"
        values = (f"{self.metric} {_number(self.challenger_value)} vs {_number(self.champion_value)}, "
                  f"{better} is better")
        registered = f", registered as {self.registered}" if self.registered else ""
        if self.registration_error is not None:
            verdict = "better" if self.better else "not better"
            return f"{head}; {values}: {verdict}, not registered ({self.registration_error}); the champion stays"
        if self.promoted:
            return f"{head}; {values}: better, promoted: {self.registered} is the champion"
        if self.better:
            return f"{head}; {values}: better, not promoted (no --register)"
        return f"{head}; {values}: not better{registered}; the champion stays"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nbtrack retrain --json``)."""
        return {
            "outcome": self.outcome, "notebook": self.notebook, "metric": self.metric,
            "direction": direction(self.metric), "champion": self.champion,
            "champion_inputs": self.champion_inputs, "previous": self.previous,
            "previous_status": self.previous_status,
            "challenger": self.challenger, "challenger_inputs": self.challenger_inputs,
            "trigger": trigger_records(self.trigger, self.root),
            "champion_value": _json_number(self.champion_value),
            "challenger_value": _json_number(self.challenger_value),
            "status": self.status, "error": self.error, "output": self.output,
            "better": self.better, "promoted": self.promoted, "registered": self.registered,
            "retrain_id": self.retrain_id, "checked_at": self.checked_at,
            "registration_error": None if self.registration_error is None else str(self.registration_error),
        }


def retrain(
    notebook: str | os.PathLike[str],
    metric: str,
    *,
    register: str | None = None,
    params: Mapping[str, Any] | None = None,
    project: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
    backend: Backend = "local",
    spark: Any = None,
    spark_master: str | None = None,
    progress: ProgressOption = None,
    timeout: float | None = None,
    kernel_name: str | None = None,
    storage_options: dict[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> RetrainDecision:
    """Check ``notebook``'s champion's inputs and retrain it when one moved (see the module).

    ``params`` override the champion's params in the challenger; ``backend="spark"`` executes it
    as a Spark task (``spark``, else the live session, else one for ``spark_master``), whose
    session also reads catalog tables' versions.
    """
    from nbtrack.query.local_store import read_client
    from nbtrack.query.runs import locate_experiment
    from nbtrack.registry.register import check_name

    began = time.time()
    metric = str(metric or "").strip()
    if not metric:
        raise UsageProblem("which metric decides? give --metric NAME (e.g. --metric val_acc)")
    name = check_name(register) if register is not None else None
    if backend not in ("local", "spark"):
        raise UsageProblem(f"unknown backend {backend!r}: use 'local' or 'spark'")
    ref, experiment = locate_experiment(notebook, project=project, tracking_uri=tracking_uri)
    champion = find_champion(ref, experiment, name)
    reader = read_client(ref)
    run = reader.get_run(champion)
    champion_value = _metric(run.data.metrics, metric, champion)
    recorded = recorded_versions(ref, champion)
    root = ref.project.root
    if not recorded:
        raise UsageProblem(
            f"run {champion} recorded no Delta inputs: retrain needs the notebook to read its data "
            "with nbtrack.read_delta(path) (or nbtrack.read_table(name) on Spark), so that nbtrack "
            "knows which table versions the run read")
    # Only a catalog table asks for the session: the given one, the live one, else one for spark_master.
    now = current_versions(recorded, run_id=champion, root=root, spark=lambda: _session(spark, spark_master),
                           storage_options=storage_options)
    champion_inputs = {i.table: i.read for i in now}
    unchanged = RetrainDecision("unchanged", experiment, metric, champion, champion_inputs, root=root,
                                champion_status=str(run.info.status), champion_value=champion_value,
                                checked_at=began)
    moved = tuple(i for i in now if i.moved)
    if not moved:
        return unchanged
    latest = {i.table: i.current for i in now}
    previous = _earlier_challenger(ref, run, latest, params or {})
    if previous is not None:
        return replace(unchanged, previous=previous[0], previous_status=previous[1], challenger_inputs=latest)

    from nbtrack.batch.rerun import rerun

    if name is not None:
        _check_registered_name(ref, name, champion)  # another notebook's model: refused before running
    trigger = json.dumps(trigger_records(moved, root))
    label = run.data.tags.get(tags.RUN_NAME) or champion[:8]
    frame = rerun(
        champion, params, progress=progress, tracking_uri=ref.tracking_uri,
        project=str(root), timeout=timeout, kernel_name=kernel_name, warn=warn, backend=backend,
        spark=spark, spark_master=spark_master, run_name=f"retrain of {label}",
        extra_tags={tags.RETRAIN_OF: champion, tags.ORIGIN: "retrain", tags.RETRAIN_TRIGGER: trigger},
    )
    row = frame.iloc[0]
    challenger, status = str(row["run_id"]), str(row["status"])
    value = _float(row.get(f"metrics.{metric}"))
    better = status == "FINISHED" and is_better(value, champion_value, metric)
    read = {table: version for table, version in recorded_versions(ref, challenger).items()
            if version is not None}
    decision = replace(
        unchanged, outcome="retrained", challenger=challenger, challenger_inputs=read, trigger=moved,
        challenger_value=value, status=status, error=row["error"] or None, output=str(row["output"]),
        better=better, retrain_id=uuid.uuid4().hex)
    if name is not None and status == "FINISHED":
        try:
            decision = _register(decision, ref, name, warn)
        except NbtrackError as exc:  # the retrain happened: the decision says why nothing was promoted
            decision = replace(decision, registration_error=exc)
    record(ref, decision, warn=warn)
    return decision


def find_champion(ref: StoreRef, experiment: str, register: str | None) -> str:
    """The run holding ``register@champion`` (when set), else the latest finished run."""
    from nbtrack.registry.champion import CHAMPION, alias_holder, latest_finished

    if register is not None:
        holder = alias_holder(ref, register, CHAMPION)
        if holder is not None and holder.run_id:
            _check_same_notebook(ref, holder.run_id, experiment, f"{register}@{CHAMPION}")
            return holder.run_id
    found, count = latest_finished(ref, experiment)
    if count == 0:
        raise NotFound(f"{experiment} has no runs yet: run it once with nbtrack (its reads of "
                       "nbtrack.read_delta are what retrain compares), then retrain it")
    if found is None:
        raise NotFound(f"{experiment} has no finished run (of {count}): retrain starts from the "
                       "latest finished run; fix the notebook and run it once")
    return found


def _check_same_notebook(ref: StoreRef, run_id: str, experiment: str, what: str) -> None:
    from nbtrack.query.local_store import read_client

    reader = read_client(ref)
    try:
        owner = str(reader.get_experiment(reader.get_run(run_id).info.experiment_id).name)
    except Exception as exc:  # noqa: BLE001 - a deleted run: MLflow's and our reader's errors differ
        raise NotFound(f"{what} points at run {run_id}, which the store no longer has") from exc
    if owner != experiment:
        raise UsageProblem(f"{what} is a model of {owner} (run {run_id}), not of {experiment}: "
                           "give the registered model of this notebook")


def _metric(metrics: Mapping[str, float], metric: str, run_id: str) -> float | None:
    if metric in metrics:
        return _float(metrics[metric])
    logged = sorted(m for m in metrics if not m.startswith(tags.SYSTEM_METRICS))
    known = f"it logged {', '.join(logged)}" if logged else "it logged no metrics"
    raise UsageProblem(f"unknown metric {metric!r}: the champion, run {run_id}, did not log it; {known}")


def _earlier_challenger(ref: StoreRef, champion: Any, latest: Mapping[str, int],
                        overrides: Mapping[str, Any]) -> tuple[str, str] | None:
    """A challenger of ``champion`` (its run) that already read these versions with these params and
    ended (finished, or failed on them: trying again each check would fail again); a killed one is
    tried again."""
    from nbtrack.capture.params import param_string
    from nbtrack.query.local_store import read_client
    from nbtrack.registry.champion import challengers

    expected = {**champion.data.params, **{k: param_string(v) for k, v in overrides.items()}}
    reader = read_client(ref)
    for run_id, status in challengers(ref, champion.info.run_id)[:_EARLIER_CHALLENGERS]:
        if status not in ("FINISHED", "FAILED") or recorded_versions(ref, run_id) != latest:
            continue
        params = reader.get_run(run_id).data.params
        if all(params.get(k, v if k not in overrides else None) == v for k, v in expected.items()):
            return run_id, status
    return None


def _check_registered_name(ref: StoreRef, name: str, champion: str) -> None:
    """``name`` must not hold another notebook's models (``nbtrack register``'s rule, asked before the
    challenger runs rather than after)."""
    from nbtrack.registry.register import check_clash, global_tracking_uri, mlflow_errors

    with mlflow_errors(), global_tracking_uri(ref.tracking_uri):
        client = ref.client()
        check_clash(client, name, client.get_run(champion), force=False)


def _register(decision: RetrainDecision, ref: StoreRef, name: str,
              warn: Callable[[str], None] | None) -> RetrainDecision:
    """The challenger's model as a version of ``name``; the champion alias too when it is better."""
    from nbtrack.registry.champion import CHAMPION
    from nbtrack.registry.register import register

    assert decision.challenger is not None
    done = register(decision.challenger, name, alias=CHAMPION if decision.better else None,
                    project=ref.project, tracking_uri=ref.tracking_uri, warn=warn)
    return replace(decision, registered=done.uri, outcome="promoted" if decision.better else "retrained")


def record(ref: StoreRef, decision: RetrainDecision, *, warn: Callable[[str], None] | None = None,
           attempts: int = 20) -> None:
    """The decision as one row of the lake's ``retrains`` table (through Spark when the lake is
    written that way); its ``t`` is when the check that decided it began. The runs are the truth:
    a lake that cannot be written costs a warning."""
    from nbtrack.lake.rows import micros
    from nbtrack.lake.tables import CommitConflict
    from nbtrack.sinks.delta import make_sink

    row = {
        "retrain_id": decision.retrain_id or uuid.uuid4().hex, "t": micros(decision.checked_at),
        "notebook": decision.notebook, "metric": decision.metric, "champion": decision.champion,
        "challenger": decision.challenger, "status": decision.status,
        "champion_inputs": json.dumps(decision.champion_inputs, sort_keys=True),
        "challenger_inputs": json.dumps(decision.challenger_inputs, sort_keys=True),
        "trigger": json.dumps(trigger_records(decision.trigger, decision.root)),
        "champion_value": decision.champion_value, "challenger_value": decision.challenger_value,
        "better": decision.better, "promoted": decision.promoted, "registered": decision.registered or "",
    }
    try:
        sink = make_sink(ref)
        if sink is None:
            return
        for attempt in range(attempts):
            try:
                sink.writer.commit("retrains", [row], {})
                return
            except CommitConflict:
                time.sleep(0.05 * (attempt + 1))
        raise NbtrackError("the retrains table kept changing under concurrent writers")
    except Exception as exc:  # noqa: BLE001
        if warn is not None:
            warn(f"the retrain is in MLflow, but the lake's retrains table could not be written ({exc})")


def trigger_records(moved: tuple[InputVersion, ...], root: Path | None) -> list[dict[str, Any]]:
    """The inputs that moved as the tag ``nbtrack.retrain.trigger`` holds them."""
    from nbtrack.query.freshness import table_label

    return [{"table": m.table, "label": table_label(m.table, root), "champion": m.read,
             "current": m.current} for m in moved]


def _session(spark: Any, master: str | None) -> Any:
    """The Spark session that reads catalog tables' versions: given, live, else one for ``master``."""
    from nbtrack.lake.spark import active_session

    if spark is not None:
        return spark
    live = active_session()
    if live is not None or not master:
        return live
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    return (builder.remote(master) if master.startswith("sc://") else builder.master(master)).getOrCreate()


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _number(value: float | None) -> str:
    return "missing" if value is None else f"{value:.6g}"


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "inf" if value > 0 else "-inf"
