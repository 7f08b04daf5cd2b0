"""The delivery loop on real journals and a real store: exactly once, resumable, waiting politely."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from helpers import all_runs, client_for

from nbtrack.delivery.deliverer import Deliverer
from nbtrack.journal import JournalWriter
from nbtrack.journal.state import RunIndex, Status
from nbtrack.project import Project
from nbtrack.store import resolve


def journal_with_run(project: Path, session: str = "s1", **start: object) -> JournalWriter:
    proj = Project(project)
    journal = JournalWriter(proj.journal_dir, session)
    journal.append("session_start", pid=1, pid_started=None, host=socket.gethostname() + "-elsewhere",
                   python="3", executable="python", cwd=str(project), version="t", delivery="process")
    journal.append("run_start", run="k1", experiment="nb.ipynb", notebook=None, project=str(project),
                   tracking_uri=resolve(project=proj).tracking_uri, name=None, parent_run_id=None, origin="papermill",
                   tags={"nbtrack.run_key": "k1"}, papermill_input=None, papermill_output=None,
                   **{"mlflow_run_id": None, **start})
    journal.append("params", run="k1", params={"lr": "0.1"}, values={"lr": 0.1}, source="t", cell_id=None)
    for step in range(3):
        journal.append("metric", run="k1", key="loss", value=1.0 / (step + 1), step=step, cell_id=None,
                       exec_count=1)
    return journal


def deliver_all(project: Path) -> None:
    deliverer = Deliverer(Project(project))
    while deliverer.run_once():
        pass
    deliverer.close()


def test_replaying_a_journal_logs_nothing_twice(project):
    journal = journal_with_run(project)
    journal.append("run_end", run="k1", status="FINISHED", notebook=None, papermill_output=None, out_of_order=[])
    deliver_all(project)
    (run,) = all_runs(project)
    # Forget every cursor (as after a crash between log_batch and the cursor write) and deliver again.
    for cursor in (project / ".nbtrack" / "journal").glob("s1.*.cursor"):
        cursor.unlink()
    runs_json = project / ".nbtrack" / "journal" / "s1.runs.json"
    runs_json.unlink()  # the run is found again by its nbtrack.run_key tag
    deliver_all(project)
    (again,) = all_runs(project)
    assert again.info.run_id == run.info.run_id
    history = client_for(project).get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]


def test_a_run_id_promised_in_a_file_is_waited_for_then_used(project):
    promised = project / "run-id.txt"
    journal_with_run(project, mlflow_run_id_file=str(promised))
    deliverer = Deliverer(Project(project))
    deliverer.run_once()
    assert all_runs(project) == []  # nothing made while the sweep is still creating the run
    assert Status(project / ".nbtrack" / "journal", "s1").read().get("errors", {}) == {}  # waiting, not failing
    client = client_for(project)
    experiment = client.create_experiment("nb.ipynb")
    made = client.create_run(experiment, run_name="child-1").info.run_id
    promised.write_text(made + "\n")
    time.sleep(0.15)
    while deliverer.run_once():
        pass
    deliverer.close()
    (run,) = all_runs(project)
    assert run.info.run_id == made and run.info.run_name == "child-1"
    assert run.data.params == {"lr": "0.1"}
    assert RunIndex(project / ".nbtrack" / "journal", "s1")["k1"] == made


def test_an_archived_journal_keeps_its_run_index(project):
    journal = journal_with_run(project)
    journal.append("run_end", run="k1", status="FINISHED", notebook=None, papermill_output=None, out_of_order=[])
    journal.append("session_end")
    deliver_all(project)
    done = project / ".nbtrack" / "journal" / "done"
    assert (done / "s1.jsonl").is_file() and (done / "s1.runs.json").is_file()
    assert not list((project / ".nbtrack" / "journal").glob("s1.*"))
    shutil.rmtree(done)


def test_a_start_found_ahead_of_its_batch_never_hides_later_points_on_replay(project, monkeypatch):
    """The run's start lies beyond the batch, and delivery crashed after the first batch (before
    saving its cursor): the replay takes the start from ahead and still logs every point once."""
    from nbtrack.delivery import deliverer as module

    monkeypatch.setattr(module, "BATCH", 10)
    proj = Project(project)
    journal = JournalWriter(proj.journal_dir, "s1")
    journal.append("session_start", pid=1, pid_started=None, host=socket.gethostname() + "-elsewhere",
                   python="3", executable="python", cwd=str(project), version="t", delivery="process")
    for step in range(30):
        journal.append("metric", run="k1", key="loss", value=step / 10, step=step, cell_id=None, exec_count=1)
    journal.append("run_start", run="k1", experiment="nb.ipynb", notebook=None, project=str(project),
                   tracking_uri=resolve(project=proj).tracking_uri, name=None, parent_run_id=None, origin="interactive",
                   tags={"nbtrack.run_key": "k1"}, papermill_input=None, papermill_output=None,
                   adopted=False, mlflow_run_id=None)
    journal.append("run_end", run="k1", status="FINISHED", notebook=None, papermill_output=None, out_of_order=[])
    first = Deliverer(proj)
    first.run_once()  # one batch of each sink
    first.close()
    (proj.journal_dir / "s1.mlflow.cursor").unlink()  # lost: as if it crashed before writing it
    (proj.journal_dir / "s1.runs.json").unlink()
    deliver_all(project)
    (run,) = all_runs(project)
    assert run.info.status == "FINISHED"
    history = client_for(project).get_metric_history(run.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(step, step / 10) for step in range(30)]
