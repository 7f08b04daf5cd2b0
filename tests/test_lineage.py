"""read_delta returns data, pins and time-travels versions; input profiles detect drift."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("deltalake")

from deltalake import DeltaTable, write_deltalake  # noqa: E402

import nbtrack  # noqa: E402
from nbtrack.errors import NotFound, StoreUnavailable  # noqa: E402
from nbtrack.lake.profile import (  # noqa: E402
    input_drift,  # noqa: E402
    profile_table,
    schema_hash,
)


def dataset(seed: int = 0, *, shift: float = 0.0, rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": rng.normal(0 + shift, 1, rows),
        "y": rng.integers(0, 2, rows),
        "city": rng.choice(["paris", "lyon", "nice"], rows, p=[0.5, 0.3, 0.2]),
        "ok": rng.random(rows) > 0.5,
    })


def as_input(uri: str, version: int | None = None) -> dict:
    """What read_delta records for a table (the payload of its ``input`` event)."""
    dt = DeltaTable(uri, version=version)
    data = dt.to_pyarrow_table()
    return {"table_uri": uri, "version": dt.version(), "schema_hash": schema_hash(data.schema),
            "rows": data.num_rows, "profile": json.loads(json.dumps(profile_table(data)))}


def test_read_delta_without_a_session_returns_the_data(tmp_path: Path):
    uri = str(tmp_path / "t")
    write_deltalake(uri, dataset())
    df = nbtrack.read_delta(uri)
    assert isinstance(df, pd.DataFrame)
    assert df.shape == (2000, 4)
    assert list(nbtrack.read_delta(uri, columns=["x"]).columns) == ["x"]


def test_time_travel_reads_earlier_rows(tmp_path: Path):
    uri = str(tmp_path / "t")
    first = pd.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    write_deltalake(uri, first)
    write_deltalake(uri, pd.DataFrame({"id": [3], "v": ["c"]}), mode="append")
    write_deltalake(uri, pd.DataFrame({"id": [9], "v": ["z"]}), mode="overwrite")

    assert nbtrack.read_delta(uri)["id"].tolist() == [9]
    assert nbtrack.read_delta(uri, version=0).sort_values("id").reset_index(drop=True).equals(first)
    assert sorted(nbtrack.read_delta(uri, version=1)["id"]) == [1, 2, 3]


def test_rerun_pins_input_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    uri = str(tmp_path / "t")
    write_deltalake(uri, pd.DataFrame({"id": [1]}))
    write_deltalake(uri, pd.DataFrame({"id": [2]}), mode="append")
    monkeypatch.setenv("NBTRACK_INPUT_VERSIONS", json.dumps({uri: 0}))
    assert nbtrack.read_delta(uri)["id"].tolist() == [1]
    assert sorted(nbtrack.read_delta(uri, version=1)["id"]) == [1, 2]  # explicit wins


def test_missing_or_corrupt_table_is_a_clear_error(tmp_path: Path):
    with pytest.raises(NotFound, match="no Delta table"):
        nbtrack.read_delta(str(tmp_path / "nothing"))
    uri = tmp_path / "t"
    write_deltalake(str(uri), pd.DataFrame({"id": [1]}))
    (uri / "_delta_log" / "00000000000000000000.json").write_text("{broken")
    with pytest.raises(StoreUnavailable, match="cannot read Delta table") as info:
        nbtrack.read_delta(str(uri))
    assert "\n" not in str(info.value)
    write_deltalake(str(tmp_path / "t2"), pd.DataFrame({"id": [1]}))
    with pytest.raises(StoreUnavailable, match="version 5"):
        nbtrack.read_delta(str(tmp_path / "t2"), version=5)


def test_profile_is_compact_and_typed(tmp_path: Path):
    uri = str(tmp_path / "t")
    frame = dataset()
    frame.loc[:99, "x"] = np.nan
    write_deltalake(uri, frame)
    profile = as_input(uri)["profile"]
    assert profile["x"]["type"] == "double"
    assert profile["x"]["null_frac"] == pytest.approx(0.05)
    assert -0.2 < profile["x"]["mean"] < 0.2 and 0.8 < profile["x"]["std"] < 1.2
    assert [v for v, _ in profile["city"]["top"]] == ["paris", "lyon", "nice"]
    assert profile["city"]["distinct"] == 3
    assert 0.4 < profile["ok"]["mean"] < 0.6
    assert len(json.dumps(profile)) < 2000


def test_identical_data_is_not_drift_even_at_a_new_version(tmp_path: Path):
    uri = str(tmp_path / "t")
    write_deltalake(uri, dataset(seed=1))
    a = as_input(uri)
    write_deltalake(uri, dataset(seed=1), mode="overwrite")  # new version, same data
    b = as_input(uri)
    assert (a["version"], b["version"]) == (0, 1)
    assert input_drift([a], [b]) == []


def test_changed_data_is_drift_naming_the_columns_that_moved(tmp_path: Path):
    uri = str(tmp_path / "t")
    write_deltalake(uri, dataset(seed=1))
    a = as_input(uri)
    changed = dataset(seed=1, shift=0.8)
    changed["city"] = np.where(changed["city"] == "nice", "paris", changed["city"])
    write_deltalake(uri, changed, mode="overwrite")
    b = as_input(uri)

    drifts = input_drift([a], [b], threshold=0.1)
    assert len(drifts) == 1
    drift = drifts[0]
    assert {c.column for c in drift.columns} == {"x", "city"}
    assert "mean" in next(c.reason for c in drift.columns if c.column == "x")
    assert drift.summary().startswith(f"{uri} (v0 → v1): ")
    assert drift.to_dict()["columns"][0]["column"] in ("x", "city")
    # A looser threshold ignores the category reshuffle (20% of rows) but not the shift.
    assert {c.column for c in input_drift([a], [b], threshold=0.5)[0].columns} == {"x"}


def test_schema_change_and_tables_read_by_one_run_only(tmp_path: Path):
    uri = str(tmp_path / "t")
    write_deltalake(uri, dataset(seed=2))
    a = as_input(uri)
    write_deltalake(uri, dataset(seed=2).assign(extra=1), mode="overwrite", schema_mode="overwrite")
    b = as_input(uri)
    [drift] = input_drift([a], [b])
    assert drift.schema_changed and [c.reason for c in drift.columns] == ["added"]
    other = dict(a, table_uri="/data/other")
    only = input_drift([a, other], [a])
    assert [(d.table_uri, d.only_in) for d in only] == [("/data/other", "a")]


def test_read_delta_in_a_notebook_lands_in_the_lake_inputs_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """End to end: a real IPython shell with nbtrack loaded, delivered by the real loop."""
    pl = pytest.importorskip("polars")
    from IPython.core.interactiveshell import InteractiveShell

    (tmp_path / ".git").mkdir()  # the project root
    data = str(tmp_path / "data")
    write_deltalake(data, dataset(seed=3, rows=300))
    monkeypatch.setenv("NBTRACK_DELIVERY", "thread")
    monkeypatch.setenv("NBTRACK_NOTEBOOK", str(tmp_path / "train.ipynb"))
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell()
    try:
        shell.run_cell("%load_ext nbtrack")
        result = shell.run_cell(f"import nbtrack\ndf = nbtrack.read_delta({data!r})\nlen(df)")
        assert result.result == 300
        shell.run_cell("nbtrack.flush(60)")
    finally:
        shell.run_cell("%unload_ext nbtrack")
    inputs = tmp_path / ".nbtrack" / "lake" / "inputs"
    deadline = time.monotonic() + 60
    while not (inputs / "_delta_log").is_dir() and time.monotonic() < deadline:
        time.sleep(0.2)
    rows = pl.read_delta(str(inputs)).to_dicts()
    assert [(r["table_uri"], r["version"], r["rows"]) for r in rows] == [(data, 0, 300)]
    assert json.loads(rows[0]["profile"])["city"]["distinct"] == 3
    runs = pl.read_delta(str(tmp_path / ".nbtrack" / "lake" / "runs"))
    assert rows[0]["run_id"] in runs["run_id"].to_list()
