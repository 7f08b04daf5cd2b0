"""One rule for "which way is better": a sweep's table, ``compare`` and the lake agree.

The end-to-end test runs a real sweep (papermill kernels, the delivery process,
MLflow and the Delta lake) on a word error rate, where lower is better.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import wait_for, write_notebook

from nbtrack.metric_direction import direction

pl = pytest.importorskip("polars")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("wer", "min"), ("val_wer", "min"), ("cer", "min"), ("perplexity", "min"), ("ppl", "min"),
     ("logloss", "min"), ("test/RMSE", "min"), ("trainLoss", "min"), ("err", "min"),
     ("mae", "min"), ("mse", "min"), ("mape", "min"), ("error_rate", "min"), ("val-loss", "min"),
     ("neg_log_loss", "max"), ("neg_mean_squared_error", "max"),
     ("accuracy", "max"), ("f1_score", "max"), ("lossy_count", "max"), ("r2", "max"), ("answer", "max")],
)
def test_lower_is_better_for_losses_and_error_rates(name: str, expected: str) -> None:
    assert direction(name) == expected


WER = [
    ("x = 1", ["parameters"]),
    "import nbtrack\nwer_of = {1: 0.3, 2: 0.1, 3: 0.2}\n"
    "nbtrack.log(wer=wer_of[x] + 0.5, step=0)\nnbtrack.log(wer=wer_of[x], step=1)",
]


@pytest.mark.kernel
def test_sweep_compare_and_leaderboard_agree_that_lower_wer_is_better(project: Path) -> None:
    from nbtrack.batch.sweep import sweep
    from nbtrack.query.compare import compare

    write_notebook(project / "asr.ipynb", WER)
    frame = sweep(project / "asr.ipynb", {"x": [1, 2, 3]}, workers=2, metric="wer")
    assert list(frame["status"]) == ["FINISHED"] * 3
    assert list(frame["params.x"]) == [2, 3, 1]  # best (lowest) first
    assert list(frame["metrics.wer"]) == pytest.approx([0.1, 0.2, 0.3])
    run_of = {int(x): run_id for x, run_id in zip(frame["params.x"], frame["run_id"], strict=True)}

    comparison = compare(list(run_of.values()), project=project)
    assert comparison.directions["wer"] == "min"
    assert comparison.best_runs["wer"]["last"] == [run_of[2]]
    assert comparison.best_runs["wer"]["best"] == [run_of[2]]

    def leaderboard() -> list[dict] | None:
        try:
            table = pl.read_delta(str(project / ".nbtrack" / "lake" / "leaderboard"))
        except Exception:
            return None
        done = table.filter(pl.col("run_id").is_in(list(run_of.values())) & (pl.col("status") == "FINISHED"))
        return done.sort("best.wer").rows(named=True) if done.height == 3 else None

    board = wait_for(leaderboard, timeout=60)
    assert board, "the sweep's runs never reached the lake's leaderboard"
    best = {row["run_id"]: row["best.wer"] for row in board}
    assert best == pytest.approx({run_of[1]: 0.3, run_of[2]: 0.1, run_of[3]: 0.2})  # the lower value
    assert [row["run_id"] for row in board] == list(frame["run_id"])  # in the sweep's order
