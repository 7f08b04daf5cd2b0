"""Capture semantics in a real InteractiveShell, delivered into a real SQLite MLflow store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from helpers import all_runs, client_for, run_notebook_cells, session_of, user_metrics, write_notebook

import nbtrack

PNG_CELL = (
    "import matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nplt.show()"
)


def load(shell, project: Path, nb_name: str = "nb.ipynb", monkeypatch=None):
    shell.run_cell("%load_ext nbtrack")
    return session_of(shell)


@pytest.fixture
def notebook(project: Path, monkeypatch: pytest.MonkeyPatch):
    nb = write_notebook(project / "notebooks" / "train.ipynb", [
        "%load_ext nbtrack",
        ("lr = 0.1\nepochs = 3\nlayers = [64, 32]\nname = 'base'", ["parameters"]),
        "import numpy as np\nval_acc = np.float64(0.8)\ntest_size = 0.25\nbest_loss = np.array(0.5)\n"
        "flag_acc = True\nn_error = 3",
        PNG_CELL,
    ])
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/train.ipynb")  # as Jupyter server sets it
    return nb


def delivered_runs(project: Path) -> list:
    assert nbtrack.flush(30), "delivery did not catch up"
    return sorted(all_runs(project), key=lambda r: r.info.start_time)


def history(project: Path, run, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client_for(project).get_metric_history(run.info.run_id, key)]


def artifacts(project: Path, run, path: str | None = None) -> list[str]:
    client = client_for(project)
    found = []
    for item in client.list_artifacts(run.info.run_id, path):
        found += artifacts(project, run, item.path) if item.is_dir else [item.path]
    return found


def test_notebook_run_records_params_metrics_figures_and_cells(shell, project, notebook):
    run_notebook_cells(shell, notebook)
    (run,) = delivered_runs(project)
    client = client_for(project)
    assert client.get_experiment(run.info.experiment_id).name == "notebooks/train.ipynb"
    assert run.data.params == {"lr": "0.1", "epochs": "3", "layers": "[64, 32]", "name": "base"}
    # metric words, split on "_": val_acc, best_loss (0-d array), n_error; not test_size, not bools
    assert set(user_metrics(run)) == {"val_acc", "best_loss", "n_error"}
    assert run.data.metrics["best_loss"] == 0.5
    figures = [a for a in artifacts(project, run) if a.startswith("figures/")]
    fig_cell = notebook.cells[3].id
    assert figures == [f"figures/4-{fig_cell}-0.png"]
    assert run.data.tags["nbtrack.notebook"] == "notebooks/train.ipynb"
    assert run.data.tags["nbtrack.cells"] == "4"
    assert "nbtrack/cells.json" in artifacts(project, run)
    nbtrack.unload_ipython_extension(shell)
    run = client_for(project).get_run(run.info.run_id)
    assert nbtrack.flush(1) is False  # session gone: flush is a harmless no-op
    from helpers import wait_for

    assert wait_for(lambda: client_for(project).get_run(run.info.run_id).info.status == "FINISHED")
    assert "notebook/train.ipynb" in artifacts(project, run)
    assert "environment/requirements.txt" in artifacts(project, run)


def test_rerunning_cells_keeps_the_run_and_steps_metrics(shell, project, notebook):
    run_notebook_cells(shell, notebook)
    run_notebook_cells(shell, notebook, [1, 2])  # same params again, metrics again
    (run,) = delivered_runs(project)
    assert history(project, run, "val_acc") == [(0, 0.8), (1, 0.8)]


def test_changed_parameters_start_a_new_run(shell, project, notebook):
    run_notebook_cells(shell, notebook)
    shell.run_cell("lr = 0.5\nepochs = 3\nlayers = [64, 32]\nname = 'base'", cell_id=notebook.cells[1].id)
    run_notebook_cells(shell, notebook, [2])
    first, second = delivered_runs(project)
    assert first.data.params["lr"] == "0.1" and second.data.params["lr"] == "0.5"
    assert first.info.status == "FINISHED"
    assert second.data.metrics["val_acc"] == 0.8


def test_log_api_steps_nan_inf_and_log_params(shell, project, notebook):
    run_notebook_cells(shell, notebook, [0])
    shell.run_cell("import nbtrack\nfor i in range(3):\n    nbtrack.log(loss=1.0 / (i + 1))")
    shell.run_cell("nbtrack.log(step=10, loss=float('nan'), gap=float('inf'))")
    shell.run_cell("nbtrack.log_params(batch=32, opt='adam')")
    (run,) = delivered_runs(project)
    losses = history(project, run, "loss")
    assert [s for s, _ in losses] == [0, 1, 2, 10]
    assert math.isnan(losses[-1][1])
    assert history(project, run, "gap")[0][1] > 1e300  # MLflow stores inf as the largest float
    assert run.data.params == {"batch": "32", "opt": "adam"}


def test_log_params_with_a_changed_value_starts_a_new_run(shell, project, notebook):
    run_notebook_cells(shell, notebook, [0])
    shell.run_cell("import nbtrack\nnbtrack.log_params(batch=32, opt='adam')")
    shell.run_cell("nbtrack.log_params(batch=64)")
    first, second = delivered_runs(project)
    assert first.data.params == {"batch": "32", "opt": "adam"}
    assert second.data.params == {"batch": "64", "opt": "adam"}


def test_bad_inputs_warn_and_never_raise(shell, project, notebook, capsys):
    run_notebook_cells(shell, notebook, [0])
    cells = [
        "import nbtrack\nnbtrack.log(**{'bad!name': 1.0})",
        "nbtrack.log(acc='high')",
        "nbtrack.log_params({1: 'one', 'huge': 'x' * 10000, 'obj': object()})",
        "nbtrack.log_figure(object())",
        "import threading\nlock_score = threading.Lock()",
    ]
    for source in cells:
        result = shell.run_cell(source)
        assert result.success, source
    err = capsys.readouterr().err
    assert "metric skipped: name 'bad!name' may only contain" in err
    assert "metric acc skipped: str is not a number" in err
    assert "param name 1 is not a string" in err
    assert "logging a figure failed" in err
    (run,) = delivered_runs(project)
    assert len(run.data.params["huge"]) == 6000 and run.data.params["1"] == "one"
    assert "lock_score" not in run.data.metrics


def test_each_bad_value_warns_under_its_own_cell_and_keeps_the_good_ones(shell, project, capsys):
    nb = write_notebook(project / "nb.ipynb", [
        "%load_ext nbtrack", ("note = '" + "x" * 7000 + "'", ["parameters"]), "val_acc = 0.5",
    ])
    import os

    os.environ["NBTRACK_NOTEBOOK"] = str(project / "nb.ipynb")
    try:
        run_notebook_cells(shell, nb, [0])
        capsys.readouterr()
        run_notebook_cells(shell, nb, [1])  # the parameters cell: its values are logged a cell later
        assert "param note is longer than 6000 characters; it was truncated" in capsys.readouterr().err
        run_notebook_cells(shell, nb, [2])
        assert "truncated" not in capsys.readouterr().err  # said once, under the cell that set it
        shell.run_cell("import nbtrack\nnbtrack.log(step='abc', acc=0.3)")
        assert "step 'abc' is not an integer" in capsys.readouterr().err
        for source, shown in (("nbtrack.log(f1='high')", True), ("nbtrack.log(f1='low')", False),
                              ("nbtrack.log(f1=None)", True), ("nbtrack.log(f1=[1])", True)):
            shell.run_cell(source)
            assert ("metric f1 skipped" in capsys.readouterr().err) is shown, source
        (run,) = delivered_runs(project)
        assert run.data.metrics["acc"] == 0.3  # a bad step never costs the values
        assert "f1" not in run.data.metrics
    finally:
        del os.environ["NBTRACK_NOTEBOOK"]


def test_magics_control_runs(shell, project, notebook, capsys):
    run_notebook_cells(shell, notebook, [0, 1])
    shell.run_cell("%nbtrack log f1=0.7")
    shell.run_cell("%%nbtrack metrics\nauc_like = 0.9\nlabel = 'x'")
    shell.run_cell("%nbtrack off")
    shell.run_cell("val_acc = 0.1")
    shell.run_cell("%nbtrack on")
    shell.run_cell("%%nbtrack skip\nval_acc = 0.2")
    shell.run_cell("%nbtrack new second")
    shell.run_cell("%%nbtrack params\nseed = 7")
    shell.run_cell("%nbtrack end")
    shell.run_cell("%nbtrack status")
    first, second = delivered_runs(project)
    assert user_metrics(first) == {"f1": 0.7, "auc_like": 0.9}
    assert second.info.run_name == "second"
    assert second.data.params["seed"] == "7" and second.data.params["lr"] == "0.1"
    assert second.info.status == "FINISHED"
    out = capsys.readouterr().out
    assert "run: none yet" in out


def test_unknown_magic_and_bad_config_are_usage_errors(shell, project, notebook, capsys):
    run_notebook_cells(shell, notebook, [0])
    assert not shell.run_cell("%nbtrack frobnicate").success
    assert not shell.run_cell("%nbtrack config no_such_option=1").success
    err = capsys.readouterr()
    text = err.out + err.err
    assert "unknown; use one of" in text and "unknown nbtrack option 'no_such_option'" in text
    assert "Traceback" not in text


def test_config_changes_metric_words(shell, project, notebook):
    run_notebook_cells(shell, notebook, [0])
    shell.run_cell("%nbtrack config metric_words=bleu,loss")
    shell.run_cell("val_bleu = 31.5\nval_acc = 0.9")
    (run,) = delivered_runs(project)
    assert set(user_metrics(run)) == {"val_bleu"}


def test_out_of_order_execution_is_tagged(shell, project, notebook):
    run_notebook_cells(shell, notebook, [0, 1, 3, 2])
    nbtrack.unload_ipython_extension(shell)
    from helpers import wait_for

    run = wait_for(lambda: [r for r in all_runs(project) if r.info.status == "FINISHED"])[0]
    assert f"{notebook.cells[2].id} ran after {notebook.cells[3].id}" in run.data.tags["nbtrack.out_of_order"]


def test_load_twice_is_harmless_and_unload_removes_every_hook(shell, project, notebook):
    before = {name: list(cbs) for name, cbs in shell.events.callbacks.items()}
    shell.run_cell("%load_ext nbtrack")
    shell.run_cell("%reload_ext nbtrack")
    shell.run_cell("%load_ext nbtrack")
    assert len(shell.events.callbacks["post_run_cell"]) == len(before["post_run_cell"]) + 1
    assert "publish" in vars(shell.display_pub)
    nbtrack.unload_ipython_extension(shell)
    assert {name: list(cbs) for name, cbs in shell.events.callbacks.items()} == before
    assert "publish" not in vars(shell.display_pub)
    assert "write_format_data" not in vars(shell.displayhook)
    assert "nbtrack" not in shell.magics_manager.magics["line"]


def test_figures_from_any_display_and_closed_figures(shell, project, notebook):
    run_notebook_cells(shell, notebook, [0])
    shell.run_cell(
        "import matplotlib.pyplot as plt\nfrom IPython.display import display, Image, SVG\n"
        "fig = plt.figure(); plt.plot([3, 1]); plt.close(fig); display(fig)\n"
        "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4\" height=\"4\"></svg>'))"
    )
    shell.run_cell("from PIL import Image as PILImage\nPILImage.new('RGB', (4, 4))")  # execute_result
    (run,) = delivered_runs(project)
    figures = sorted(a for a in artifacts(project, run) if a.startswith("figures/"))
    assert [f.rsplit(".", 1)[1] for f in figures] == ["png", "svg", "png"], figures


def test_no_notebook_found_warns_once_and_names_the_setting(shell, project, capsys):
    shell.run_cell("%load_ext nbtrack")
    for _ in range(4):
        shell.run_cell("val_acc = 0.5")
    err = capsys.readouterr().err
    assert err.count("could not tell which notebook") == 1
    assert "%nbtrack config notebook=PATH" in err
    (run,) = delivered_runs(project)
    assert client_for(project).get_experiment(run.info.experiment_id).name == "untitled"


def test_detection_from_vscode_variable(shell, project):
    write_notebook(project / "vs.ipynb", ["x = 1"])
    shell.user_ns["__vsc_ipynb_file__"] = str(project / "vs.ipynb")
    shell.run_cell("%load_ext nbtrack")
    assert session_of(shell).detection.how == "VS Code"
    assert session_of(shell).notebook == (project / "vs.ipynb").resolve()


def test_read_only_project_turns_tracking_off_without_breaking_cells(shell, project, notebook, capsys):
    import os

    if os.geteuid() == 0:
        # root ignores permissions; make .nbtrack unusable another way: a file where the folder goes
        import shutil

        shutil.rmtree(project / ".nbtrack")
        (project / ".nbtrack").write_text("not a folder")
    else:
        project.chmod(0o500)
    try:
        assert shell.run_cell("%load_ext nbtrack").success
        assert shell.run_cell("val_acc = 1.0").success
    finally:
        project.chmod(0o700)
    assert "tracking is off in this kernel" in capsys.readouterr().err
    assert "MLFLOW_TRACKING_URI" not in os.environ  # nothing of nbtrack's is left behind


def test_users_own_mlflow_runs_stay_theirs_and_are_linked(shell, project, notebook):
    """The notebook's MLflow keeps its own store and runs; nbtrack's run only links to them."""
    import json
    import os

    from mlflow.tracking import MlflowClient

    run_notebook_cells(shell, notebook, [0, 1])
    assert "MLFLOW_TRACKING_URI" not in os.environ  # nbtrack sets no MLflow setting
    shell.run_cell("import mlflow\nuri = mlflow.get_tracking_uri()")
    assert ".nbtrack" not in shell.user_ns["uri"]  # MLflow's own default: ./mlflow.db
    shell.run_cell(
        "for lr in (0.1, 0.2):\n"
        "    with mlflow.start_run(run_name=f'mine-{lr}'):\n"
        "        mlflow.log_param('lr', lr)\n"
        "        rmse = lr / 2\n"
        "        mlflow.log_metric('rmse', rmse)"
    )
    shell.run_cell("parent = mlflow.start_run(run_name='parent')\n"
                   "child = mlflow.start_run(run_name='child', nested=True)")
    shell.run_cell("mlflow.end_run()\nmlflow.end_run()\nval_acc = 0.7")
    try:
        (ours,) = delivered_runs(project)  # nbtrack's store holds only nbtrack's run
    finally:
        while shell.user_ns["mlflow"].active_run() is not None:
            shell.user_ns["mlflow"].end_run()
    users = MlflowClient(shell.user_ns["uri"])
    theirs = {r.info.run_name: r for r in users.search_runs(["0"])}
    assert set(theirs) == {"mine-0.1", "mine-0.2", "parent", "child"}
    for run in theirs.values():  # untouched: no nbtrack tag, param or metric, ended by the notebook
        assert not [t for t in run.data.tags if t.startswith("nbtrack.")]
        assert run.info.status == "FINISHED"
    assert theirs["mine-0.2"].data.params == {"lr": "0.2"}
    assert [m.value for m in users.get_metric_history(theirs["mine-0.2"].info.run_id, "rmse")] == [0.1]
    assert ours.data.params == {"lr": "0.1", "epochs": "3", "layers": "[64, 32]", "name": "base"}
    assert ours.data.metrics["val_acc"] == 0.7 and ours.data.metrics["rmse"] == 0.1
    linked = {item["run_id"]: item for item in json.loads(ours.data.tags["nbtrack.user_runs"])}
    assert set(linked) == {r.info.run_id for r in theirs.values()}
    child = linked[theirs["child"].info.run_id]
    assert child["parent_run_id"] == theirs["parent"].info.run_id and child["ended"] is True
    assert child["tracking_uri"] == shell.user_ns["uri"] and child["experiment_id"] == "0"


def test_detection_on_databricks_uses_the_workspace_path(shell, project, monkeypatch):
    """MOCK: a Databricks workspace cannot run here. A stand-in for the runtime's
    `dbruntime.databricks_repl_context` module gives the notebook context, as Databricks does."""
    import sys
    import types

    context = types.SimpleNamespace(notebookPath="/Users/ada@example.com/churn/train")
    module = types.ModuleType("dbruntime.databricks_repl_context")
    module.get_context = lambda: context
    monkeypatch.setitem(sys.modules, "dbruntime", types.ModuleType("dbruntime"))
    monkeypatch.setitem(sys.modules, "dbruntime.databricks_repl_context", module)
    shell.run_cell("%load_ext nbtrack")
    shell.run_cell("val_acc = 0.5")
    session = session_of(shell)
    assert session.detection.how == "Databricks"
    assert session.project.root == project  # state stays in the working directory's project
    (run,) = delivered_runs(project)
    assert client_for(project).get_experiment(run.info.experiment_id).name == "/Users/ada@example.com/churn/train"


def test_current_run_reports_the_mlflow_run_id_once_delivered(shell, project, notebook):
    run_notebook_cells(shell, notebook, [0, 1])
    handle = nbtrack.current_run()
    assert handle.params == {"lr": "0.1", "epochs": "3", "layers": "[64, 32]", "name": "base"}
    (run,) = delivered_runs(project)
    assert nbtrack.current_run().run_id == run.info.run_id
    assert handle.experiment == "notebooks/train.ipynb"


def test_magic_help_shows_the_full_usage(shell, project, notebook):
    from nbtrack.magics import _CELL_COMMANDS, _LINE_COMMANDS

    run_notebook_cells(shell, notebook, [0])
    usage = shell.find_line_magic("nbtrack").__doc__  # what `%nbtrack?` prints
    for command in _LINE_COMMANDS:
        assert f"%nbtrack {command}" in usage, command
    for command in _CELL_COMMANDS:
        assert f"%%nbtrack {command}" in usage, command
