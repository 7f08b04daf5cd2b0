"""Re-runs end to end: a run's notebook snapshot executed again by a real kernel, the new run
linked to the original, and every metric reported as equal, changed, missing or new."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import client_for, finished_runs, user_metrics, write_notebook

from nbtrack.batch.rerun import rerun
from nbtrack.batch.sweep import sweep
from nbtrack.cli.main import main
from nbtrack.errors import NotFound, UsageProblem

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = Path(__file__).parent / "notebooks_for_tests"


@pytest.mark.kernel
def test_rerun_reproduces_the_seeded_quickstart(project, capsys):
    notebook = project / "quickstart.ipynb"
    notebook.write_bytes((REPO / "nbtrack" / "examples" / "quickstart.ipynb").read_bytes())
    subprocess.run([sys.executable, "-m", "papermill", "quickstart.ipynb", "out.ipynb",
                    "-p", "n_estimators", "30", "--no-progress-bar"],
                   cwd=project, check=True, capture_output=True)
    (original,) = finished_runs(project, timeout=90, statuses=("FINISHED", "FAILED"))
    assert original.info.status == "FINISHED" and original.data.params["n_estimators"] == "30"
    assert len(original.data.metrics) >= 6

    assert main(["rerun", original.info.run_id]) == 0
    out = capsys.readouterr().out
    assert f"{len(user_metrics(original))} equal" in out and "changed" not in out  # system/* aside
    client = client_for(project)
    reruns = client.search_runs([original.info.experiment_id],
                                f"tags.`nbtrack.rerun_of` = '{original.info.run_id}'")
    assert len(reruns) == 1
    again = reruns[0]
    assert again.info.status == "FINISHED"
    assert again.data.params == original.data.params  # same values: 30 injected again, typed
    assert user_metrics(again) == user_metrics(original)  # bit for bit (system/* is what each run cost)
    assert again.data.tags["nbtrack.origin"] == "rerun"


@pytest.mark.kernel
def test_snapshot_versus_current_notebook(project):
    notebook = project / "seeded.ipynb"
    notebook.write_bytes((NOTEBOOKS / "seeded.ipynb").read_bytes())
    frame = sweep(notebook, {"seed": [3]})
    original = frame.iloc[0]
    assert original["status"] == "FINISHED"
    # The notebook changes after the run: the snapshot still reproduces the run...
    nb = json.loads(notebook.read_text())
    nb["cells"][2]["source"] = "mean_loss = sum(xs) / n + 1\nmax_score = max(xs)"
    notebook.write_text(json.dumps(nb))
    events: list[dict] = []
    same = rerun(original["run_id"], progress=events.append)
    assert set(same.attrs["report"]["verdict"]) == {"equal"}
    assert same.iloc[0]["params.seed"] == 3  # papermill's injected value, from the sweep child
    cells = [e for e in events if "cell" in e]
    assert [e["cell"] for e in cells] == list(range(1, cells[0]["cells"] + 1))
    assert events[-1]["state"] == "done" and events[-1]["status"] == "FINISHED"
    assert all(e["run_id"] == same.iloc[0]["run_id"] for e in events if "run_id" in e)
    # ...and --current runs the file as it is now
    now = rerun(original["run_id"], current=True).attrs["report"].set_index("metric")
    assert now.loc["mean_loss", "verdict"] == "changed"
    assert now.loc["mean_loss", "delta"] == pytest.approx(1.0)
    assert now.loc["max_score", "verdict"] == "equal"
    # overrides: a new value, reported as a change, with the run's own params
    other = rerun(original["run_id"], {"n": 50})
    row = other.iloc[0]
    assert row["params.n"] == 50 and row["params.seed"] == 3
    assert row["rerun_of"] == original["run_id"] and row["status"] == "FINISHED"
    assert "changed" in set(other.attrs["report"]["verdict"])


def test_no_store_is_not_created_by_a_rerun(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["rerun", "0123456789abcdef0123456789abcdef"]) == 3
    assert "no nbtrack store" in capsys.readouterr().err
    assert not (tmp_path / ".nbtrack").exists()  # nothing half-written


def test_unknown_runs_and_missing_snapshots(project, capsys):
    from nbtrack.project import Project
    from nbtrack.store import open_client

    client = open_client(Project(project).default_tracking_uri)
    experiment = client.create_experiment("elsewhere.ipynb")
    bare = client.create_run(experiment, tags={"nbtrack.notebook": "elsewhere.ipynb"}).info.run_id
    assert main(["rerun", "0123456789abcdef0123456789abcdef"]) == 3
    assert "no run" in capsys.readouterr().err
    assert main(["rerun", bare]) == 3
    assert "no notebook snapshot" in capsys.readouterr().err
    with pytest.raises(NotFound, match="not at"):
        rerun(bare, current=True)
    assert main(["rerun", bare, "-p", "x"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err
    assert len(client.search_runs([experiment])) == 1  # no half-made re-run


@pytest.mark.kernel
def test_pin_data_reads_the_versions_the_original_read(project):
    import pandas as pd
    from deltalake import write_deltalake

    table = project / "data" / "points"
    write_deltalake(str(table), pd.DataFrame({"v": [1.0, 2.0, 3.0]}))
    write_notebook(project / "reads.ipynb", [
        ("scale = 1.0", ["parameters"]),
        "import nbtrack\n\ndf = nbtrack.read_delta('data/points')\nmean_score = float(df.v.mean()) * scale"])
    original = sweep(project / "reads.ipynb", {"scale": [1.0]}).iloc[0]
    assert original["metrics.mean_score"] == 2.0
    write_deltalake(str(table), pd.DataFrame({"v": [10.0]}), mode="append")  # version 1

    pinned = rerun(original["run_id"], pin_data=True)
    assert set(pinned.attrs["report"]["verdict"]) == {"equal"}
    latest = rerun(original["run_id"]).attrs["report"].set_index("metric")
    assert latest.loc["mean_score", "rerun"] == 4.0
    assert latest.loc["mean_score", "verdict"] == "changed"


def _run_with_snapshot(root: Path, injected: dict) -> tuple[object, str, str]:
    """A run as a papermill execution leaves it: notebook snapshot, output notebook whose
    metadata records the injected parameters (anyone with access to the store can edit them)."""
    import nbformat

    from nbtrack.project import Project
    from nbtrack.store import open_client

    nb = write_notebook(root / "nb.ipynb", [("x = 1", ["parameters"]), "open('executed', 'w').close()"])
    out = root / "papermill_output"
    out.mkdir()
    nb.metadata["papermill"] = {"parameters": injected}
    nbformat.write(nb, out / "nb.ipynb")
    client = open_client(Project(root).default_tracking_uri)
    experiment = client.create_experiment("nb.ipynb")
    run_id = client.create_run(experiment, tags={"nbtrack.notebook": "nb.ipynb"}).info.run_id
    client.log_artifact(run_id, str(root / "nb.ipynb"), "notebook")
    client.log_artifact(run_id, str(out / "nb.ipynb"), "notebook/papermill_output")
    client.set_terminated(run_id)
    return client, experiment, run_id


def test_stored_parameter_names_are_checked_before_anything_runs(project):
    client, experiment, run_id = _run_with_snapshot(
        project, {"x = 2\nopen('pwned', 'w').close()\nzz": 1})
    with pytest.raises(UsageProblem, match="is not a valid parameter name"):
        rerun(run_id)
    assert len(client.search_runs([experiment])) == 1  # no re-run created
    assert not (project / "pwned").exists() and not (project / "executed").exists()


def test_an_empty_override_is_refused_and_creates_nothing(project, capsys):
    client, experiment, run_id = _run_with_snapshot(project, {"x": 2})
    with pytest.raises(UsageProblem, match="parameter x: empty value, but the parameters cell "
                                           "sets x = 1"):
        rerun(run_id, {"x": ""})
    assert main(["rerun", run_id[:8], "-p", "x="]) == 2
    assert "empty value (an unset shell variable?)" in capsys.readouterr().err
    assert len(client.search_runs([experiment])) == 1
    assert not (project / "executed").exists()


def test_rerun_takes_a_short_id(project, capsys):
    from nbtrack.store import open_client

    client = open_client(f"sqlite:///{project / '.nbtrack' / 'mlflow.db'}")
    experiment = client.create_experiment("elsewhere.ipynb")
    bare = client.create_run(experiment, tags={"nbtrack.notebook": "elsewhere.ipynb"}).info.run_id
    assert main(["rerun", bare[:8]]) == 3  # found: it is the snapshot that is missing
    assert f"run {bare} has no notebook snapshot" in capsys.readouterr().err
    other = "0" if bare[0] != "0" else "1"
    assert main(["rerun", other * 8]) == 3
    assert f"no run {other * 8} in sqlite:///" in capsys.readouterr().err
    assert main(["rerun", "not-an-id"]) == 2
    assert "'not-an-id' is not a run id" in capsys.readouterr().err
