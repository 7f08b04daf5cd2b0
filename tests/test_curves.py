"""Curves and system figures with no calls: loops, printed progress, the kernel's CPU and memory.

A real kernel runs the notebook through papermill; the run is read back from
MLflow and the lake as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import client_for, finished_runs, stop_daemons, wait_for, write_notebook

pytestmark = pytest.mark.kernel

CELLS = [
    "%load_ext nbtrack",
    # a training loop: one point per epoch, stepped by the epoch
    "for epoch in range(50):\n    train_loss = 1 / (epoch + 1)\n    if epoch % 10 == 0:\n        val_acc = epoch / 50",
    # printed progress: the printed steps
    "for epoch in range(3):\n    print(f'epoch {epoch}: loss={0.5 / (epoch + 1):.4f} acc={0.8 + epoch / 100:.3f}')\n"
    "print('Loss after iteration 1000: 0.125')",
    # negative controls: a DataFrame, a statsmodels summary, a classification report, a printed traceback
    "import numpy as np\nimport pandas as pd\nframe = pd.DataFrame({'loss': [0.5, 0.4], 'acc': [0.8, 0.9]})\n"
    "print(frame)\nprint(frame.describe())",
    "import statsmodels.api as sm\nrng = np.random.default_rng(0)\nx = rng.normal(size=50)\n"
    "fit = sm.OLS(2 * x + rng.normal(size=50), sm.add_constant(x)).fit()\nprint(fit.summary())",
    "from sklearn.metrics import classification_report\nprint(classification_report([0, 1, 1, 0], [0, 1, 0, 0]))",
    "import sys, traceback\ntry:\n    raise ValueError('loss: 0.5 is too high')\nexcept ValueError:\n"
    "    traceback.print_exc(file=sys.stdout)",
    # 400 MB held for 3 s
    "import time\nblob = bytearray(400 * 2**20)\nblob[::4096] = b'x' * len(blob[::4096])\ntime.sleep(3)\ndel blob",
]


def run_notebook(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "NBTRACK_"))}
    env.update(NBTRACK_DAEMON_IDLE="3", NBTRACK_SYSTEM_METRICS_INTERVAL="1")
    subprocess.run([sys.executable, "-m", "papermill", "curves.ipynb", "out.ipynb", "--log-level", "ERROR"],
                   cwd=project, env=env, check=True, capture_output=True, timeout=300)


def test_loops_printed_progress_and_system_metrics_become_curves(project: Path) -> None:
    write_notebook(project / "curves.ipynb", CELLS)
    try:
        run_notebook(project)
        client = client_for(project)
        (run,) = finished_runs(client, timeout=60, statuses=("FINISHED",))
        run_id = run.info.run_id

        def history(key: str) -> list[tuple[int, float]]:
            return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]

        # every epoch of the loop, stepped by the epoch; the conditional metric at its epochs
        assert history("train_loss") == [(e, 1 / (e + 1)) for e in range(50)]
        assert history("val_acc") == [(e, e / 50) for e in range(0, 50, 10)]
        # printed progress, at the printed steps
        assert history("loss") == [(0, 0.5), (1, 0.25), (2, 0.1667), (1000, 0.125)]
        assert history("acc") == [(0, 0.8), (1, 0.81), (2, 0.82)]
        # nothing invented from tables, summaries or tracebacks
        user_metrics = {k for k in run.data.metrics if not k.startswith("system/")}
        assert user_metrics == {"train_loss", "val_acc", "loss", "acc"}
        # the kernel's memory, sampled from outside, and each cell's own peak and CPU time
        memory = [value for _, value in history("system/kernel_memory_mb")]
        assert memory and max(memory) >= 350
        assert history("system/kernel_cpu_percent")
        cells = json.loads(Path(client.download_artifacts(run_id, "nbtrack/cells.json")).read_text())
        holding = next(c for c in cells if "bytearray(400" in c["source"])
        assert holding["peak_memory_mb"] >= 350 and holding["cpu_s"] >= 0
        # the run's high-water mark: a point each time a cell set a new one, so it only rises
        peaks = [value for _, value in history("system/kernel_peak_memory_mb")]
        assert peaks == sorted(set(peaks)) and peaks[-1] == max(c["peak_memory_mb"] or 0 for c in cells)
        listed = subprocess.run([sys.executable, "-m", "nbtrack", "runs", "curves.ipynb", "--csv"], cwd=project,
                                capture_output=True, text=True, check=True).stdout.splitlines()
        header, row = listed[0].split(","), listed[1].split(",")
        assert float(row[header.index("metrics.system/kernel_peak_memory_mb")]) >= 350
        assert "nbtrack.loop_sampling" not in run.data.tags  # nothing here was fast enough to sample

        from deltalake import DeltaTable

        lake = project / ".nbtrack" / "lake"
        points = wait_for(lambda: [r for r in DeltaTable(str(lake / "metrics")).to_pyarrow_table().to_pylist()
                                   if r["run_id"] == run_id and r["key"] == "system/kernel_memory_mb"])
        assert max(r["value"] for r in points) >= 350
        lake_cells = DeltaTable(str(lake / "cells")).to_pyarrow_table().to_pylist()
        assert max(r["peak_memory_mb"] or 0 for r in lake_cells if r["run_id"] == run_id) >= 350
    finally:
        stop_daemons(project)


def test_a_hot_loop_is_sampled_and_keeps_its_last_value(shell, project: Path, monkeypatch) -> None:
    import nbtrack

    write_notebook(project / "hot.ipynb", ["x = 1"])
    monkeypatch.setenv("NBTRACK_NOTEBOOK", str(project / "hot.ipynb"))
    shell.run_cell("%load_ext nbtrack")
    result = shell.run_cell("for i in range(200000):\n    batch_loss = i * 0.5\nbest_loss = 1.0")
    assert result.success
    assert nbtrack.flush(30)
    run = client_for(project).search_runs([client_for(project).get_experiment_by_name("hot.ipynb").experiment_id])[0]
    points = [(m.step, m.value) for m in client_for(project).get_metric_history(run.info.run_id, "batch_loss")]
    assert 100 <= len(points) < 1000  # the first 100 one by one, then sampled
    assert points[:3] == [(0, 0.0), (1, 0.5), (2, 1.0)] and points[-1] == (199999, 99999.5)
    assert "batch_loss" in run.data.tags["nbtrack.loop_sampling"]
    assert run.data.metrics["best_loss"] == 1.0  # assigned outside the loop: the cell's value, as before


def test_a_kernel_is_sampled_as_soon_as_delivery_sees_it(project: Path) -> None:
    """A run shorter than the sampling interval still says what its kernel used."""
    write_notebook(project / "short.ipynb", ["%load_ext nbtrack", "import time\ntime.sleep(3)\nval_acc = 0.5"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "NBTRACK_"))}
    env.update(NBTRACK_DAEMON_IDLE="3", NBTRACK_SYSTEM_METRICS_INTERVAL="60")
    try:
        subprocess.run([sys.executable, "-m", "papermill", "short.ipynb", "out.ipynb", "--log-level", "ERROR"],
                       cwd=project, env=env, check=True, capture_output=True, timeout=300)
        client = client_for(project)
        (run,) = finished_runs(client, timeout=60, statuses=("FINISHED",))
        memory = client.get_metric_history(run.info.run_id, "system/kernel_memory_mb")
        assert memory and memory[0].value > 20  # a Python kernel's resident memory, sampled once at least
        assert not client.get_metric_history(run.info.run_id, "system/kernel_cpu_percent")  # no 0.0 from one reading
    finally:
        stop_daemons(project)
