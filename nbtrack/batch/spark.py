"""The spark backend: each execution is one Spark task, so a sweep can use a cluster.

Written against the DataFrame API only (``spark.range`` + ``mapInPandas``): it
runs the same on classic pyspark (``local[*]`` here), Databricks and a Spark
Connect server, which have no RDDs. ``spark.range(n, numPartitions=n)`` puts
one combination in each partition, so Spark schedules them one task each, as
many at once as it has cores.

Inside the task, the execution runs in a fresh ``python -m nbtrack.batch.worker``
process: the kernel then inherits exactly the job's environment, not the Spark
Python worker's (which Spark reuses across tasks). The output notebook is
returned with the result, so the driver has it even when the task ran on
another machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nbtrack.batch.jobs import FAILED, Job, Outcome
from nbtrack.batch.protocol import parse_worker_event
from nbtrack.batch.worker import KILL_GRACE_S
from nbtrack.errors import NbtrackError

RESULT_SCHEMA = "index long, outcome string, notebook string"


def run_in_subprocess(job: Job) -> Outcome:
    """One job in a one-shot worker process; any failure becomes a FAILED outcome."""
    limit = job.timeout + KILL_GRACE_S + 30 if job.timeout else None
    try:
        done = subprocess.run(
            [sys.executable, "-m", "nbtrack.batch.worker"], input=job.to_json() + "\n",
            capture_output=True, text=True, timeout=limit, check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(index=job.index, status=FAILED, error=f"timed out after {job.timeout:g} s",
                       output=job.output, kernel_ended=False)
    for line in reversed(done.stdout.splitlines()):
        event = parse_worker_event(line)
        if event is not None and event["event"] == "done":
            return Outcome.from_dict(event)
    tail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
    return Outcome(index=job.index, status=FAILED, error=f"worker failed: {tail[0]}",
                   output=job.output, kernel_ended=False)


def _task(jobs: list[str]) -> Any:
    """The function Spark ships to executors: ids in, (index, outcome, notebook) rows out."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        for batch in batches:
            rows = []
            for position in batch["id"]:
                job = Job.from_json(jobs[int(position)])
                outcome = run_in_subprocess(job)
                try:
                    notebook = Path(job.output).read_text()
                except OSError:
                    notebook = ""
                rows.append({"index": job.index, "outcome": outcome.to_json(),
                             "notebook": notebook})
            yield pd.DataFrame(rows, columns=["index", "outcome", "notebook"])

    return run


class SparkExecutor:
    """Run jobs as Spark tasks on ``spark`` (default: the active session, else ``local[W]``)."""

    def __init__(self, workers: int = 1, spark: Any = None, master: str | None = None) -> None:
        self.workers = workers
        self.spark = spark
        self.master = master

    def _session(self) -> tuple[Any, bool]:
        if self.spark is not None:
            return self.spark, False
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise NbtrackError("--backend spark needs pyspark: pip install 'nbtrack[spark]'") from exc
        active = SparkSession.getActiveSession() if not self.master else None
        if active is not None:
            return active, False
        master = self.master or f"local[{self.workers}]"
        try:
            if master.startswith("sc://"):  # Spark Connect (Databricks Connect, Sail, Spark 4)
                session = SparkSession.builder.remote(master).getOrCreate()
            else:
                # Local Python workers must be this interpreter (it has nbtrack installed).
                os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
                builder = SparkSession.builder.appName("nbtrack-sweep").master(master)
                session = builder.config("spark.ui.enabled", "false").getOrCreate()
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise NbtrackError(f"cannot start Spark ({master}): {first}") from exc
        return session, True

    def run(self, jobs: list[Job]) -> list[Outcome]:
        """Execute every job as a task; output notebooks land at each job's output path."""
        if not jobs:
            return []
        spark, owned = self._session()
        payload = [job.to_json() for job in jobs]
        try:
            frame = spark.range(0, len(jobs), 1, len(jobs))
            rows = frame.mapInPandas(_task(payload), RESULT_SCHEMA).collect()
        finally:
            if owned:
                spark.stop()
        by_index = {job.index: job for job in jobs}
        outcomes = {}
        for row in rows:
            outcome = Outcome.from_dict(json.loads(row["outcome"]))
            output = Path(by_index[outcome.index].output)
            if row["notebook"] and not output.exists():
                output.parent.mkdir(parents=True, exist_ok=True)
                output.write_text(row["notebook"])
            outcomes[outcome.index] = outcome
        missing = [j for j in jobs if j.index not in outcomes]
        for job in missing:
            outcomes[job.index] = Outcome(index=job.index, status=FAILED, kernel_ended=False,
                                          error="no result from its Spark task", output=job.output)
        return [outcomes[job.index] for job in jobs]
