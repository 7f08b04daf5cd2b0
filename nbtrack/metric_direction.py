"""Which way is better for a metric: the one rule every surface uses.

Lower is better when the metric's name, split into words (on ``_``, ``.``,
``-``, ``/``, spaces and camelCase), contains one of ``LOWER_IS_BETTER``:
``val_loss``, ``test/RMSE``, ``trainLoss``, ``wer``. A ``neg`` word flips it
back (scikit-learn's ``neg_log_loss`` is a negated loss: higher is better).
Every other metric is better higher. A user can still override the guess
where a command offers it (``nbtrack sweep --minimize``).

Sweep tables, ``compare`` (and the panel's JSON it returns) and the lake's
``best.<metric>`` columns all ask this module, so "best" agrees everywhere.
"""

from __future__ import annotations

import math
import re
from typing import Literal

Direction = Literal["min", "max"]

#: Metric-name words for which lower is better.
LOWER_IS_BETTER = frozenset({
    "loss", "losses", "logloss", "nll", "error", "errors", "err",
    "mae", "mse", "rmse", "msle", "rmsle", "mape", "smape",
    "wer", "cer", "perplexity", "ppl", "brier", "deviance",
})
#: A word that says the value is negated (``neg_mean_squared_error``): higher is better again.
NEGATED = frozenset({"neg", "negative"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^0-9a-z]+")


def metric_words(name: str) -> set[str]:
    """The lower-cased words of a metric name: ``valLoss`` and ``val-loss`` give {val, loss}."""
    return {w for w in _SEPARATORS.split(_CAMEL.sub("_", name).lower()) if w}


def lower_is_better(name: str) -> bool:
    """True for losses and errors (``val_loss``, ``test_rmse``, ``wer``), False for the rest."""
    words = metric_words(name)
    return bool(words & LOWER_IS_BETTER) and not words & NEGATED


def direction(name: str) -> Direction:
    """``"min"`` when lower is better, else ``"max"``."""
    return "min" if lower_is_better(name) else "max"


def is_better(value: float | None, than: float | None, name: str) -> bool:
    """Is ``value`` strictly better than ``than`` for metric ``name``? A missing or NaN value
    never is; any number beats a missing or NaN ``than``."""
    if value is None or math.isnan(value):
        return False
    if than is None or math.isnan(than):
        return True
    return value < than if lower_is_better(name) else value > than
