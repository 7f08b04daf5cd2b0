"""What the query layer adds for the panel: run numbers and names, why a run failed, a change
token, and a comparison whose durations and cell numbers match the list's. Real MLflow stores."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
from test_server_store import FIGURE_CELL, NOTEBOOK, log_run, make_project

from nbtrack import tags
from nbtrack.query.changes import change_token
from nbtrack.query.compare import compare
from nbtrack.query.failures import cell_error, describe_failure, failures, output_traceback
from nbtrack.query.names import display_names, is_random_name
from nbtrack.query.runs import list_runs, runs_records
from nbtrack.store import open_client, resolve


def row(run_id: str, start: str, params: dict[str, str], **extra: str) -> dict:
    return {"run_id": run_id, "run_name": extra.pop("run_name", "amazing-panda-982"), "start_time": start,
            "params": params, "rerun_of": "", "sweep_id": "", "parent_run_id": "", **extra}


def test_runs_are_numbered_in_start_order_and_named_by_what_changed():
    rows = [
        row("a" * 32, "2026-01-01T10:00", {"lr": "0.1", "depth": "3"}),
        row("b" * 32, "2026-01-01T10:05", {"lr": "0.05", "depth": "3"}),
        row("c" * 32, "2026-01-01T10:09", {"lr": "0.05", "depth": "3"}, run_name="baseline"),
        row("d" * 32, "2026-01-01T10:10", {"lr": "0.5", "depth": "4"}, rerun_of="b" * 32,
            run_name="rerun of amazing-panda-982"),
    ]
    names = display_names(reversed(rows))  # the list comes newest first: numbering does not care
    assert [names[r["run_id"]]["number"] for r in rows] == [1, 2, 3, 4]
    assert names["a" * 32]["label"] == "amazing-panda-982"  # the first run: nothing changed yet
    assert names["b" * 32]["label"] == "lr=0.05"
    assert names["c" * 32]["label"] == "baseline"  # a name someone chose is kept
    assert names["d" * 32]["label"] == "rerun of #2 · depth=4, lr=0.5"


def test_a_retrain_is_named_after_its_champion():
    rows = [row("a" * 32, "2026-01-01T10:00", {"C": "1.0"}),
            row("b" * 32, "2026-01-02T10:00", {"C": "1.0"}, rerun_of="a" * 32, retrain_of="a" * 32,
                run_name="retrain of amazing-panda-982")]
    assert display_names(rows)["b" * 32] == {"number": 2, "label": "retrain of #1"}


def test_sweep_runs_are_labelled_by_their_params_uniquely_across_sweeps():
    rows = []
    for sweep, start in (("s1", "2026-01-01T10"), ("s2", "2026-01-02T10")):
        parent = row(f"{sweep}".ljust(32, "0"), f"{start}:00", {"lr": "[0.1, 0.2]"}, sweep_id=sweep,
                     run_name=f"sweep {sweep}")
        rows.append(parent)
        for i, lr in enumerate(("0.1", "0.2"), start=1):
            rows.append(row(f"{sweep}{i}".ljust(32, "0"), f"{start}:0{i}", {"lr": lr}, sweep_id=sweep,
                            parent_run_id=parent["run_id"], run_name=f"#{i} lr={lr}"))
    names = display_names(rows)
    assert names["s1".ljust(32, "0")] == {"number": None, "label": "sweep s1"}
    shown = [(names[r["run_id"]]["number"], names[r["run_id"]]["label"]) for r in rows if r["parent_run_id"]]
    assert shown == [(1, "lr=0.1"), (2, "lr=0.2"), (3, "lr=0.1"), (4, "lr=0.2")]
    assert len({f"#{n} {label}" for n, label in shown}) == 4


def test_mlflow_random_names_are_recognised():
    assert is_random_name("amazing-panda-982")
    assert not is_random_name("baseline")
    assert not is_random_name("#1 lr=0.1")


RECORDS = [
    {"cell_id": "p", "exec_count": 1, "index": 0, "source": "lr = 2", "status": "ok"},
    {"cell_id": "x", "exec_count": 2, "index": 3, "source": "raise ValueError('lr too large')",
     "status": "error", "error_name": "ValueError", "error_value": "lr too large"},
]


def test_a_failure_names_the_error_and_the_cell_by_its_position():
    found = cell_error(RECORDS)
    assert found == {"name": "ValueError", "value": "lr too large", "cell": {
        "cell_id": "x", "index": 3, "number": 4, "exec_count": 2, "source": "raise ValueError('lr too large')"}}
    failure = describe_failure("FAILED", RECORDS, {tags.PAPERMILL_OUTPUT: "/out/1.ipynb"}, "notebook/x.ipynb")
    assert failure["message"] == "ValueError: lr too large"
    assert failure["output"] == "notebook/x.ipynb"
    assert failure["output_path"] == "/out/1.ipynb"
    assert describe_failure("FINISHED", RECORDS, {}) is None


def test_a_failure_without_a_raising_cell_says_what_the_sweep_saw():
    timeout = describe_failure("FAILED", [], {"nbtrack.sweep.error": "TimeoutError: cell timed out after 5 s"})
    assert timeout["message"] == "TimeoutError: cell timed out after 5 s"
    assert timeout["cell"] is None
    assert describe_failure("KILLED", [], {})["message"] == "Killed: the kernel died or was stopped"


def test_traceback_comes_from_the_output_notebook_without_colours():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1/0")
    cell.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                           traceback=["\x1b[0;31mZeroDivisionError\x1b[0m", "Cell In[1], line 1"])]
    nb.cells = [cell]
    assert output_traceback(nbformat.writes(nb)) == "ZeroDivisionError\nCell In[1], line 1"
    assert output_traceback("not json") is None
    assert output_traceback(None) is None


def failed_run(project, lr: float = 5.0) -> str:
    """A papermill-style failed run: its cell records, output notebook and sweep tags."""
    client = open_client(project.tracking_uri)
    run_id = log_run(client, project.experiment_id, project.notebook, lr, int(time.time() * 1000), 9)
    artifacts = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
    (artifacts / "nbtrack" / "cells.json").write_text(json.dumps(RECORDS))
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(RECORDS[1]["source"])
    cell.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="lr too large",
                                           traceback=["ValueError: lr too large"])]
    nb.cells = [cell]
    (artifacts / "notebook" / "papermill_output").mkdir(parents=True)
    nbformat.write(nb, artifacts / "notebook" / "papermill_output" / "3.ipynb")
    client.set_tag(run_id, tags.PAPERMILL_OUTPUT, "/elsewhere/3.ipynb")
    client.set_terminated(run_id, "FAILED")
    return run_id


def test_failures_of_a_run_list_and_of_a_comparison(tmp_path):
    project = make_project(tmp_path / "p", (0.1,))
    failed = failed_run(project)
    ref = resolve(project=project.root)
    rows = runs_records(list_runs(project.notebook_path, project=project.root))
    found = failures(ref, rows)
    assert set(found) == {failed}
    assert found[failed]["cell"]["number"] == 4
    assert found[failed]["output"] == "notebook/papermill_output/3.ipynb"
    assert found[failed]["traceback"] is None  # lists stay light; the comparison reads it
    cmp = compare([project.run_ids[0], failed], project=project.root).to_dict()
    errors = {r["run_id"]: r["error"] for r in cmp["runs"]}
    assert errors[project.run_ids[0]] is None
    assert errors[failed]["message"] == "ValueError: lr too large"
    assert errors[failed]["traceback"] == "ValueError: lr too large"


def test_comparison_numbers_figure_cells_like_the_notebook(tmp_path):
    project = make_project(tmp_path / "p", (0.1, 0.01))
    cmp = compare(project.run_ids, project=project.root).to_dict()
    (figure,) = cmp["figures"]
    assert (figure["cell_id"], figure["index"]) == (FIGURE_CELL, 1)  # the second cell: "cell 2"
    assert [c["index"] for c in cmp["cells"]] == [0]


def test_change_token_moves_when_a_run_is_added_or_ends(tmp_path):
    project = make_project(tmp_path / "p", (0.1,))
    ref = resolve(project=project.root)
    first = change_token(ref)
    assert change_token(ref) == first  # nothing happened: the same token
    time.sleep(0.01)
    client = open_client(project.tracking_uri)
    run = client.create_run(project.experiment_id)
    added = change_token(ref)
    assert added != first
    time.sleep(0.01)
    client.set_terminated(run.info.run_id, "FINISHED")
    assert change_token(ref) != added


def test_change_token_of_a_project_without_a_store(tmp_path):
    (tmp_path / ".git").mkdir()
    ref = resolve(project=tmp_path)
    assert change_token(ref) == change_token(ref)


def delivered_run(root: Path, *, created_before_s: float) -> str:
    """A run created in MLflow ``created_before_s`` before its kernel began (as a sweep creates
    its runs), then executed and delivered into MLflow and the lake by nbtrack's own delivery."""
    from nbtrack.delivery.deliverer import Deliverer
    from nbtrack.journal import JournalWriter
    from nbtrack.project import Project

    tracked = make_project(root, ())
    project = Project(root.resolve())
    client = open_client(tracked.tracking_uri)
    created = int((time.time() - created_before_s) * 1000)
    run_id = client.create_run(tracked.experiment_id, start_time=created).info.run_id
    journal = JournalWriter(project.journal_dir, "query-panel")
    journal.append("session_start", pid=0, pid_started=None, host="test", python="3", delivery="process",
                   executable="python", cwd=str(root), version="test")
    journal.append("run_start", run="k1", experiment=NOTEBOOK, notebook=str(tracked.notebook_path),
                   project=str(root), tracking_uri=tracked.tracking_uri, name=None, mlflow_run_id=run_id,
                   parent_run_id=None, origin="sweep", tags={"nbtrack.run_key": "k1"},
                   papermill_input=None, papermill_output=None, adopted=True)
    journal.append("params", run="k1", params={"lr": "0.1"}, values={"lr": 0.1}, source="papermill",
                   cell_id=None)
    journal.append("metric", run="k1", key="val_loss", value=0.5, step=0, cell_id=None, exec_count=1)
    time.sleep(0.2)
    journal.append("run_end", run="k1", status="FINISHED", notebook=None, papermill_output=None, out_of_order=[])
    journal.append("session_end")
    journal.close()
    deliverer = Deliverer(project)
    while deliverer.run_once():
        pass
    deliverer.close()
    return run_id


