"""nbtrack retrain end to end: a notebook that fits a scikit-learn model on a Delta table, run by a
real kernel; the table appended to with deltalake; the retrain's run, report, registry alias and
lake row as a user finds them.

One champion run is made per module (a papermill execution) and shared: every test starts from
whatever the table and the runs are when it starts (each leaves the inputs unchanged since the
latest run), so the tests hold in any order.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import client_for, stop_daemons, wait_for, write_notebook

from nbtrack.cli.main import main

pa = pytest.importorskip("pyarrow")
deltalake = pytest.importorskip("deltalake")
from deltalake import DeltaTable, write_deltalake  # noqa: E402

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
CELLS = [
    "%load_ext nbtrack",
    ("C = 1.0\nfit = True", ["parameters"]),
    "import nbtrack\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "df = nbtrack.read_delta('data/train')\n"
    "if fit:\n"
    "    clf = LogisticRegression(C=C).fit(df[['x']].values, df['y'].values)\n"
    "val_acc = float(df['quality'].mean())",
]


def rows(quality: list[float]) -> Any:
    n = len(quality)
    return pa.table({"x": [float(i % 4) for i in range(n)], "y": [int(i % 4 >= 2) for i in range(n)],
                     "quality": quality})


def finished_runs(root: Path) -> list[Any]:
    """The notebook's finished runs, newest first (as the store has them)."""
    client = client_for(root)
    experiment = client.get_experiment_by_name("train.ipynb")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    return [r for r in runs if r.info.status == "FINISHED"]


def all_run_ids(root: Path) -> set[str]:
    client = client_for(root)
    return {r.info.run_id for e in client.search_experiments() for r in client.search_runs([e.experiment_id])}


def retrain_rows(root: Path) -> list[dict[str, Any]]:
    table = root / ".nbtrack" / "lake" / "retrains"
    if not table.exists():
        return []
    return sorted(DeltaTable(str(table)).to_pyarrow_table().to_pylist(), key=lambda r: r["t"])


def input_versions(run: Any) -> dict[str, int]:
    return {json.loads(i.dataset.source)["path"]: json.loads(i.dataset.source)["version"]
            for i in run.inputs.dataset_inputs}


def outputs(root: Path) -> list[str]:
    folder = root / ".nbtrack" / "outputs"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Any:
    """A project whose notebook ran once (papermill, a real kernel) on data/train v0."""
    root = tmp_path_factory.mktemp("retrain") / "proj"
    (root / ".nbtrack").mkdir(parents=True)
    shutil.copy(empty_store, root / ".nbtrack" / "mlflow.db")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("NBTRACK_", "MLFLOW_", "JPY_SESSION")):
                mp.delenv(name)
        mp.setenv("NBTRACK_DAEMON_IDLE", "3")
        write_notebook(root / "train.ipynb", CELLS)
        write_deltalake(str(root / "data" / "train"), rows([0.8, 0.8, 0.8, 0.8]))
        subprocess.run([sys.executable, "-m", "papermill", "train.ipynb", "out.ipynb", "--no-progress-bar"],
                       cwd=root, check=True, capture_output=True)
        assert wait_for(lambda: [r for r in finished_runs(root) if input_versions(r)], timeout=120)
        yield root
        stop_daemons(root.parent)


def table_of(root: Path) -> str:
    return str(root / "data" / "train")


