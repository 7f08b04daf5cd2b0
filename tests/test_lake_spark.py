"""The Spark writer, exercised for real: Spark Connect against a local Sail server.

delta-spark's JVM jars cannot be downloaded here; Sail (a Spark Connect engine
in Rust) writes real Delta tables through the same DataFrame/SQL API that
Databricks serves, and deltalake reads them back.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")
pytest.importorskip("pyspark.sql.connect.session")
sail = pytest.importorskip("pysail.spark")

from deltalake import DeltaTable, write_deltalake  # noqa: E402

from nbtrack.lake.spark import spark_profile  # noqa: E402
from nbtrack.sinks.delta import DeltaSink  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_lake import write_run  # noqa: E402


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    import os

    from pyspark.sql import SparkSession

    try:
        server = sail.SparkConnectServer("127.0.0.1", 0)
        server.start()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Sail Spark Connect server cannot start: {exc}")
    host, port = server.listening_address
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("warehouse"))  # Sail's default warehouse is relative
    connect_mode = os.environ.get("SPARK_CONNECT_MODE_ENABLED")
    session = SparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
    try:
        yield session
    finally:
        session.stop()
        server.stop()
        os.chdir(cwd)
        # builder.remote() switches the whole process to Spark Connect; later classic sessions need it off.
        if connect_mode is None:
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
        else:
            os.environ["SPARK_CONNECT_MODE_ENABLED"] = connect_mode


def test_sink_writes_delta_through_spark_exactly_once(spark: object, tmp_path: Path):
    target = str(tmp_path / "lake")
    events = write_run(tmp_path / "j", "s1", "k1", params={"lr": 0.1}, losses=(0.9, 0.5, 0.7))
    sink = DeltaSink(str(tmp_path / "unused"), spark_schema=target)
    assert sink.writer.name == "spark"
    sink.deliver(events[:6], journal_dir=tmp_path, run_ids={"k1": "r1"})
    sink.deliver(events, journal_dir=tmp_path, run_ids={"k1": "r1"})
    # A second delivery process (fresh ledger cache) replays everything.
    DeltaSink(str(tmp_path / "unused"), spark_schema=target).deliver(
        events, journal_dir=tmp_path, run_ids={"k1": "r1"})

    # Read back by another engine: these are standard Delta tables.
    assert pl.read_delta(f"{target}/events")["event_id"].n_unique() == len(events)
    assert pl.read_delta(f"{target}/events").height == len(events)
    assert pl.read_delta(f"{target}/metrics").height == 6
    runs = pl.read_delta(f"{target}/runs")
    assert runs.select("run_id", "status").rows() == [("r1", "FINISHED")]
    board = pl.read_delta(f"{target}/leaderboard").to_dicts()[0]
    assert board["params.lr"] == "0.1"
    assert board["metrics.val_loss"] == pytest.approx(0.7)
    assert board["best.val_loss"] == pytest.approx(0.5)
    assert not (tmp_path / "unused").exists()  # nothing went to the deltalake path


def test_sink_writes_into_a_catalog_schema(spark: object, tmp_path: Path):
    spark.sql("CREATE SCHEMA IF NOT EXISTS nbtrack_test")
    events = write_run(tmp_path / "j", "s1", "k1")
    sink = DeltaSink(str(tmp_path / "unused"), spark_schema="nbtrack_test")
    sink.deliver(events, journal_dir=tmp_path, run_ids={})
    sink.deliver(events, journal_dir=tmp_path, run_ids={})
    assert spark.read.table("nbtrack_test.events").count() == len(events)
    assert spark.read.table("nbtrack_test.metrics").count() == 6
    assert spark.sql("SELECT status FROM nbtrack_test.runs").collect()[0]["status"] == "FINISHED"


def test_read_table_through_spark_time_travels_and_profiles(spark: object, tmp_path: Path):
    import pandas as pd

    import nbtrack

    uri = str(tmp_path / "data")
    write_deltalake(uri, pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}))
    write_deltalake(uri, pd.DataFrame({"x": [10.0], "c": ["z"]}), mode="append")

    df = nbtrack.read_table(uri, spark=spark)
    assert df.count() == 4
    old = nbtrack.read_table(uri, version=0, spark=spark)
    assert sorted(r["x"] for r in old.collect()) == [1.0, 2.0, 3.0]
    rows, profile = spark_profile(old)
    assert rows == 3
    assert profile["x"]["mean"] == pytest.approx(2.0) and profile["c"]["distinct"] == 2
    assert DeltaTable(uri).version() == 1