def test_list_and_comparison_report_one_duration(tmp_path):
    """A sweep creates a run before its kernel starts: the list (from the lake) and the
    comparison both time the execution, not the wait for a kernel."""
    root = tmp_path / "p"
    run_id = delivered_run(root, created_before_s=20)
    (listed,) = runs_records(list_runs(root / NOTEBOOK, project=root))
    assert listed["run_id"] == run_id
    assert listed["duration_s"] < 10
    (compared,) = compare([run_id], project=root).to_dict()["runs"]
    assert compared["duration_s"] == listed["duration_s"]
    assert compared["start_time"] == listed["start_time"]


def test_inline_panel_reads_like_the_jupyterlab_panel(tmp_path):
    """``%nbtrack panel``: bare param names, #numbers, durations, 4 significant digits, the
    panel's filters, and the list's names in its comparison."""
    import re

    pytest = __import__("pytest")
    pytest.importorskip("ipywidgets")
    from nbtrack.widgets import RunsPanel

    project = make_project(tmp_path / "p")
    panel = RunsPanel(project.notebook_path)
    table = panel.table.value
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert headers[:5] == ["#", "run", "status", "start", "duration"]
    assert "lr" in headers and "val_loss" in headers and "params.lr" not in headers
    assert "5.0 s" in table and "7.0 s" in table
    assert "0.9091" in table  # val_loss of lr=0.01 (1/1.1), to 4 significant digits
    newest = panel.chips[panel.shown_run_ids[0]]
    assert (newest.description, newest.tooltip) == ("#3", "#3 run-2 · finished · val_loss 0.9901")

    panel.filter.value = "val_loss<=0.5"
    assert panel.shown_run_ids == [project.run_ids[0]]
    panel.filter.value = "depth in 3,4 lr>=0.01"
    assert panel.shown_run_ids == project.run_ids[1::-1]
    panel.filter.value = "tst_acc>1"
    assert panel.shown_run_ids == []
    assert "No column" in panel.message.value
    panel.filter.value = ""

    cmp = panel.compare(project.run_ids[:2])
    assert [r.label for r in cmp.runs] == ["#1 run-0", "#2 run-1"]
    html = panel.comparison_view.value
    assert "cell 1" in html  # the parameters cell, counted from 1 like JupyterLab does
    assert "cell 2 · figure 1" in html


