"""Journal events -> MLflow runs, in batches, exactly once.

Exactly once: every ``log_batch`` also sets the run's ``nbtrack.journal_seq``
tag to the last event it contains, in the same call (one transaction in the
SQL store). A replayed journal skips events at or below that mark; runs are
found again by their ``nbtrack.run_key`` tag. Artifacts are idempotent by path.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbtrack import tags
from nbtrack.events import Event
from nbtrack.journal import JournalFile
from nbtrack.journal.state import RunIndex, Status
from nbtrack.project import Project
from nbtrack.sinks import RetrySoon
from nbtrack.sinks.models import ModelSkipped, log_snapshot, snapshot_state
from nbtrack.store import get_or_create_experiment, open_client

log = logging.getLogger(__name__)

_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100
_PAPERMILL_WAIT = 10.0  # seconds to wait for papermill's final save of its output notebook


@dataclass
class _Pending:
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Any] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    cells: list[tuple[Path, Event]] = field(default_factory=list)  # cells.json file, cell event
    last_seq: int = 0


class MlflowSink:
    name = "mlflow"

    def __init__(self, project: Project) -> None:
        self.project = project
        self._marks: dict[str, tuple[str, int]] = {}  # run id -> (session, seq) already in MLflow
        self._requirements: dict[str, str] = {}

    # -- entry point ------------------------------------------------------------------------

    def deliver(self, events: list[Event], *, journal_dir: Path, run_ids: Mapping[str, str]) -> None:
        assert isinstance(run_ids, RunIndex)
        index = run_ids
        for event in events:  # a model's snapshot is written by a kernel thread after its event
            if event.get("type") == "model" and snapshot_state(journal_dir, event) == "writing":
                raise RetrySoon(f"waiting for the snapshot {event.get('file')}")
        for event in events:
            if event.get("type") == "run_start" and event["run"] not in index:
                self._start(event, index)
        pending: dict[str, tuple[str, _Pending]] = {}  # run id -> (tracking uri, what to log)
        for event in events:
            key = event.get("run")
            if key is None or key not in index or event["type"] == "run_start":
                continue  # a start may come ahead of its place in the journal: never a journal mark
            info = index.info(key)
            client = open_client(info["tracking_uri"])
            run_id = info["run_id"]
            if self._already_delivered(client, run_id, event):
                continue
            batch = pending.setdefault(run_id, (info["tracking_uri"], _Pending()))[1]
            self._apply(client, run_id, event, batch, journal_dir)
            batch.last_seq = int(event["seq"])
            if event["type"] == "run_end":
                self._flush(client, run_id, event["session"], batch)
                self._end(client, run_id, event, journal_dir, key)
        for run_id, (uri, batch) in pending.items():
            self._flush(open_client(uri), run_id, events[0]["session"], batch)

    def close(self) -> None:
        pass

    # -- runs -----------------------------------------------------------------------------------

    def _start(self, event: Event, index: RunIndex) -> None:
        uri = event["tracking_uri"]
        client = open_client(uri)
        project = Project(Path(event["project"])) if event.get("project") else self.project
        run_tags = dict(event.get("tags") or {})
        run_tags.update(_git_tags(project.root))
        if event.get("notebook"):
            run_tags[tags.SOURCE_NAME] = event["notebook"]
            run_tags[tags.SOURCE_TYPE] = "NOTEBOOK"
        if event.get("parent_run_id"):
            run_tags[tags.PARENT_RUN_ID] = event["parent_run_id"]
        run_id = event.get("mlflow_run_id") or _run_id_from_file(event.get("mlflow_run_id_file"), event["t"])
        parent = event.get("parent_run_id")
        if run_id:
            run = client.get_run(run_id)  # raises for a wrong NBTRACK_RUN_ID
            name, parent = run.info.run_name, parent or run.data.tags.get(tags.PARENT_RUN_ID)
            client.set_tag(run_id, tags.RUN_KEY, event["run"])
            _log_tags(client, run_id, run_tags)
        else:
            experiment_id = get_or_create_experiment(client, event["experiment"], project)
            found = client.search_runs(
                [experiment_id], filter_string=f"tags.`{tags.RUN_KEY}` = '{event['run']}'", max_results=1
            )
            if found:
                run_id, name = found[0].info.run_id, found[0].info.run_name
            else:
                run = client.create_run(experiment_id, start_time=int(event["t"] * 1000), tags=run_tags,
                                        run_name=event.get("name") or None)
                run_id, name = run.info.run_id, run.info.run_name
        # The name and parent too (MLflow invents a name for an unnamed run; a sweep names its
        # children's parent itself): the lake shows what MLflow has.
        index.set(event["run"], run_id, tracking_uri=uri, session=event["session"],
                  project=str(project.root), name=name, parent_run_id=parent)

    def _already_delivered(self, client: Any, run_id: str, event: Event) -> bool:
        mark = self._marks.get(run_id)
        if mark is None:
            raw = client.get_run(run_id).data.tags.get(tags.JOURNAL_SEQ, "")
            session, _, seq = raw.rpartition(":")
            mark = (session, int(seq) if seq.isdigit() else 0)
            self._marks[run_id] = mark
        return mark[0] == event["session"] and int(event["seq"]) <= mark[1]

    def _apply(self, client: Any, run_id: str, event: Event, batch: _Pending, journal_dir: Path) -> None:
        kind = event["type"]
        if kind == "params":
            batch.params.update({str(k): str(v) for k, v in event["params"].items()})
        elif kind == "metric":
            from mlflow.entities import Metric

            batch.metrics.append(Metric(event["key"], float(event["value"]), int(event["t"] * 1000),
                                        int(event.get("step") or 0)))
        elif kind == "tags":
            batch.tags.update({str(k): str(v) for k, v in event["tags"].items()})
        elif kind == "artifact":
            local = journal_dir / event["file"]
            if local.is_file():
                folder = str(Path(event["path"]).parent)
                client.log_artifact(run_id, str(local), None if folder == "." else folder)
        elif kind == "cell":
            path = journal_dir / f"{event['session']}.blobs" / event["run"] / "nbtrack" / "cells.json"
            batch.cells.append((path, event))
        elif kind == "input":
            _log_input(client, run_id, event)
        elif kind == "model":
            self._flush(client, run_id, event["session"], batch)  # the model is logged with the metrics so far
            self._log_model(client, run_id, event, journal_dir)

    def _log_model(self, client: Any, run_id: str, event: Event, journal_dir: Path) -> None:
        try:
            log_snapshot(client, run_id, event, journal_dir)
        except ModelSkipped as exc:
            log.warning("%s", exc)
            Status(journal_dir, event["session"]).note(f"model:{event.get('run')}:{event.get('name')}", str(exc))

    def _flush(self, client: Any, run_id: str, session: str, batch: _Pending) -> None:
        """log_batch in MLflow-sized chunks; the last chunk carries the journal mark."""
        if not batch.last_seq:
            return
        if batch.cells:  # before log_batch, so the cell count tag goes with it
            self._write_cells(client, run_id, batch)
        from mlflow.entities import Param, RunTag

        params = [Param(k, v) for k, v in batch.params.items()]
        run_tags = [RunTag(k, v) for k, v in batch.tags.items()]
        metrics = batch.metrics
        mark = RunTag(tags.JOURNAL_SEQ, f"{session}:{batch.last_seq}")
        while True:
            chunk_p, params = params[:_MAX_PARAMS], params[_MAX_PARAMS:]
            chunk_t, run_tags = run_tags[: _MAX_TAGS - 1], run_tags[_MAX_TAGS - 1:]
            room = _MAX_METRICS - len(chunk_p) - len(chunk_t) - 1
            chunk_m, metrics = metrics[:room], metrics[room:]
            last = not (params or run_tags or metrics)
            _log_batch(client, run_id, chunk_m, chunk_p, chunk_t + ([mark] if last else []))
            if last:
                break
        self._marks[run_id] = (session, batch.last_seq)
        batch.params, batch.metrics, batch.tags, batch.cells, batch.last_seq = {}, [], {}, [], 0

    def _write_cells(self, client: Any, run_id: str, batch: _Pending) -> None:
        """Add the batch's cell executions to the run's ``nbtrack/cells.json``: one write, one upload."""
        path = batch.cells[0][0]
        try:
            cells = json.loads(path.read_text())
        except (OSError, ValueError):
            cells = []
        seen = {c.get("_seq") for c in cells}
        for _, event in batch.cells:
            if event["seq"] in seen:
                continue
            record = {k: event.get(k) for k in ("exec_count", "cell_id", "source", "source_sha", "start",
                                                 "duration_s", "status", "error_name", "error_value",
                                                 "outputs", "metrics", "index", "cpu_s", "peak_memory_mb")}
            record["_seq"] = event["seq"]
            cells.append(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cells, indent=1, default=str))
        client.log_artifact(run_id, str(path), "nbtrack")
        batch.tags[tags.CELLS] = str(len(cells))

    def _end(self, client: Any, run_id: str, event: Event, journal_dir: Path, key: str) -> None:
        end_tags: dict[str, str] = {}
        if event.get("out_of_order"):
            end_tags[tags.OUT_OF_ORDER] = "; ".join(event["out_of_order"])[:5000]
        output = event.get("papermill_output")
        if output:
            _log_papermill_output(client, run_id, Path(output))
        header = JournalFile(journal_dir / f"{event['session']}.jsonl").header() or {}
        requirements = self._environment(header.get("executable") or sys.executable)
        if requirements:
            req = journal_dir / f"{event['session']}.blobs" / key / "environment" / "requirements.txt"
            req.parent.mkdir(parents=True, exist_ok=True)
            req.write_text(requirements)
            client.log_artifact(run_id, str(req), "environment")
        if header.get("python"):
            end_tags[tags.PYTHON] = str(header["python"])
        if end_tags:
            _log_tags(client, run_id, end_tags)
        client.set_terminated(run_id, status=event.get("status") or "FINISHED", end_time=int(event["t"] * 1000))

    def _environment(self, executable: str) -> str:
        """``pip freeze`` of the kernel's Python, once per delivery process."""
        if executable not in self._requirements:
            text = ""
            if executable == sys.executable:
                from importlib.metadata import distributions

                names = {f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"]}
                text = "\n".join(sorted(names, key=str.lower)) + "\n"
            else:
                try:
                    text = subprocess.run([executable, "-m", "pip", "freeze"], capture_output=True,
                                          text=True, timeout=60).stdout
                except (OSError, subprocess.SubprocessError):
                    text = ""
            self._requirements[executable] = text
        return self._requirements[executable]


_RUN_ID_FILE_WAIT = 120.0  # seconds to wait for a sweep's run id file before making the run here


def _run_id_from_file(path: str | None, since: float) -> str | None:
    """The run id a sweep promised in ``path``; None (make a run) if it never came."""
    if not path:
        return None
    try:
        run_id = Path(path).read_text().strip()
    except OSError:
        run_id = ""
    if run_id:
        return run_id
    if time.time() - since > _RUN_ID_FILE_WAIT:
        log.warning("no run id appeared in %s; creating the run instead", path)
        return None
    raise RetrySoon(f"waiting for the run id in {path}")


def _log_batch(client: Any, run_id: str, metrics: list[Any], params: list[Any], run_tags: list[Any]) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.log_batch(run_id, metrics=metrics, params=params, tags=run_tags, synchronous=True)
    except MlflowException as exc:
        if exc.error_code not in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS"):
            raise
        # One bad entity must not block the rest forever: log one by one, drop the bad ones.
        for kind, items in (("metrics", metrics), ("params", params), ("tags", run_tags)):
            for item in items:
                try:
                    client.log_batch(run_id, **{kind: [item]}, synchronous=True)
                except MlflowException as item_exc:
                    log.warning("dropped %s %r of run %s: %s", kind, item.key, run_id, item_exc.message)


def _log_tags(client: Any, run_id: str, values: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, v) for k, v in values.items()]
    for start in range(0, len(items), _MAX_TAGS):
        _log_batch(client, run_id, [], [], items[start:start + _MAX_TAGS])


