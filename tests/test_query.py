"""The query layer on a real embedded MLflow store: listing runs, comparing them, rendering."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from query_fixtures import (
    EMPTY_NOTEBOOK,
    NOTEBOOK,
    OTHER_NOTEBOOK,
    TRAIN_SOURCE_A,
    XSS,
    StoreFixture,
    module_store,
)

import nbtrack
from nbtrack.errors import NotFound, UsageProblem
from nbtrack.query.compare import compare, metric_direction
from nbtrack.query.compare_html import render_comparison_html
from nbtrack.query.render import render_runs_html
from nbtrack.query.runs import BASE_COLUMNS, list_runs


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreFixture]:
    yield from module_store(tmp_path_factory)


def test_runs_newest_first_with_params_metrics_and_tags(store: StoreFixture) -> None:
    df = nbtrack.runs(str(store.notebook()))
    assert list(df["run_id"]) == [store.ids["c"], store.ids["b"], store.ids["a"]]
    assert list(df.columns[: len(BASE_COLUMNS)]) == BASE_COLUMNS
    assert {"params.lr", "params.depth", "params.note", "metrics.val_loss",
            "metrics.accuracy"} <= set(df.columns)
    by_name = df.set_index("run_name")
    assert by_name.at["a", "params.lr"] == "0.1"
    assert by_name.at["b", "metrics.val_loss"] == 0.45  # last value, not the best 0.4
    assert by_name.at["c", "metrics.accuracy"] == math.inf  # MLflow stores inf as float max
    assert math.isnan(by_name.at["c", "metrics.val_loss"])
    assert by_name.at["c", "sweep_id"] == "sweep-1"
    assert by_name.at["c", "parent_run_id"] == "parent-1"
    assert by_name.at["b", "rerun_of"] == "a-run"
    assert by_name.at["a", "duration_s"] == 65.0
    assert str(df["start_time"].dt.tz) == "UTC"
    assert store.ids["other"] not in set(df["run_id"])


def test_runs_limit_and_relative_path(store: StoreFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(store.root)
    df = list_runs(NOTEBOOK, max_results=1)
    assert list(df["run_name"]) == ["c"]


def test_notebook_never_run_gives_empty_frame(store: StoreFixture) -> None:
    df = list_runs(str(store.notebook(EMPTY_NOTEBOOK)))
    assert df.empty
    assert list(df.columns) == BASE_COLUMNS


def test_missing_notebook_is_not_found(store: StoreFixture) -> None:
    with pytest.raises(NotFound, match="no notebook at .*nope.ipynb"):
        list_runs(str(store.root / "nope.ipynb"))


def test_no_notebook_outside_a_session_asks_for_one() -> None:
    with pytest.raises(UsageProblem, match="pass its path"):
        nbtrack.runs()


def test_reading_never_creates_a_store(tmp_path: Path) -> None:
    notebook = tmp_path / "fresh.ipynb"
    notebook.write_text("{}")
    assert list_runs(str(notebook)).empty
    assert not (tmp_path / ".nbtrack").exists()


def test_params_diff_flags(store: StoreFixture) -> None:
    ids = store.ids
    cmp = nbtrack.compare(ids["a"], ids["b"], ids["c"], project=store.root)
    assert cmp.run_ids == [ids["a"], ids["b"], ids["c"]]
    differs = cmp.params["differs"].to_dict()
    assert differs == {"depth": False, "lr": True, "note": True}
    assert cmp.params.at["lr", ids["b"]] == "0.01"
    assert cmp.params.at["note", ids["c"]] is None


@pytest.mark.parametrize(
    ("name", "direction"),
    [("val_loss", "min"), ("test_rmse", "min"), ("error_rate", "min"), ("mape", "min"),
     ("accuracy", "max"), ("f1_score", "max"), ("lossy_count", "max"), ("r2", "max")],
)
def test_metric_direction(name: str, direction: str) -> None:
    assert metric_direction(name) == direction


def test_best_marking_in_both_directions(store: StoreFixture) -> None:
    ids = store.ids
    cmp = compare([ids["a"], ids["b"], ids["c"]], project=store.root)
    assert cmp.directions == {"accuracy": "max", "val_loss": "min"}
    # lower is better: b has the lowest last (0.45) and lowest ever (0.4) val_loss
    assert cmp.best_runs["val_loss"] == {"last": [ids["b"]], "best": [ids["b"]]}
    assert cmp.metrics.at["val_loss", (ids["b"], "best")] == 0.4
    # higher is better: a's 0.9 beats b's 0.85; c's inf is a divergence, never the best
    assert cmp.best_runs["accuracy"] == {"last": [ids["a"]], "best": [ids["a"]]}


def test_histories_in_step_order(store: StoreFixture) -> None:
    cmp = compare([store.ids["a"], store.ids["b"]], project=store.root)
    assert cmp.histories["val_loss"][store.ids["a"]] == [(0, 1.0), (1, 0.6), (2, 0.5)]
    assert cmp.histories["accuracy"][store.ids["b"]] == [(0, 0.75), (1, 0.85)]


def test_figures_grouped_by_cell_across_runs(store: StoreFixture) -> None:
    ids = store.ids
    cmp = compare([ids["a"], ids["b"], ids["c"]], project=store.root)
    assert [g.key for g in cmp.figures] == ["plot-cell-0"]
    group = cmp.figures[0]
    assert group.cell_id == "plot-cell" and group.n == 0
    assert [f.exec_count for f in group.runs[ids["a"]]] == [3, 5]
    assert [f.path for f in group.runs[ids["b"]]] == ["figures/3-plot-cell-0.png"]
    assert ids["c"] not in group.runs
    latest = group.runs[ids["a"]][-1]
    assert Path(latest.local_path).read_bytes().startswith(b"\x89PNG")


def test_changed_cells_with_unified_diff(store: StoreFixture) -> None:
    ids = store.ids
    cmp = compare([ids["a"], ids["b"], ids["c"]], project=store.root)
    assert [c.cell_id for c in cmp.cells] == ["train-cell"]  # c has no cell records: not a diff
    cell = cmp.cells[0]
    assert cell.index == 1
    assert cell.sources[ids["a"]] == TRAIN_SOURCE_A  # the last execution, not the first
    diff = cell.diffs[ids["b"]]
    assert "-model = fit(lr)\n" in diff and "+model = fit(lr, epochs=3)\n" in diff


def test_runs_of_different_notebooks_compare(store: StoreFixture) -> None:
    cmp = compare([store.ids["a"], store.ids["other"]], project=store.root)
    assert [r.experiment_name for r in cmp.runs] == [NOTEBOOK, OTHER_NOTEBOOK]
    assert cmp.params.at["batch", store.ids["a"]] is None
    assert cmp.best_runs["accuracy"]["last"] == [store.ids["a"]]


def test_to_dict_is_strict_json_with_documented_shape(store: StoreFixture) -> None:
    ids = store.ids
    data = json.loads(json.dumps(
        compare([ids["a"], ids["b"], ids["c"]], project=store.root).to_dict(), allow_nan=False))
    assert data["version"] == 2
    assert set(data) == {"version", "tracking_uri", "runs", "params", "metrics", "histories",
                         "figures", "cells", "inputs"}
    assert data["inputs"] == {"differ": False, "drift": [], "runs": {}}  # no lake, no lineage
    assert [r["run_id"] for r in data["runs"]] == [ids["a"], ids["b"], ids["c"]]
    assert data["runs"][0]["experiment_name"] == NOTEBOOK
    assert data["runs"][2]["tags"]["nbtrack.sweep_id"] == "sweep-1"
    lr = next(p for p in data["params"] if p["key"] == "lr")
    assert lr == {"key": "lr", "differs": True,
                  "values": {ids["a"]: "0.1", ids["b"]: "0.01", ids["c"]: "0.001"}}
    loss = next(m for m in data["metrics"] if m["key"] == "val_loss")
    assert loss["direction"] == "min"
    assert loss["values"][ids["b"]] == {"last": 0.45, "best": 0.4, "steps": 3}
    assert loss["values"][ids["c"]] == {"last": "nan", "best": "nan", "steps": 1}
    assert loss["best_runs"] == {"last": [ids["b"]], "best": [ids["b"]]}
    assert data["histories"]["accuracy"][ids["c"]] == [[0, "inf"]]
    assert data["figures"][0]["runs"][ids["a"]][-1]["exec_count"] == 5
    assert data["cells"][0]["cell_id"] == "train-cell"


def test_to_pandas_one_table(store: StoreFixture) -> None:
    table = compare([store.ids["a"], store.ids["b"]], project=store.root).to_pandas()
    assert table.at[("param", "lr"), store.ids["a"]] == "0.1"
    assert table.at[("metric", "val_loss"), store.ids["b"]] == 0.45
    assert bool(table.at[("param", "depth"), "differs"]) is False
    assert bool(table.at[("metric", "accuracy"), "differs"]) is True


def test_unknown_run_id_is_not_found(store: StoreFixture) -> None:
    with pytest.raises(NotFound, match="no run deadbeef.*nbtrack runs NOTEBOOK"):
        compare([store.ids["a"], "deadbeef"], project=store.root)


def test_compare_needs_an_id() -> None:
    with pytest.raises(UsageProblem, match="at least one run id"):
        nbtrack.compare()


def _best_marked(html: str) -> list[str]:
    return re.findall(r'class="nbtrack-best"[^>]*>★ ([^<]+)<', html)


def test_comparison_html_escapes_highlights_marks_and_plots(store: StoreFixture) -> None:
    ids = store.ids
    cmp = compare([ids["a"], ids["b"], ids["c"]], project=store.root)
    html = cmp._repr_html_()
    assert html == render_comparison_html(cmp)
    assert XSS not in html and "onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    differing = re.findall(r'<tr class="nbtrack-differs"><td[^>]*>(\w+) ≠', html)
    assert differing == ["lr", "note"]
    # accuracy: a (last = best, shown once); val_loss: b last 0.45 and best 0.4
    assert _best_marked(html) == ["0.9", "0.45", "0.4"]
    assert "data:image/svg+xml;base64," in html  # the overlaid curves
    assert html.count("data:image/png;base64,") == 2  # a's latest figure and b's
    assert "+model = fit(lr, epochs=3)" in html


def test_no_curve_plot_for_single_points(store: StoreFixture) -> None:
    html = compare([store.ids["c"], store.ids["other"]], project=store.root)._repr_html_()
    assert "data:image/svg+xml" not in html
    assert _best_marked(html) == []  # c's inf accuracy is not comparable; one finite value


def test_runs_html_escapes_values(store: StoreFixture) -> None:
    html = render_runs_html(list_runs(str(store.notebook())), title="runs <of> train")
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "runs &lt;of&gt; train" in html
    assert all(store.ids[k] in html for k in ("a", "b", "c"))
    assert "no runs yet" in render_runs_html(list_runs(str(store.notebook(EMPTY_NOTEBOOK))))


def test_long_values_are_clipped_and_kept_escaped_on_hover() -> None:
    import pandas as pd

    long_value = "<script>alert(1)</script>" + "x" * 500
    html = render_runs_html(pd.DataFrame({"run_id": ["r1"], "params.blob": [long_value]}))
    assert "<script>" not in html
    visible = re.search(r'<td style="[^"]*" title="([^"]*)">([^<]*)</td>', html)
    assert visible is not None
    assert visible.group(1) == "&lt;script&gt;alert(1)&lt;/script&gt;" + "x" * 500
    assert visible.group(2).endswith("…") and len(visible.group(2)) < 200


def test_reads_what_real_capture_wrote(shell, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: a notebook captured by %load_ext nbtrack, listed and compared from inside it."""
    from helpers import run_notebook_cells, write_notebook

    nb = write_notebook(project / "notebooks" / "train.ipynb", [
        "%load_ext nbtrack",
        ("lr = 0.1", ["parameters"]),
        "import nbtrack\nfor step, v in enumerate([1.0, 0.5]):\n    nbtrack.log(val_loss=v * lr * 10,"
        " step=step)",
        # an explicit image display: it does not depend on which matplotlib backend is active
        "import io\nfrom matplotlib.figure import Figure\nfrom IPython.display import Image, display\n"
        "fig = Figure(figsize=(1, 1), dpi=20)\nfig.add_subplot().plot([1, lr])\n"
        "buf = io.BytesIO()\nfig.savefig(buf, format='png')\ndisplay(Image(data=buf.getvalue()))",
    ])
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/train.ipynb")
    run_notebook_cells(shell, nb)
    shell.run_cell("lr = 0.2", store_history=True, cell_id=nb.cells[1].id)  # a new run
    run_notebook_cells(shell, nb, [2, 3])
    assert nbtrack.flush(30), "delivery did not catch up"

    df = nbtrack.runs()  # this kernel's notebook, from its session
    assert list(df["params.lr"]) == ["0.2", "0.1"]
    assert list(df["metrics.val_loss"]) == [1.0, 0.5]
    cmp = nbtrack.compare(*reversed(df["run_id"].tolist()))
    assert bool(cmp.params.at["lr", "differs"]) is True
    assert cmp.best_runs["val_loss"]["last"] == [df["run_id"].iloc[1]]
    assert cmp.histories["val_loss"][df["run_id"].iloc[0]] == [(0, 2.0), (1, 1.0)]
    assert [g.cell_id for g in cmp.figures] == [nb.cells[3].id]  # the same cell in both runs
    assert set(cmp.figures[0].runs) == set(df["run_id"])
    shown = shell.run_cell("%nbtrack compare " + " ".join(df["run_id"])).result
    assert "nbtrack-differs" in shown._repr_html_()
    (changed,) = cmp.cells  # only the parameters cell's source differs
    assert changed.cell_id == nb.cells[1].id and "+lr = 0.2" in changed.diffs[df["run_id"].iloc[0]]
    runs_html = shell.run_cell("%nbtrack runs").result._repr_html_()
    assert all(run_id in runs_html for run_id in df["run_id"])
