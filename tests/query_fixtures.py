"""A real embedded MLflow store laid out exactly as nbtrack's MLflow sink writes it.

Used by the query and CLI tests. Runs of ``notebooks/train.ipynb``, oldest first:

- ``a`` lr=0.1: val_loss 1.0, 0.6, 0.5; accuracy 0.7, 0.9; two executions of
  the figure cell; an XSS string as a param.
- ``b`` lr=0.01: val_loss 0.9, 0.4, 0.45; accuracy 0.75, 0.85; training cell
  source changed.
- ``c`` lr=0.001, a sweep child: val_loss NaN, accuracy inf.

Plus ``other`` in ``notebooks/other.ipynb``, and ``notebooks/empty.ipynb`` never run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

XSS = "<img src=x onerror=alert(1)>"
NOTEBOOK = "notebooks/train.ipynb"
EMPTY_NOTEBOOK = "notebooks/empty.ipynb"
OTHER_NOTEBOOK = "notebooks/other.ipynb"
TRAIN_SOURCE_A = "model = fit(lr)\nscore = evaluate(model)\n"
TRAIN_SOURCE_B = "model = fit(lr, epochs=3)\nscore = evaluate(model)\n"


@dataclass
class StoreFixture:
    root: Path
    tracking_uri: str
    ids: dict[str, str] = field(default_factory=dict)

    def notebook(self, rel: str = NOTEBOOK) -> Path:
        return self.root / rel


def _notebook_json() -> str:
    return json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _png(path: Path, color: str) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1), dpi=20)
    figure.add_subplot().plot([0, 1], [0, 1], color=color)
    figure.savefig(path, format="png")


def _cells(train_source: str) -> list[dict]:
    def record(index: int, cell_id: str, source: str, count: int) -> dict:
        return {"exec_count": count, "cell_id": cell_id, "source": source,
                "source_sha": str(hash(source)), "start": "2024-01-01T00:00:00+00:00",
                "duration_s": 0.01, "status": "ok", "error_name": None,
                "error_value": None, "outputs": [], "index": index}

    return [
        record(0, "params", "lr = 0.1\n", 1),
        record(1, "train-cell", "model = fit(lr)\n", 2),  # superseded by exec 4 below
        record(2, "plot-cell", "plot(model)\n", 3),
        record(1, "train-cell", train_source, 4),
    ]


def _make_run(client, experiment_id: str, *, name: str, start: int, params: dict,
              metrics: dict[str, list[float]], tags: dict, figures: list[str],
              cells: list[dict] | None, tmp: Path) -> str:
    from mlflow.entities import Metric, Param, RunTag

    from nbtrack import tags as t

    run = client.create_run(experiment_id, start_time=start, run_name=name,
                            tags={t.RUN_KEY: f"key-{name}", t.ORIGIN: "interactive", **tags})
    run_id = run.info.run_id
    history = [Metric(k, v, start + step, step) for k, vs in metrics.items()
               for step, v in enumerate(vs)]
    client.log_batch(run_id, metrics=history,
                     params=[Param(k, str(v)) for k, v in params.items()],
                     tags=[RunTag(t.CELLS, "4")])
    figdir = tmp / name / "figures"
    figdir.mkdir(parents=True)
    for figure in figures:
        _png(figdir / figure, "red" if name == "a" else "blue")
    if figures:
        client.log_artifacts(run_id, str(figdir), "figures")
    if cells is not None:
        cells_file = tmp / name / "cells.json"
        cells_file.write_text(json.dumps(cells))
        client.log_artifact(run_id, str(cells_file), "nbtrack")
    client.set_terminated(run_id, "FINISHED", end_time=start + 65_000)
    return run_id


def build_store(root: Path) -> StoreFixture:
    """Create the project, its notebooks and the runs (takes a few seconds: a new SQLite store)."""
    from nbtrack import tags as t
    from nbtrack.project import Project
    from nbtrack.store import get_or_create_experiment, open_client

    (root / ".git").mkdir(parents=True)
    (root / "notebooks").mkdir()
    for rel in (NOTEBOOK, EMPTY_NOTEBOOK, OTHER_NOTEBOOK):
        (root / rel).write_text(_notebook_json())
    project = Project(root)
    uri = project.default_tracking_uri
    client = open_client(uri)
    train = get_or_create_experiment(client, NOTEBOOK, project)
    other = get_or_create_experiment(client, OTHER_NOTEBOOK, project)
    tmp = root / "_fixture_files"
    base = int(time.time() * 1000) - 3_600_000
    store = StoreFixture(root, uri)
    store.ids["a"] = _make_run(
        client, train, name="a", start=base, tmp=tmp,
        params={"lr": 0.1, "depth": 3, "note": XSS},
        metrics={"val_loss": [1.0, 0.6, 0.5], "accuracy": [0.7, 0.9]},
        tags={t.NOTEBOOK: NOTEBOOK}, figures=["3-plot-cell-0.png", "5-plot-cell-0.png"],
        cells=_cells(TRAIN_SOURCE_A))
    store.ids["b"] = _make_run(
        client, train, name="b", start=base + 60_000, tmp=tmp,
        params={"lr": 0.01, "depth": 3, "note": XSS},
        metrics={"val_loss": [0.9, 0.4, 0.45], "accuracy": [0.75, 0.85]},
        tags={t.NOTEBOOK: NOTEBOOK, t.RERUN_OF: "a-run"}, figures=["3-plot-cell-0.png"],
        cells=_cells(TRAIN_SOURCE_B))
    store.ids["c"] = _make_run(
        client, train, name="c", start=base + 120_000, tmp=tmp,
        params={"lr": 0.001, "depth": 3},
        metrics={"val_loss": [float("nan")], "accuracy": [float("inf")]},
        tags={t.NOTEBOOK: NOTEBOOK, t.SWEEP_ID: "sweep-1", t.PARENT_RUN_ID: "parent-1"},
        figures=[], cells=None)
    store.ids["other"] = _make_run(
        client, other, name="other", start=base + 180_000, tmp=tmp,
        params={"batch": 32}, metrics={"accuracy": [0.5]},
        tags={t.NOTEBOOK: OTHER_NOTEBOOK}, figures=[], cells=None)
    return store


_built: list[StoreFixture] = []


def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreFixture]:
    """Body of each test module's ``store`` fixture, without MLFLOW_TRACKING_URI.

    The store is read-only for the tests, so it is built once per test session.
    """
    patch = pytest.MonkeyPatch()
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        if not _built:
            _built.append(build_store(tmp_path_factory.mktemp("project")))
        yield _built[0]
    finally:
        patch.undo()


# -- runs delivered by the real delivery loop into MLflow and the lake --------------------------


def journal_session(root: Path, session: str, *, alive: bool = True) -> Any:
    """A journal as a kernel writes it; ``alive`` names this process as its kernel."""
    import os
    import socket
    import sys

    from nbtrack.journal import JournalWriter
    from nbtrack.project import Project

    writer = JournalWriter(Project(root).journal_dir, session)
    writer.append("session_start", pid=os.getpid() if alive else 2**22 + 17,
                  host=socket.gethostname(), python=sys.version.split()[0],
                  executable=sys.executable, cwd=str(root), version="0", delivery="process")
    return writer


def journal_run(writer: Any, root: Path, key: str, *, params: dict[str, Any],
                metrics: dict[str, list[float]], inputs: list[dict[str, Any]] = (),
                end: str | None = "FINISHED", notebook: str = NOTEBOOK,
                name: str | None = "") -> None:
    """One run's events in ``writer``'s journal: start, params, metric points, inputs, end.

    ``name`` defaults to ``run-<key>``; None leaves naming to MLflow.
    """
    from nbtrack import tags as t
    from nbtrack.project import Project
    from nbtrack.store import resolve

    project = Project(root)
    writer.append(
        "run_start", run=key, experiment=project.experiment_name(root / notebook),
        notebook=str(root / notebook), project=str(root), tracking_uri=resolve(project=project).tracking_uri,
        name=f"run-{key}" if name == "" else name, mlflow_run_id=None, parent_run_id=None,
        tags={t.RUN_KEY: key, t.ORIGIN: "interactive", t.NOTEBOOK: notebook}, origin="interactive",
    )
    writer.append("params", run=key, params={k: str(v) for k, v in params.items()},
                  values=params, source="parameters", cell_id="params")
    for name, values in metrics.items():
        for step, value in enumerate(values):
            writer.append("metric", run=key, key=name, value=value, step=step, cell_id="train",
                          exec_count=2)
    for record in inputs:
        writer.append("input", run=key, **record)
    if end:
        writer.append("run_end", run=key, status=end, notebook=None, papermill_output=None,
                      out_of_order=[])


def deliver_all(root: Path, *, passes: int = 20) -> Any:
    """Run the real delivery loop until nothing moves; returns the Deliverer (closed)."""
    from nbtrack.delivery.deliverer import Deliverer
    from nbtrack.project import Project

    deliverer = Deliverer(Project(root))
    try:
        for _ in range(passes):
            if not deliverer.run_once():
                break
    finally:
        deliverer.close()
    return deliverer


def input_record(table_uri: str, data: Any, version: int = 0) -> dict[str, Any]:
    """What ``nbtrack.read_delta`` records for an Arrow table ``data``."""
    from nbtrack.lake.profile import profile_table, schema_hash

    return {"table_uri": table_uri, "version": version, "schema_hash": schema_hash(data.schema),
            "rows": data.num_rows, "profile": profile_table(data)}
