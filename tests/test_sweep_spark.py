"""The spark backend: every execution a Spark task (spark.range + mapInPandas, DataFrame API
only), on classic pyspark in local mode and on a Spark Connect server (Sail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbtrack.batch.sweep import sweep

pytestmark = [pytest.mark.kernel, pytest.mark.spark]

NOTEBOOKS = Path(__file__).parent / "notebooks_for_tests"


def _classic_spark_or_skip():
    """Classic pyspark needs its Python files and its jars at the same version."""
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    session = None
    try:
        session = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false") \
            .getOrCreate()
        session.range(1).mapInPandas(lambda it: it, "id long").collect()
    except Exception as exc:  # e.g. pyspark-client 4.2 files over pyspark 4.3 jars
        if session is not None:
            session.stop()
        pytest.skip(f"classic pyspark {pyspark.__version__} cannot run a Python UDF here: "
                    f"{str(exc).splitlines()[0][:200]}")
    return session


def _check(frame, project: Path) -> None:
    assert list(frame["status"]) == ["FINISHED", "FINISHED"]
    assert sorted(frame["metrics.score"]) == [11.0, 21.0]
    outputs = project / ".nbtrack" / "outputs" / frame.attrs["sweep_id"]
    assert (outputs / "1.ipynb").is_file() and (outputs / "2.ipynb").is_file()


def test_classic_pyspark_local(project):
    session = _classic_spark_or_skip()
    nb = project / "nb.ipynb"
    nb.write_bytes((NOTEBOOKS / "sweep_grid.ipynb").read_bytes())
    try:
        frame = sweep(nb, {"x": [1, 2]}, backend="spark", spark=session, workers=2)
    finally:
        session.stop()
    _check(frame, project)


def test_spark_connect_on_sail(project):
    pytest.importorskip("pysail")
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    try:
        _, port = server.listening_address
        nb = project / "nb.ipynb"
        nb.write_bytes((NOTEBOOKS / "sweep_grid.ipynb").read_bytes())
        frame = sweep(nb, {"x": [1, 2]}, backend="spark", spark_master=f"sc://127.0.0.1:{port}",
                      workers=2)
    finally:
        server.stop()
    _check(frame, project)