def test_unchanged_inputs_create_nothing(trained, capsys):
    nb = trained / "train.ipynb"
    champion = finished_runs(trained)[0].info.run_id
    version = DeltaTable(table_of(trained)).version()
    runs, lake, folders = all_run_ids(trained), retrain_rows(trained), outputs(trained)

    assert main(["retrain", str(nb), "--metric", "val_acc"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"inputs unchanged since run {champion} (data/train v{version}); nothing to retrain\n"
    assert captured.err == ""
    assert main(["retrain", str(nb), "--metric", "val_acc", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["outcome"], answer["champion"], answer["challenger"], answer["promoted"]) == (
        "unchanged", champion, None, False)
    assert answer["champion_inputs"] == {table_of(trained): version} and answer["direction"] == "max"
    import nbtrack

    decision = nbtrack.retrain(str(nb), "val_acc")
    assert (decision.outcome, decision.champion, decision.challenger) == ("unchanged", champion, None)
    assert decision.champion_inputs == {table_of(trained): version}
    assert all_run_ids(trained) == runs and retrain_rows(trained) == lake and outputs(trained) == folders


def test_an_append_retrains_once_on_the_new_version(trained, capsys):
    nb = trained / "train.ipynb"
    champion = finished_runs(trained)[0]
    before = DeltaTable(table_of(trained)).version()
    runs, lake = all_run_ids(trained), retrain_rows(trained)
    write_deltalake(table_of(trained), rows([1.0] * 4), mode="append")

    assert main(["retrain", str(nb), "--metric", "val_acc", "--no-progress"]) == 0
    out = capsys.readouterr().out
    new = all_run_ids(trained) - runs
    assert len(new) == 1
    challenger = client_for(trained).get_run(new.pop())
    cid, chid = challenger.info.run_id, champion.info.run_id
    assert challenger.info.status == "FINISHED"
    assert input_versions(challenger) == {table_of(trained): before + 1}  # it read the new version
    assert challenger.data.tags["nbtrack.retrain_of"] == chid
    assert challenger.data.tags["nbtrack.origin"] == "retrain"
    assert json.loads(challenger.data.tags["nbtrack.retrain.trigger"]) == [
        {"table": table_of(trained), "label": "data/train", "champion": before, "current": before + 1}]
    old, value = champion.data.metrics["val_acc"], challenger.data.metrics["val_acc"]
    assert value > old  # four rows of 1.0 raised the mean

    lines = out.splitlines()
    assert lines[0] == "champion vs challenger on val_acc"
    table = {line.split()[0]: line.split()[1:] for line in lines[2:-1]}
    assert lines[1].split() == ["champion", "challenger"]
    assert table["run"] == [chid, cid]
    assert table["status"] == ["FINISHED", "FINISHED"]
    assert table["val_acc"] == ["(max)", str(old), str(value)]
    assert table["data/train"] == [f"v{before}", f"v{before + 1}"]
    assert lines[-1] == (f"retrained: challenger {cid} read data/train v{before + 1} (champion {chid} read "
                         f"v{before}); val_acc {value:.6g} vs {old:.6g}, higher is better: better, "
                         "not promoted (no --register)")

    added = retrain_rows(trained)[len(lake):]
    assert len(added) == 1
    row = added[0]
    assert (row["notebook"], row["metric"], row["champion"], row["challenger"], row["status"]) == (
        "train.ipynb", "val_acc", chid, cid, "FINISHED")
    assert json.loads(row["champion_inputs"]) == {table_of(trained): before}
    assert json.loads(row["challenger_inputs"]) == {table_of(trained): before + 1}
    assert (row["champion_value"], row["challenger_value"]) == (old, value)
    assert (row["better"], row["promoted"], row["registered"]) == (True, False, "")

    # The run list (nbtrack runs, the panel's rows) names the champion and what moved.
    assert main(["runs", str(nb), "--json"]) == 0
    listed = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed[cid]["retrain_of"] == chid and listed[cid]["origin"] == "retrain"
    assert json.loads(listed[cid]["retrain_trigger"])[0]["current"] == before + 1
    from nbtrack.server.service import NbtrackService

    rows_ = {r["run_id"]: r for r in NbtrackService(root_dir=str(trained)).runs("train.ipynb")["runs"]}
    assert rows_[cid]["label"] == f"retrain of #{rows_[chid]['number']}"  # what the sidebar shows
    assert rows_[cid]["retrain_trigger"] == listed[cid]["retrain_trigger"]

    # The challenger is now the latest finished run: nothing moved since it.
    assert main(["retrain", str(nb), "--metric", "val_acc"]) == 0
    assert capsys.readouterr().out == (
        f"inputs unchanged since run {cid} (data/train v{before + 1}); nothing to retrain\n")


def _alias_holder(root: Path, name: str) -> tuple[str, str]:
    found = client_for(root).get_model_version_by_alias(name, "champion")
    return found.run_id, str(found.version)


def test_register_promotes_only_a_better_model(trained, capsys):
    nb = trained / "train.ipynb"
    champion = next(r for r in finished_runs(trained) if "nbtrack.models" in r.data.tags)  # has a model
    chid, old = champion.info.run_id, champion.data.metrics["val_acc"]
    assert main(["register", chid, "--name", "churn", "--alias", "champion", "--project", str(trained)]) == 0
    assert capsys.readouterr().out == "models:/churn/1\n"

    # Worse data: as many rows of quality 0 as the table holds halve the mean.
    data = DeltaTable(table_of(trained)).to_pyarrow_table()
    write_deltalake(table_of(trained), rows([0.0] * data.num_rows), mode="append")
    runs = all_run_ids(trained)
    assert main(["retrain", str(nb), "--metric", "val_acc", "--register", "churn", "--no-progress"]) == 0
    worse = client_for(trained).get_run((all_run_ids(trained) - runs).pop())
    assert worse.data.metrics["val_acc"] < old
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        "not better, registered as models:/churn/2; the champion stays")
    assert _alias_holder(trained, "churn") == (chid, "1")
    assert client_for(trained).get_model_version("churn", "2").run_id == worse.info.run_id
    # The worse challenger already read today's data: the next check does not retrain again.
    runs, lake = all_run_ids(trained), retrain_rows(trained)
    assert main(["retrain", str(nb), "--metric", "val_acc", "--register", "churn"]) == 0
    assert capsys.readouterr().out == (
        f"inputs unchanged since retrain {worse.info.run_id} of run {chid} "
        f"(data/train v{DeltaTable(table_of(trained)).version()}); nothing to retrain\n")
    assert all_run_ids(trained) == runs and retrain_rows(trained) == lake

    # Better data: enough rows of quality 1 to beat the champion's mean; the champion is still
    # the alias' run (not the latest finished one, the worse challenger).
    data = DeltaTable(table_of(trained)).to_pyarrow_table()
    total, n = sum(data.column("quality").to_pylist()), data.num_rows
    k = int((old * n - total) / (1 - old)) + 2
    write_deltalake(table_of(trained), rows([1.0] * k), mode="append")
    runs = all_run_ids(trained)
    assert main(["retrain", str(nb), "--metric", "val_acc", "--register", "churn", "--no-progress"]) == 0
    better = client_for(trained).get_run((all_run_ids(trained) - runs).pop())
    assert better.data.tags["nbtrack.retrain_of"] == chid
    assert better.data.metrics["val_acc"] > old
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        "better, promoted: models:/churn/3 is the champion")
    assert _alias_holder(trained, "churn") == (better.info.run_id, "3")
    last = retrain_rows(trained)[-2:]
    assert [(r["promoted"], r["registered"]) for r in last] == [(False, "models:/churn/2"),
                                                               (True, "models:/churn/3")]
    # Now the alias' run read today's data.
    assert main(["retrain", str(nb), "--metric", "val_acc", "--register", "churn"]) == 0
    assert capsys.readouterr().out.startswith(f"inputs unchanged since run {better.info.run_id} ")


def test_a_challenger_without_a_model_is_reported_then_refused(trained, capsys):
    nb = trained / "train.ipynb"
    write_deltalake(table_of(trained), rows([1.0] * 2), mode="append")
    runs, lake = all_run_ids(trained), retrain_rows(trained)
    code = main(["retrain", str(nb), "--metric", "val_acc", "--register", "bare", "-p", "fit=False",
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 3
    new = all_run_ids(trained) - runs
    assert len(new) == 1
    cid = new.pop()
    assert client_for(trained).get_run(cid).info.status == "FINISHED"
    lines = captured.out.splitlines()
    assert lines[0] == "champion vs challenger on val_acc"  # the report first...
    assert f"not registered (run {cid[:8]} has no model: " in lines[-1]
    assert lines[-1].endswith("; the champion stays")
    assert captured.err == (  # ...then why nothing was registered
        f"nbtrack retrain: run {cid[:8]} has no model: a run logs one when a top-level variable holds a "
        "fitted model at its end, or with nbtrack.log_model(model)\n")
    assert client_for(trained).search_registered_models("name = 'bare'") == []
    added = retrain_rows(trained)[len(lake):]
    assert [(r["challenger"], r["promoted"], r["registered"]) for r in added] == [(cid, False, "")]


def test_a_failing_challenger_exits_5_and_is_not_retried_on_the_same_data(trained, capsys):
    nb = trained / "train.ipynb"
    champion = finished_runs(trained)[0].info.run_id
    write_deltalake(table_of(trained), rows([1.0] * 2), mode="append")
    now = DeltaTable(table_of(trained)).version()
    runs, lake = all_run_ids(trained), retrain_rows(trained)
    # LogisticRegression refuses C=-1: the challenger's cell fails (fitting, whatever the champion did)
    bad = ["-p", "C=-1.0", "-p", "fit=True"]
    assert main(["retrain", str(nb), "--metric", "val_acc", *bad, "--no-progress"]) == 5
    lines = capsys.readouterr().out.splitlines()
    new = all_run_ids(trained) - runs
    assert len(new) == 1
    cid = new.pop()
    assert client_for(trained).get_run(cid).info.status == "FAILED"
    assert lines[3].split() == ["status", "FINISHED", "FAILED"]
    assert lines[-1].startswith(f"retrained: challenger {cid} read data/train v{now} (champion {champion} "
                                f"read v{now - 1}); it ended FAILED (")
    assert "The 'C' parameter of LogisticRegression must be a float in the range (0.0, inf]" in lines[-1]
    assert lines[-1].endswith(": the champion stays")
    added = retrain_rows(trained)[len(lake):]
    assert [(r["challenger"], r["status"], r["better"], r["promoted"]) for r in added] == [
        (cid, "FAILED", False, False)]
    # The same check again: that retrain already failed on today's data with these params.
    assert main(["retrain", str(nb), "--metric", "val_acc", *bad]) == 0
    assert capsys.readouterr().out == (f"inputs unchanged since retrain {cid} of run {champion} "
                                       f"(data/train v{now}; that retrain failed); nothing to retrain\n")
    # With its own params the champion is retrained on today's data.
    assert main(["retrain", str(nb), "--metric", "val_acc", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("retrained: challenger ")
    assert len(all_run_ids(trained) - runs) == 2


def test_watch_notices_an_append_within_two_intervals(trained):
    nb = trained / "train.ipynb"
    interval = 3.0
    runs, lake = all_run_ids(trained), retrain_rows(trained)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbtrack", "retrain", str(nb), "--metric", "val_acc",
         "--watch", str(interval), "--no-progress"],
        cwd=trained, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=60)
        assert first.rstrip().endswith("; nothing to retrain") and " inputs unchanged since run " in first
        appended = time.time()
        write_deltalake(table_of(trained), rows([1.0] * 2), mode="append")
        seen = [lines.get(timeout=120)]
        while "retrained: challenger" not in seen[-1]:
            seen.append(lines.get(timeout=120))
        status = [line for line in seen if STAMP.match(line)]  # the report's table comes first
        assert status[-1] is seen[-1] and all("nothing to retrain" in line for line in status[:-1])
        after = lines.get(timeout=30)  # the next check: the challenger read today's data
        assert "inputs unchanged since run" in after
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    assert "stopped watching after" in proc.stderr.read()
    assert len(all_run_ids(trained) - runs) == 1
    added = retrain_rows(trained)[len(lake):]
    assert len(added) == 1
    # The check that retrained began at most two intervals after the append (its row's time).
    assert added[0]["t"].timestamp() - appended <= 2 * interval


# -- bad input: one line each, a documented exit code, nothing created -----------------------------

def _fabricated_champion(project: Path, table: Path | None, version: int | None) -> str:
    """A finished run of train.ipynb with a val_acc, that recorded ``table`` at ``version`` the way
    the delivery process records a read_delta (no kernel: only what the check reads matters)."""
    from nbtrack.sinks.mlflow import _log_input

    write_notebook(project / "train.ipynb", CELLS)
    client = client_for(project)
    experiment = client.create_experiment("train.ipynb")
    run = client.create_run(experiment, tags={"nbtrack.notebook": "train.ipynb"}).info.run_id
    client.log_metric(run, "val_acc", 0.8)
    if table is not None:
        _log_input(client, run, {"table_uri": str(table), "version": version, "schema_hash": "h", "rows": 4})
    client.set_terminated(run, "FINISHED")
    return run


def _fails(project: Path, capsys, code: int, args: list[str] | None = None) -> str:
    runs = all_run_ids(project)
    assert main(["retrain", str(project / "train.ipynb"), "--metric", "val_acc", *(args or [])]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("nbtrack retrain: ")
    assert all_run_ids(project) == runs
    assert retrain_rows(project) == [] and outputs(project) == []
    return captured.err


def test_a_notebook_without_runs(project, capsys):
    write_notebook(project / "train.ipynb", CELLS)
    err = _fails(project, capsys, 3)
    assert "train.ipynb has no runs yet" in err
    assert "no notebook at" in _fails_missing(project, capsys)


def _fails_missing(project: Path, capsys) -> str:
    assert main(["retrain", str(project / "nothere.ipynb"), "--metric", "val_acc"]) == 3
    return capsys.readouterr().err


def test_unknown_metric_and_no_recorded_inputs(project, capsys):
    run = _fabricated_champion(project, None, None)
    err = _fails(project, capsys, 2, ["--metric", "auc"])
    assert err == (f"nbtrack retrain: unknown metric 'auc': the champion, run {run}, did not log it; "
                   "it logged val_acc\n")
    err = _fails(project, capsys, 2)
    assert err.startswith(f"nbtrack retrain: run {run} recorded no Delta inputs: retrain needs the "
                          "notebook to read its data with nbtrack.read_delta(path)")


def test_a_deleted_table(project, capsys):
    table = project / "data" / "train"
    write_deltalake(str(table), rows([0.8] * 4))
    run = _fabricated_champion(project, table, 0)
    shutil.rmtree(table)
    err = _fails(project, capsys, 3)
    assert err == (f"nbtrack retrain: input data/train (read by run {run[:8]} at v0) is gone: no Delta "
                   f"table at {table}\n")


def test_a_recreated_table(project, capsys):
    table = project / "data" / "train"
    write_deltalake(str(table), rows([0.8] * 4))
    write_deltalake(str(table), rows([0.9] * 4), mode="append")
    _fabricated_champion(project, table, 1)
    shutil.rmtree(table)
    write_deltalake(str(table), rows([0.8] * 4))
    assert "was deleted and written anew" in _fails(project, capsys, 3)


def test_a_table_vacuumed_past_the_recorded_version(project, capsys):
    table = project / "data" / "train"
    write_deltalake(str(table), rows([0.8] * 4))
    run = _fabricated_champion(project, table, 0)
    write_deltalake(str(table), rows([0.9] * 4), mode="overwrite")
    removed = DeltaTable(str(table)).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert removed  # v0's file is gone
    err = _fails(project, capsys, 3)
    assert err.startswith(f"nbtrack retrain: input data/train (read by run {run[:8]} at v0) no longer has "
                          "v0 (vacuumed or its log cleaned up)")


def test_a_catalog_table_without_spark(project, capsys):
    run = _fabricated_champion(project, None, None)
    from nbtrack.sinks.mlflow import _log_input

    _log_input(client_for(project), run, {"table_uri": "main.sales.orders", "version": 3, "schema_hash": "h"})
    assert _fails(project, capsys, 2) == (
        f"nbtrack retrain: input main.sales.orders (read by run {run[:8]} at v3) is a catalog table: its "
        "version is read through Spark; run where a Spark session is live (a Databricks job), or with "
        "--backend spark --spark-master URL\n")


def test_an_earlier_challenger_on_todays_data_counts_with_the_same_params(project, capsys):
    from nbtrack.sinks.mlflow import _log_input

    table = project / "data" / "train"
    write_deltalake(str(table), rows([0.8] * 4))
    champion = _fabricated_champion(project, table, 0)
    write_deltalake(str(table), rows([0.1] * 4), mode="append")
    client = client_for(project)
    client.log_param(champion, "C", "1.0")
    client.create_registered_model("churn")
    version = client.create_model_version("churn", source=f"runs:/{champion}/clf", run_id=champion)
    client.set_registered_model_alias("churn", "champion", version.version)
    experiment = client.get_run(champion).info.experiment_id
    earlier = client.create_run(experiment, tags={"nbtrack.retrain_of": champion}).info.run_id
    client.log_param(earlier, "C", "1.0")
    _log_input(client, earlier, {"table_uri": str(table), "version": 1, "schema_hash": "h", "rows": 8})
    client.set_terminated(earlier, "FINISHED")

    assert main(["retrain", str(project / "train.ipynb"), "--metric", "val_acc", "--register", "churn"]) == 0
    assert capsys.readouterr().out == (f"inputs unchanged since retrain {earlier} of run {champion} "
                                       "(data/train v1); nothing to retrain\n")
    # Other params: that challenger does not count, so the champion is re-executed (here it has no
    # notebook snapshot to execute: refused before any run is made).
    err = _fails(project, capsys, 3, ["--register", "churn", "-p", "C=2.0"])
    assert f"run {champion} has no notebook snapshot" in err


def test_watch_stops_at_a_first_check_that_fails(project, capsys):
    write_notebook(project / "train.ipynb", CELLS)
    assert "has no runs yet" in _fails(project, capsys, 3, ["--watch", "1"])
    assert main(["retrain", "train.ipynb", "--metric", "val_acc", "--watch", "0"]) == 2
    assert "--watch takes a number of seconds above 0" in capsys.readouterr().err
