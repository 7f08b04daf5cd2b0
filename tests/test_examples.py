"""The quickstart notebook and ``nbtrack demo``: what a new user runs first.

The notebook is validated with nbval (``--nbval-lax``: every cell must run
without error; outputs are not compared since the notebook is saved without
them), and ``nbtrack demo`` is run end to end as a user would, checking that
what it prints is what the tracking store holds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from helpers import client_for, user_metrics

from nbtrack.cli.main import main

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"
SHIPPED = REPO / "nbtrack" / "examples" / "quickstart.ipynb"

PARAMS = {
    "n_estimators": "60", "max_depth": "2", "learning_rate": "0.1", "test_size": "0.25", "seed": "0",
}
METRICS = {
    "train_acc", "train_loss", "test_acc", "test_f1", "test_auc", "test_loss", "val_acc", "val_loss",
}
FIGURE_CELLS = {"learning-curve", "test-figures"}


def test_shipped_quickstart_is_the_repo_notebook():
    assert SHIPPED.read_bytes() == QUICKSTART.read_bytes(), (
        "nbtrack/examples/quickstart.ipynb differs from notebooks/quickstart.ipynb: "
        "copy the notebook over after editing it"
    )


def test_quickstart_is_a_clean_papermill_notebook():
    nb = nbformat.read(QUICKSTART, as_version=4)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code[0].source.strip() == "%load_ext nbtrack"
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert {line.split("=")[0].strip() for line in tagged[0].source.splitlines()} == set(PARAMS)
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    ids = [cell.id for cell in nb.cells]
    assert len(set(ids)) == len(ids)
    assert FIGURE_CELLS <= set(ids)


def test_demo_help_and_usage_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["demo", "--help"])
    assert done.value.code == 0
    assert "--dir" in capsys.readouterr().out

    assert main(["demo", "--dir", str(tmp_path), "-p", "max_depth"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err

    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["demo", "--dir", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_demo_without_scikit_learn_says_how_to_get_it(tmp_path):
    """`pip install nbtrack` brings neither scikit-learn nor matplotlib: the demo says what to
    install, in one line, before creating or executing anything."""
    hide = "import sys; sys.modules['sklearn'] = None; from nbtrack.cli.main import main; "
    done = subprocess.run(
        [sys.executable, "-c", hide + "sys.exit(main(sys.argv[1:]))", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr == ("nbtrack demo: the quickstart notebook needs scikit-learn, which `pip install "
                           "nbtrack` does not bring: pip install 'nbtrack[demo]'\n")
    assert not (tmp_path / "demo").exists()


def stop_delivery_process(project: Path) -> None:
    """End the delivery process a kernel started for ``project`` (it would exit when idle)."""
    try:
        os.kill(int((project / ".nbtrack" / "delivery.pid").read_text().strip()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


@pytest.mark.kernel
def test_quickstart_passes_nbval(tmp_path):
    notebook = tmp_path / "quickstart.ipynb"
    notebook.write_bytes(QUICKSTART.read_bytes())
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
             "-p", "no:cacheprovider", "-q", str(notebook)],
            cwd=tmp_path, capture_output=True, text=True, timeout=240,
            env={**os.environ, "NBTRACK_DAEMON_IDLE": "5"},
        )
    finally:
        stop_delivery_process(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b\d+ passed\b", done.stdout)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """The demo's folder; the delivery process its kernel started is ended after the test."""
    demo = tmp_path / "demo"
    yield demo
    stop_delivery_process(demo)


def run_demo(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbtrack", "demo", "--dir", str(folder), *args],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "COLUMNS": "200", "NBTRACK_DAEMON_IDLE": "5"},
    )


def store_run(folder: Path, stdout: str):
    run_ids = re.findall(r"\b[0-9a-f]{32}\b", stdout)
    assert run_ids, stdout
    assert (folder / ".nbtrack" / "mlflow.db").is_file()
    client = client_for(folder)
    return client, client.get_run(run_ids[0])


@pytest.mark.kernel
def test_demo_runs_the_quickstart_and_prints_its_tracked_run(folder, tmp_path):
    done = run_demo(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[IPKernelApp]" not in done.stderr and "without encryption" not in done.stderr
    out = done.stdout
    client, run = store_run(folder, out)

    assert run.info.status == "FINISHED"
    assert "FINISHED" in out
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "quickstart.ipynb"

    assert run.data.params == PARAMS
    for key, value in PARAMS.items():
        assert re.search(rf"{key}\s.*\s{re.escape(value)}\b", out), key

    assert set(user_metrics(run)) == METRICS
    results, _, system = out.partition("System: peak")  # what the run found, then what it cost
    for key in METRICS:
        assert key in results
    assert "system/" not in results and "kernel_peak_memory_mb" in system
    assert run.data.metrics["test_acc"] > 0.9
    curve = client.get_metric_history(run.info.run_id, "val_acc")
    assert sorted(point.step for point in curve) == list(range(1, 61))

    figures = [a.path for a in client.list_artifacts(run.info.run_id, "figures")]
    assert len(figures) == 2, figures
    cells = set()
    for path in figures:
        match = re.fullmatch(r"figures/(\d+)-([A-Za-z0-9_-]+)-(\d+)\.png", path)
        assert match, path
        cells.add(match[2])
        assert path in out
        local = client.download_artifacts(run.info.run_id, path, str(tmp_path))
        assert Path(local).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cells == FIGURE_CELLS

    db = folder / ".nbtrack" / "mlflow.db"
    assert f"mlflow ui --backend-store-uri sqlite:///{db}" in out
    assert "nbtrack runs" in out
    assert (folder / "quickstart.output.ipynb").is_file()


@pytest.mark.kernel
def test_demo_passes_parameters_to_the_notebook(folder):
    done = run_demo(folder, "-p", "max_depth=3", "-p", "n_estimators=20")
    assert done.returncode == 0, done.stdout + done.stderr
    client, run = store_run(folder, done.stdout)
    assert run.info.status == "FINISHED"
    assert run.data.params == {**PARAMS, "max_depth": "3", "n_estimators": "20"}
    curve = client.get_metric_history(run.info.run_id, "val_loss")
    assert len(curve) == 20


@pytest.mark.kernel
def test_demo_of_a_failing_notebook_shows_the_failed_run(folder):
    folder.mkdir()
    nb = json.loads(QUICKSTART.read_text())
    nb["cells"].insert(5, {
        "cell_type": "code", "id": "boom", "metadata": {}, "execution_count": None,
        "outputs": [], "source": 'raise ValueError("boom")',
    })
    (folder / "quickstart.ipynb").write_text(json.dumps(nb))
    done = run_demo(folder, "--timeout", "60")
    assert done.returncode == 5, done.stdout + done.stderr
    assert "ValueError: boom" in done.stderr
    assert "edited copy" in done.stdout
    _, run = store_run(folder, done.stdout)
    assert run.info.status == "FAILED"
    assert "FAILED" in done.stdout
    assert run.data.params == PARAMS