def _log_input(client: Any, run_id: str, event: Event) -> None:
    try:
        import hashlib

        from mlflow.entities import Dataset, DatasetInput, InputTag

        uri = str(event.get("table_uri"))
        # MLflow keeps one dataset per (experiment, name, digest) and links later runs to it: a
        # digest of the schema alone would give a run that read v4 the v0 another run logged.
        identity = f"{uri}@{event.get('version')}:{event.get('schema_hash') or ''}"
        dataset = Dataset(
            name=Path(uri.rstrip("/")).name or uri,
            digest=hashlib.sha256(identity.encode()).hexdigest()[:32],
            source_type="delta",
            source=json.dumps({"path": uri, "version": event.get("version")}),
            profile=json.dumps({"rows": event.get("rows")}),
        )
        client.log_inputs(run_id, datasets=[DatasetInput(dataset, [InputTag("mlflow.data.context", "input")])])
    except Exception as exc:  # noqa: BLE001 - lineage is also in the lake; never block the run
        log.warning("could not log input %s: %s", event.get("table_uri"), exc)


def _log_papermill_output(client: Any, run_id: str, path: Path) -> None:
    """papermill saves its output notebook after the kernel exits: wait for that final save."""
    deadline = time.monotonic() + _PAPERMILL_WAIT
    while time.monotonic() < deadline:
        try:
            meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
            if meta.get("end_time") or meta.get("exception"):
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    if path.is_file():
        client.log_artifact(run_id, str(path), "notebook/papermill_output")


def _git_tags(root: Path) -> dict[str, str]:
    if not (root / ".git").exists():
        return {}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "--verify", "-q", "HEAD")
        if len(commit) != 40:
            return {}  # not a repository with commits yet
        return {tags.GIT_COMMIT: commit, tags.GIT_BRANCH: git("rev-parse", "--abbrev-ref", "HEAD"),
                tags.GIT_DIRTY: "true" if git("status", "--porcelain", "--untracked-files=no") else "false"}
    except (OSError, subprocess.SubprocessError):
        return {}
