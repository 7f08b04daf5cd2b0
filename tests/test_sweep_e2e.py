"""Sweeps end to end: real kernels through papermill, nbtrack's capture in each kernel, the
delivery process, the MLflow store. What a user sees: child runs with the right params and
metrics, a failed combination recorded and resumable, the output notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from helpers import client_for

from nbtrack import tags
from nbtrack.batch.sweep import sweep
from nbtrack.cli.main import main

pytestmark = pytest.mark.kernel

NOTEBOOKS = Path(__file__).parent / "notebooks_for_tests"


def _sweep_runs(root: Path, sweep_id: str):
    client = client_for(root)
    runs = [r for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id], f"tags.`nbtrack.sweep_id` = '{sweep_id}'")]
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def test_grid_with_a_failing_combination_then_resume(project, capsys):
    nb = project / "train.ipynb"
    nb.write_bytes((NOTEBOOKS / "sweep_grid.ipynb").read_bytes())
    marker = project / "fixed"
    argv = ["sweep", "train.ipynb", "-p", "x=1,2", "-p", "y=1,2", "-p", "fail_x=2",
            "-p", "fail_y=1", "-p", f"marker={marker}", "--workers", "2", "--metric", "score"]
    assert main(argv) == 5  # one execution failed
    out = capsys.readouterr().out
    sweep_id = out.split("sweep ", 1)[1].split()[0].rstrip(":")
    assert "3 finished, 1 failed" in out and f"--resume {sweep_id}" in out

    parents, children = _sweep_runs(project, sweep_id)
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FAILED"
    assert parent.data.tags[tags.SWEEP_FINISHED] == "3"
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert all(c.data.tags["nbtrack.origin"] == "sweep" for c in children)
    by_xy = {(c.data.params["x"], c.data.params["y"]): c for c in children}
    assert set(by_xy) == {("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")}
    for (x, y), run in by_xy.items():
        assert run.data.params["fail_x"] == "2"  # injected values, captured by the kernel
        if (x, y) == ("2", "1"):
            assert run.info.status == "FAILED"
            assert run.data.tags["nbtrack.sweep.error"] == "ValueError: boom at x=2, y=1"
            assert "score" not in run.data.metrics
        else:
            assert run.info.status == "FINISHED"
            assert run.data.metrics["score"] == int(x) * 10 + int(y)
    outputs = project / ".nbtrack" / "outputs" / sweep_id
    assert sorted(p.name for p in outputs.glob("*.ipynb")) == [f"{i}.ipynb" for i in range(1, 5)]
    failed_output = nbformat.read(outputs / "3.ipynb", as_version=4)  # x=2, y=1 is combination 3
    assert failed_output.metadata.papermill.exception is True
    assert failed_output.metadata.papermill.parameters["x"] == 2
    artifacts = [a.path for a in client_for(project).list_artifacts(by_xy["1", "2"].info.run_id,
                                                                 "notebook")]
    assert "notebook/papermill_output" in artifacts

    marker.write_text("the bug is fixed")
    assert main(["sweep", "--resume", sweep_id, "--metric", "score"]) == 0
    out = capsys.readouterr().out
    assert "4 finished, 0 failed" in out
    parents, children = _sweep_runs(project, sweep_id)
    assert len(children) == 5  # only the failed combination ran again
    retried = [c for c in children if c.data.tags["nbtrack.sweep.index"] == "3"]
    old, new = sorted(retried, key=lambda r: r.info.start_time)
    assert old.info.status == "FAILED" and new.info.status == "FINISHED"
    assert old.data.tags["nbtrack.sweep.superseded_by"] == new.info.run_id
    assert new.data.metrics["score"] == 21
    assert parents[0].info.status == "FINISHED"
    assert main(["sweep", "--resume", sweep_id]) == 0  # nothing left to do: no new runs
    assert len(_sweep_runs(project, sweep_id)[1]) == 5


def test_python_api_returns_sorted_runs_and_reports_progress(project):
    nb = project / "nb.ipynb"
    nb.write_bytes((NOTEBOOKS / "sweep_grid.ipynb").read_bytes())
    spec = project / "sets.yaml"
    spec.write_text("- {x: 3, y: 1}\n- {x: 1, y: 4}\n")
    events: list[dict] = []
    frame = sweep(nb, file=spec, workers=2, metric="val_loss", progress=events.append)
    assert list(frame["metrics.score"]) == [31.0, 14.0]  # val_loss = 1/score: minimized
    assert list(frame["status"]) == ["FINISHED", "FINISHED"]
    assert list(frame["params.x"]) == [3, 1]
    assert frame.attrs["sweep_id"] and frame.attrs["parent_run_id"]
    states = [e["state"] for e in events]
    assert states.count("finished") == 2 and states[-1] == "done"
    assert any("cell" in e for e in events)
    plan = json.loads((project / ".nbtrack" / "outputs" / frame.attrs["sweep_id"]
                       / "plan.json").read_text())
    assert plan["combinations"] == [{"x": 3, "y": 1}, {"x": 1, "y": 4}]


def test_a_cancelled_sweep_stops_its_kernels_and_marks_runs_killed(project):
    import signal
    import subprocess
    import sys
    import time

    import psutil

    nb = project / "nb.ipynb"
    nb.write_bytes((NOTEBOOKS / "sweep_grid.ipynb").read_bytes())
    proc = subprocess.Popen([sys.executable, "-m", "nbtrack", "sweep", "nb.ipynb", "-p", "x=1,2,3",
                             "-p", "sleep_s=60", "--workers", "2", "--no-progress"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = client_for(project)
    deadline = time.monotonic() + 90
    running = []
    while time.monotonic() < deadline and len(running) < 2:
        time.sleep(0.5)
        runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
        running = [r for r in runs if r.info.status == "RUNNING" and "mlflow.parentRunId" in r.data.tags]
    assert len(running) == 2, "two executions never started"
    descendants = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)  # what a CI system does to a cancelled job
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert sorted(r.info.status for r in runs) == ["KILLED"] * 4  # parent and three children
    time.sleep(1)
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
             and "nbtrack.delivery" not in " ".join(p.cmdline())]
    assert not alive, [p.cmdline() for p in alive]


def test_sweep_and_rerun_print_no_kernel_transport_warning(project):
    """ipykernel warns on stderr for every kernel on TCP; nbtrack's kernels use IPC sockets."""
    import subprocess
    import sys

    from helpers import wait_for

    (project / "nb.ipynb").write_bytes((NOTEBOOKS / "sweep_grid.ipynb").read_bytes())

    def nbtrack(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nbtrack", *argv], cwd=project,
                              capture_output=True, text=True, timeout=240)

    swept = nbtrack("sweep", "nb.ipynb", "-p", "x=1", "--no-progress")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    sweep_id = swept.stdout.split("sweep ", 1)[1].split()[0].rstrip(":")
    _, children = _sweep_runs(project, sweep_id)
    run_id = children[0].info.run_id
    # the run's notebook snapshot reaches the store with its end, after the sweep returns
    assert wait_for(lambda: client_for(project).list_artifacts(run_id, "notebook"), timeout=60)
    rerun = nbtrack("rerun", run_id[:8])
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for done in (swept, rerun):
        assert "[IPKernelApp]" not in done.stderr and "without encryption" not in done.stderr, done.stderr
    assert not list(project.glob("kernel-*"))  # no socket files left beside the notebook
