"""End to end with real kernels: papermill (CLI and API), crashes, an unreachable store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import all_runs, client_for, finished_runs, user_metrics, wait_for, write_notebook

pytestmark = pytest.mark.kernel

TRAIN = [
    "%load_ext nbtrack",
    ("lr = 0.1\nepochs = 3", ["parameters"]),
    "import nbtrack\nval_acc = lr * 2\nfor i in range(epochs):\n    nbtrack.log(step=i, loss=1 / (i + 1))",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])",
    "done = True",
]


def finished(root: Path, n: int = 1, timeout: float = 15.0) -> list:
    """The runs, once ``n`` of them have a terminal status (the contract: within 15 s)."""
    return finished_runs(root, n, timeout=timeout)


def artifact_paths(root: Path, run) -> list[str]:
    client = client_for(root)

    def walk(path=None):
        for item in client.list_artifacts(run.info.run_id, path):
            yield from walk(item.path) if item.is_dir else [item.path]

    return sorted(walk())


def test_papermill_cli_run_is_tracked_with_injected_params(project):
    nb = write_notebook(project / "nbs" / "train.ipynb", TRAIN)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "nbs"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "notebook"], cwd=project, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "papermill", "train.ipynb", "out.ipynb", "-p", "lr", "0.5"],
                   cwd=project / "nbs", check=True, capture_output=True)
    (run,) = finished(project)
    assert run.info.status == "FINISHED"
    assert client_for(project).get_experiment(run.info.experiment_id).name == "nbs/train.ipynb"
    assert run.data.params == {"lr": "0.5", "epochs": "3"}  # injected value wins, logged once
    assert user_metrics(run) == {"val_acc": 1.0, "loss": pytest.approx(1 / 3)}
    paths = artifact_paths(project, run)
    assert f"figures/5-{nb.cells[3].id}-0.png" in paths  # papermill's count: injected cell is #3
    assert "notebook/train.ipynb" in paths and "notebook/papermill_output/out.ipynb" in paths
    assert run.data.tags["nbtrack.origin"] == "papermill"
    assert run.data.tags["nbtrack.git_commit"] == head  # the full SHA
    assert run.data.tags["nbtrack.git_dirty"] == "false"


def test_papermill_python_api_finds_the_notebook(project):
    import papermill

    write_notebook(project / "nbs" / "api.ipynb", TRAIN)
    papermill.execute_notebook(str(project / "nbs" / "api.ipynb"), str(project / "nbs" / "api-out.ipynb"),
                               parameters={"epochs": 2}, cwd=str(project / "nbs"), progress_bar=False)
    (run,) = finished(project)
    assert client_for(project).get_experiment(run.info.experiment_id).name == "nbs/api.ipynb"
    assert run.data.params == {"lr": "0.1", "epochs": "2"}
    assert [m.step for m in client_for(project).get_metric_history(run.info.run_id, "loss")] == [0, 1]


def test_a_failing_cell_makes_the_run_failed(project):
    import papermill

    write_notebook(project / "fail.ipynb", [*TRAIN[:3], "raise ValueError('boom')", "never = 1"])
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(str(project / "fail.ipynb"), str(project / "fail-out.ipynb"),
                                   cwd=str(project), progress_bar=False)
    (run,) = finished(project)
    assert run.info.status == "FAILED"
    local = client_for(project).download_artifacts(run.info.run_id, "nbtrack/cells.json")
    records = json.loads(Path(local).read_text())
    assert records[-1]["status"] == "error" and records[-1]["error_name"] == "ValueError"
    assert "val_acc" in run.data.metrics


def _execute(kc, code: str) -> None:
    reply = kc.execute_interactive(code, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]


def test_kill_minus_9_then_recover_delivers_everything(project):
    """Kernel killed mid-notebook while delivery is frozen: `nbtrack recover` delivers it all."""
    from jupyter_client.manager import start_new_kernel

    nb_path = project / "crash.ipynb"
    write_notebook(nb_path, TRAIN)
    env = {**os.environ, "NBTRACK_NOTEBOOK": str(nb_path)}
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(project), env=env)
    try:
        _execute(kc, "%load_ext nbtrack")
        pid_file = project / ".nbtrack" / "delivery.pid"
        daemon = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=20))
        os.kill(daemon, signal.SIGSTOP)  # freeze delivery: nothing reaches MLflow from now on
        _execute(kc, "lr = 0.1\nepochs = 3")
        for i in range(5):
            _execute(kc, f"import nbtrack\nnbtrack.log(step={i}, loss={i / 10})")
        os.kill(km.provisioner.process.pid, signal.SIGKILL)
    finally:
        kc.stop_channels()
    os.kill(daemon, signal.SIGKILL)
    time.sleep(0.5)
    result = subprocess.run([sys.executable, "-m", "nbtrack", "recover"], cwd=project,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "delivered 1 of 1 journal" in result.stdout
    (run,) = all_runs(project)
    assert run.info.status == "KILLED"
    history = client_for(project).get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(i, i / 10) for i in range(5)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_store_down_cells_unaffected_then_backlog_delivered(shell, project, monkeypatch, capsys):
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    write_notebook(project / "down.ipynb", ["x = 1"])
    monkeypatch.setenv("NBTRACK_NOTEBOOK", str(project / "down.ipynb"))
    shell.run_cell("%load_ext nbtrack")
    for i in range(30):  # every cell runs (their speed with the store down: bench/overhead.py)
        assert shell.run_cell(f"val_loss = {i / 10}").success
        time.sleep(0.05)
    err = capsys.readouterr().err
    assert err.count("mlflow delivery failing") == 1 and uri.split("//")[1] in err
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{project / 'server.db'}", "--workers", "1"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        import nbtrack

        assert nbtrack.flush(90), "backlog not delivered after the server came back"
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        (run,) = client.search_runs([client.get_experiment_by_name("down.ipynb").experiment_id])
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 30
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)


def test_two_kernels_create_a_new_store_at_once(project):
    (project / ".nbtrack" / "mlflow.db").unlink()
    for name in ("a", "b"):
        write_notebook(project / f"{name}.ipynb", TRAIN)
    procs = [subprocess.Popen([sys.executable, "-m", "papermill", f"{n}.ipynb", f"{n}-out.ipynb"],
                              cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for n in ("a", "b")]
    for proc in procs:
        assert proc.wait(120) == 0, proc.stderr.read().decode()[-2000:]
    runs = finished(project, n=2, timeout=30)
    assert sorted(client_for(project).get_experiment(r.info.experiment_id).name for r in runs) == [
        "a.ipynb", "b.ipynb"]


def test_papermill_params_injected_above_load_ext_are_logged(project):
    """Without a parameters cell papermill injects its cell at the top, before nbtrack loads."""
    write_notebook(project / "noparams.ipynb", ["%load_ext nbtrack", "scale = 2\nval_loss = 1 / scale"])
    subprocess.run([sys.executable, "-m", "papermill", "noparams.ipynb", "out.ipynb", "-p", "N", "5",
                    "-p", "label", "five"], cwd=project, check=True, capture_output=True)
    (run,) = finished(project)
    assert run.data.params == {"N": "5", "label": "five"}
    assert user_metrics(run) == {"val_loss": 0.5}


def test_cells_with_the_same_source_are_told_apart_under_papermill(project):
    """Papermill sends no cell ids: a cell whose source repeats an earlier cell's is the next such
    cell below the one that ran before, not the first one (which made a top-to-bottom run look out
    of order and put its figures under the first cell's id)."""
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"
    nb = write_notebook(project / "repeat.ipynb", ["%load_ext nbtrack", plot, "x = 1", plot, "y = 2", plot])
    subprocess.run([sys.executable, "-m", "papermill", "repeat.ipynb", "out.ipynb"],
                   cwd=project, check=True, capture_output=True)
    (run,) = finished(project)
    assert "nbtrack.out_of_order" not in run.data.tags
    figures = [p for p in artifact_paths(project, run) if p.startswith("figures/")]
    assert figures == sorted(f"figures/{n}-{nb.cells[i].id}-0.png" for n, i in [(2, 1), (4, 3), (6, 5)])
    local = client_for(project).download_artifacts(run.info.run_id, "nbtrack/cells.json")
    records = json.loads(Path(local).read_text())
    assert [r["cell_id"] for r in records] == [cell.id for cell in nb.cells]
