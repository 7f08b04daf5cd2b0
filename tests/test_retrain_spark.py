"""nbtrack retrain through Spark: the input table written and appended to by Spark (Spark Connect on
a local Sail server), the challenger executed as a Spark task there (``--backend spark``), and the
retrain's row written into the lake through the same session (``spark_schema``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import client_for, wait_for, write_notebook

pytestmark = [pytest.mark.kernel, pytest.mark.spark]

pd = pytest.importorskip("pandas")
pytest.importorskip("deltalake")
pytest.importorskip("pyspark.sql.connect.session")
sail = pytest.importorskip("pysail.spark")

from deltalake import DeltaTable  # noqa: E402
from test_retrain import CELLS, finished_runs, input_versions  # noqa: E402


@pytest.fixture
def spark(tmp_path: Path) -> Any:
    from pyspark.sql import SparkSession

    try:
        server = sail.SparkConnectServer("127.0.0.1", 0)
        server.start()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Sail Spark Connect server cannot start: {exc}")
    host, port = server.listening_address
    connect_mode = os.environ.get("SPARK_CONNECT_MODE_ENABLED")
    session = SparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
    try:
        yield session
    finally:
        session.stop()
        server.stop()
        # builder.remote() switches the whole process to Spark Connect; later classic sessions need it off.
        if connect_mode is None:
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
        else:
            os.environ["SPARK_CONNECT_MODE_ENABLED"] = connect_mode


def _write(spark: Any, table: Path, quality: list[float]) -> None:
    n = len(quality)
    frame = pd.DataFrame({"x": [float(i % 4) for i in range(n)], "y": [int(i % 4 >= 2) for i in range(n)],
                          "quality": quality})
    spark.createDataFrame(frame).write.format("delta").mode("append").save(str(table))


def test_retrain_through_spark_on_sail(project, spark):
    import subprocess
    import sys

    from nbtrack.batch.retrain import retrain

    lake = project / "spark_lake"
    (project / "pyproject.toml").write_text(f'[tool.nbtrack]\nspark_schema = "{lake}"\n')
    table = project / "data" / "train"
    _write(spark, table, [0.5] * 4)
    write_notebook(project / "train.ipynb", CELLS)
    subprocess.run([sys.executable, "-m", "papermill", "train.ipynb", "out.ipynb", "--no-progress-bar"],
                   cwd=project, check=True, capture_output=True)
    assert wait_for(lambda: [r for r in finished_runs(project) if input_versions(r)], timeout=120)
    champion = finished_runs(project)[0]

    assert retrain("train.ipynb", "val_acc", backend="spark", spark=spark).outcome == "unchanged"
    _write(spark, table, [1.0] * 4)  # Spark's append: version 1
    events: list[dict[str, Any]] = []
    decision = retrain("train.ipynb", "val_acc", backend="spark", spark=spark, progress=events.append)
    assert events[-1]["state"] == "done" and events[-1]["status"] == "FINISHED"  # the re-run's progress
    assert {e["run_id"] for e in events if "run_id" in e} == {decision.challenger}

    assert decision.outcome == "retrained" and decision.status == "FINISHED"
    assert decision.champion == champion.info.run_id
    challenger = client_for(project).get_run(decision.challenger)
    assert input_versions(challenger) == {str(table): 1}
    assert challenger.data.tags["nbtrack.retrain_of"] == champion.info.run_id
    assert challenger.data.metrics["val_acc"] == 0.75 and decision.champion_value == 0.5
    assert decision.better and not decision.promoted
    assert (project / ".nbtrack" / "outputs").is_dir()  # the Spark task's output notebook came back
    assert Path(decision.output).is_file()

    rows = DeltaTable(str(lake / "retrains")).to_pyarrow_table().to_pylist()  # written by Spark...
    assert not (project / ".nbtrack" / "lake" / "retrains").exists()  # ...not by deltalake
    assert len(rows) == 1
    assert (rows[0]["champion"], rows[0]["challenger"], rows[0]["better"]) == (
        champion.info.run_id, decision.challenger, True)
    assert json.loads(rows[0]["trigger"]) == [
        {"table": str(table), "label": "data/train", "champion": 0, "current": 1}]
