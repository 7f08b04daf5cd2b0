"""The local backend with plain papermill (nbtrack not loaded in the kernels): W kernels at
once, each execution in its own environment, failures and time-outs isolated, output
notebooks kept, progress reported."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from helpers import write_notebook

from nbtrack.batch.executor import LocalExecutor
from nbtrack.batch.jobs import FAILED, FINISHED, Job
from nbtrack.batch.progress import Progress

pytestmark = pytest.mark.kernel

NOTEBOOKS = Path(__file__).parent / "notebooks_for_tests"
GRID_NB = str(NOTEBOOKS / "sweep_grid.ipynb")


def _job(tmp_path: Path, index: int, **params: object) -> Job:
    return Job(index=index, notebook=GRID_NB, output=str(tmp_path / "out" / f"{index}.ipynb"),
               params=dict(params), load_extension=False, cwd=str(tmp_path))


def test_parallel_executions_with_failures_isolated(tmp_path):
    jobs = [_job(tmp_path, i, x=i, y=1, fail_x=2, fail_y=1, sleep_s=1.0) for i in range(1, 5)]
    events: list[tuple[float, dict]] = []
    with LocalExecutor(workers=2, log_dir=tmp_path / "logs") as executor:
        outcomes = executor.run(jobs, lambda e: events.append((time.monotonic(), e)))

    assert [o.status for o in outcomes] == [FINISHED, FAILED, FINISHED, FINISHED]
    assert outcomes[1].error == "ValueError: boom at x=2, y=1" and outcomes[1].error_cell == 3
    # two at once: at some point two executions had started and not ended
    running, most = set(), 0
    for _, event in events:
        if event["event"] == "start":
            running.add(event["index"])
        elif event["event"] == "done":
            running.discard(event["index"])
        most = max(most, len(running))
    assert most == 2  # (wall-clock speed-up is bench/sweep.py's job: this machine is shared)
    for outcome in outcomes:
        nb = nbformat.read(outcome.output, as_version=4)
        assert nb.metadata.papermill.parameters["x"] == outcome.index
    failed_nb = nbformat.read(outcomes[1].output, as_version=4)
    assert failed_nb.metadata.papermill.exception is True  # evidence kept, banner included
    cells = [e for _, e in events if e["event"] == "cell" and e["index"] == 1]
    assert [c["cell"] for c in cells] == [1, 2, 3, 4] and cells[0]["cells"] == 4


def test_each_kernel_sees_its_own_environment(tmp_path):
    probe = tmp_path / "probe.ipynb"
    write_notebook(probe, ["import os\nprint(os.environ['NBTRACK_RUN_ID'])"])
    jobs = [Job(index=i, notebook=str(probe), output=str(tmp_path / f"{i}.ipynb"), params={},
                env={"NBTRACK_RUN_ID": f"run-{i}"}, load_extension=False) for i in range(1, 4)]
    with LocalExecutor(workers=2) as executor:
        outcomes = executor.run(jobs)
    for outcome in outcomes:
        out = nbformat.read(outcome.output, as_version=4)
        assert out.cells[0].outputs[0].text.strip() == f"run-{outcome.index}"


def test_a_kernel_started_ahead_sees_its_own_job_environment_and_cwd(tmp_path):
    """One worker: jobs 2 and 3 get kernels started while the job before them runs (with job
    1's or 2's variables nowhere in sight), each in its own job's working directory."""
    probe = tmp_path / "probe.ipynb"
    write_notebook(probe, [
        "import json, os, time, psutil\n"
        "print(json.dumps({'tags': os.environ.get('NBTRACK_RUN_TAGS'), 'cwd': os.getcwd(),\n"
        "                  'born': psutil.Process().create_time()}))",
        "time.sleep(1.5)"])
    dirs = [tmp_path / f"cwd{i}" for i in range(1, 4)]
    for folder in dirs:
        folder.mkdir()
    envs = [{"NBTRACK_RUN_TAGS": '{"job": "1"}', "NBTRACK_NOTEBOOK": "one"},
            {"NBTRACK_NOTEBOOK": "two"},
            {"NBTRACK_RUN_TAGS": '{"job": "3"}', "NBTRACK_NOTEBOOK": "three"}]
    jobs = [Job(index=i, notebook=str(probe), output=str(tmp_path / "out" / f"{i}.ipynb"),
                params={}, env=envs[i - 1], cwd=str(dirs[i - 1]), load_extension=False)
            for i in range(1, 4)]
    started: dict[int, float] = {}

    def on_event(event: dict) -> None:
        if event["event"] == "start":
            started[event["index"]] = time.time()

    with LocalExecutor(workers=1) as executor:
        outcomes = executor.run(jobs, on_event)

    assert [o.status for o in outcomes] == [FINISHED] * 3
    seen = {}
    for outcome in outcomes:
        out = nbformat.read(outcome.output, as_version=4)
        seen[outcome.index] = json.loads(out.cells[0].outputs[0].text)
    assert [seen[i]["tags"] for i in (1, 2, 3)] == ['{"job": "1"}', None, '{"job": "3"}']
    assert [Path(seen[i]["cwd"]) for i in (1, 2, 3)] == dirs
    for index in (2, 3):  # started ahead: the kernel existed before its job began
        assert seen[index]["born"] < started[index] - 0.5