def test_inline_twin_of_a_sweep_with_a_failed_run_and_system_measures(tmp_path):
    """``%nbtrack panel`` as the panel shows the same runs: a sweep's own run is no row and no
    count, the system measures come last and win no star, the picker's toggles compare oldest
    first whatever the order picked, and a failed run says why with its cell's number."""
    import re
    from datetime import datetime, timedelta, timezone

    pytest = __import__("pytest")
    pytest.importorskip("ipywidgets")
    from nbtrack.query.render import list_time
    from nbtrack.widgets import RunsPanel

    project = make_project(tmp_path / "p", (0.1, 0.01))
    client = open_client(project.tracking_uri)
    for run_id, memory in zip(project.run_ids, (210.0, 250.0), strict=True):
        client.log_metric(run_id, "system/kernel_memory_mb", memory - 50, step=0)
        client.log_metric(run_id, "system/kernel_memory_mb", memory, step=1)
    failed = failed_run(project)
    sweep = client.create_run(project.experiment_id, run_name="sweep 20260101-1",
                              tags={tags.SWEEP_ID: "20260101-1", tags.SWEEP_ROLE: "parent",
                                    tags.NOTEBOOK: project.notebook})
    client.set_terminated(sweep.info.run_id, "FAILED")

    panel = RunsPanel(project.notebook_path)
    assert panel.title.value.endswith(" · 3 runs")  # the sweep's own run is not counted
    assert sweep.info.run_id not in panel.shown_run_ids
    assert [panel.chips[r].description for r in panel.shown_run_ids] == ["#3", "#2", "#1"]
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", panel.table.value)
    assert headers[-3:] == ["accuracy", "val_loss", "system/kernel_memory_mb"]
    assert "sweep 20260101-1" not in panel.table.value
    assert "· val_loss " in panel.chips[project.run_ids[0]].tooltip  # a measure is never the picker's metric

    panel.chips[failed].value = True  # the newest picked first …
    panel.chips[project.run_ids[0]].value = True
    panel.compare_button.click()
    cmp = panel.comparison
    assert cmp is not None and [r.run_id for r in cmp.runs] == [project.run_ids[0], failed]  # … shown oldest first
    html = panel.comparison_view.value
    assert ">finished<" in html and ">failed<" in html and "FINISHED" not in html
    assert "Why it failed" in html
    assert "failed in cell 4" in html and "ValueError</code> lr too large" in html
    system = html.split("<h4>System</h4>", 1)[1].split("</table>", 1)[0]
    assert ">kernel_memory_mb<" in system and ">210<" in system
    assert "★" not in system
    metrics = html.split("<h4>Metrics</h4>", 1)[1].split("</table>", 1)[0]
    assert "system/" not in metrics and "★" in metrics
    params = html.split("<h4>Params</h4>", 1)[1]
    assert params.index("lr ≠") < params.index(">depth<")  # the param that differs first

    now = datetime(2026, 3, 3, 14, 3, tzinfo=timezone.utc).astimezone()
    assert list_time(now, now) == now.strftime("%H:%M")
    earlier = now - timedelta(days=2)
    assert list_time(earlier, now) == f"{earlier:%b} {earlier.day} {earlier:%H:%M}"
    assert list_time(None, now) == ""
