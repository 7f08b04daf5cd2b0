"""``nbtrack runs`` and ``nbtrack compare`` on a real embedded MLflow store: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from query_fixtures import EMPTY_NOTEBOOK, NOTEBOOK, XSS, StoreFixture, module_store

from nbtrack.cli.main import main


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreFixture]:
    yield from module_store(tmp_path_factory)


@pytest.fixture
def in_project(store: StoreFixture, monkeypatch: pytest.MonkeyPatch) -> StoreFixture:
    monkeypatch.chdir(store.root)
    return store


def test_runs_json_parses_newest_first(in_project: StoreFixture,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", NOTEBOOK, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    ids = in_project.ids
    assert [r["run_id"] for r in rows] == [ids["c"], ids["b"], ids["a"]]
    a = rows[2]
    assert a["params"] == {"depth": "3", "lr": "0.1", "note": XSS}
    assert a["metrics"] == {"accuracy": 0.9, "val_loss": 0.5}
    assert a["start_time"].endswith("+00:00") and a["duration_s"] == 65.0
    assert rows[0]["metrics"] == {"accuracy": "inf"}  # NaN val_loss is left out
    assert rows[0]["sweep_id"] == "sweep-1"


def test_runs_table_shows_full_ids_params_and_metrics(
    in_project: StoreFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", NOTEBOOK]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    ids = in_project.ids
    row = {k: next(line for line in lines if ids[k] in line) for k in ("a", "b", "c")}
    assert lines.index(row["c"]) < lines.index(row["b"]) < lines.index(row["a"])
    assert "0.45" in row["b"] and "0.01" in row["b"] and XSS in row["b"]
    assert "1m05s" in row["a"]


def test_runs_limit(in_project: StoreFixture, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", NOTEBOOK, "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert in_project.ids["c"] in out and in_project.ids["b"] not in out
    assert "showing the newest 1" in out


def test_runs_of_a_notebook_never_run(in_project: StoreFixture,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", EMPTY_NOTEBOOK]) == 0
    assert capsys.readouterr().out.strip() == (
        f"no runs yet for {EMPTY_NOTEBOOK}, run it with %load_ext nbtrack")
    assert main(["runs", EMPTY_NOTEBOOK, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_runs_unknown_notebook_exits_3(in_project: StoreFixture,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "notebooks/nope.ipynb"]) == 3
    assert capsys.readouterr().err.strip() == "nbtrack runs: no notebook at notebooks/nope.ipynb"


def test_runs_bad_limit_exits_2(in_project: StoreFixture,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", NOTEBOOK, "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err


def test_runs_with_project_and_tracking_uri_from_elsewhere(
    store: StoreFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    notebook = str(store.notebook())
    assert main(["runs", notebook, "--project", str(store.root), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert main(["runs", notebook, "--tracking-uri", store.tracking_uri, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_compare_marks_differences_and_best(in_project: StoreFixture,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    ids = in_project.ids
    assert main(["compare", ids["a"], ids["b"]]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any("lr ≠" in line and "0.1" in line and "0.01" in line for line in lines)
    assert not any("depth ≠" in line for line in lines)
    assert not any("note ≠" in line for line in lines)  # same value in both runs
    accuracy = next(line for line in lines if "accuracy ↑" in line)
    assert "★ 0.9" in accuracy and "★ 0.85" not in accuracy
    loss = next(line for line in lines if "val_loss ↓" in line)
    assert "★ 0.45 (★ 0.4)" in loss and "★ 0.5" not in loss
    assert "+model = fit(lr, epochs=3)" in out
    assert "figures/5-plot-cell-0.png" in out


def test_compare_json_is_the_documented_shape(in_project: StoreFixture,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    ids = in_project.ids
    assert main(["compare", ids["a"], ids["c"], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 2 and [r["run_id"] for r in data["runs"]] == [ids["a"], ids["c"]]
    loss = next(m for m in data["metrics"] if m["key"] == "val_loss")
    assert loss["values"][ids["c"]]["last"] == "nan"


def test_compare_html_file(in_project: StoreFixture, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "cmp.html"
    assert main(["compare", in_project.ids["a"], in_project.ids["b"], "--html", str(page)]) == 0
    assert f"wrote {page}" in capsys.readouterr().out
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "data:image/svg+xml;base64," in html


def test_compare_unknown_run_exits_3(in_project: StoreFixture,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", in_project.ids["a"], "0123456789abcdef"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("nbtrack compare: no run 0123456789abcdef in sqlite:///")
    assert "nbtrack runs NOTEBOOK" in err


def test_compare_in_a_folder_without_store_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["compare", "abc123"]) == 3
    assert "no nbtrack store" in capsys.readouterr().err
    assert not (tmp_path / ".nbtrack").exists()


def test_compare_missing_project_folder_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "abc", "--project", "/no/such/folder"]) == 3
    assert "no project folder at /no/such/folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["runs", "compare"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: nbtrack {command}" in out
    assert "--tracking-uri URI" in out and "--project DIR" in out and "--json" in out


def test_exit_code_of_the_real_command(store: StoreFixture) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-m", "nbtrack", "compare", "deadbeef", "--project", str(store.root)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 3
    assert "nbtrack compare: no run deadbeef" in done.stderr