def test_timeout_interrupts_the_kernel_and_the_next_job_runs(tmp_path):
    jobs = [_job(tmp_path, 1, sleep_s=60.0), _job(tmp_path, 2, x=5)]
    jobs[0].timeout = 3
    with LocalExecutor(workers=1) as executor:
        outcomes = executor.run(jobs)
    assert outcomes[0].status == FAILED
    assert outcomes[0].error.startswith("timed out after 3 s")
    assert outcomes[0].kernel_ended  # interrupted, not killed: the kernel ended its run itself
    assert outcomes[1].status == FINISHED
    assert Path(outcomes[0].output).is_file()
    cells = nbformat.read(outcomes[0].output, as_version=4).cells
    (slept,) = [c for c in cells if c.cell_type == "code" and "time.sleep(sleep_s)" in c.source]
    errors = [o.get("ename") for o in slept.outputs if o.output_type == "error"]
    assert errors == ["KeyboardInterrupt"]  # the 60 s sleep was cut short, not waited out


def test_a_dying_kernel_fails_only_its_execution(tmp_path):
    crash = tmp_path / "crash.ipynb"
    write_notebook(crash, ["import os\nos._exit(1)"])
    jobs = [Job(index=1, notebook=str(crash), output=str(tmp_path / "1.ipynb"), params={},
                load_extension=False), _job(tmp_path, 2)]
    with LocalExecutor(workers=1) as executor:
        outcomes = executor.run(jobs)
    assert outcomes[0].status == FAILED and not outcomes[0].kernel_ended
    assert "died" in outcomes[0].error
    assert outcomes[1].status == FINISHED


def test_progress_counts_and_callback(tmp_path):
    seen: list[dict] = []
    with Progress(3, progress=seen.append, run_ids={1: "r1"}) as bar:
        bar.started(1)
        bar.cell(1, 2, 5)
        bar.finished(1, FINISHED)
        bar.finished(1, FINISHED)  # a second report of the same end is ignored
        bar.started(2)
        bar.finished(2, FAILED, "boom")
        bar.note("done")
    assert seen[0] == {"state": "running", "done": 0, "failed": 0, "running": 1, "total": 3,
                       "index": 1, "run_id": "r1"}
    assert seen[1]["cell"] == 2 and seen[1]["cells"] == 5
    assert [e["state"] for e in seen] == ["running", "running", "finished", "running", "failed",
                                          "done"]
    assert seen[-1]["done"] == 1 and seen[-1]["failed"] == 1 and seen[-1]["running"] == 0
    json.dumps(seen)  # plain values: the server forwards them as they are

    def broken(event: dict) -> None:
        raise RuntimeError("no")

    with pytest.warns(UserWarning, match="progress callback failed"):
        with Progress(1, progress=broken) as bar:
            bar.started(1)
            bar.finished(1, FINISHED)
