"""A parameter space into the list of combinations a sweep executes, in a stable order.

The order matters: combination ``n`` is ``<n>.ipynb`` and ``nbtrack.sweep.index=n``,
and ``--resume`` relies on it. A grid varies the last parameter fastest (like
``itertools.product`` and sklearn's ``ParameterGrid``); a random search draws
distinct combinations of the same grid with ``random.Random(seed)``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any

from nbtrack.errors import UsageProblem


def as_axes(params: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Python-API params: a list (or tuple) is the values to try, anything else one fixed value."""
    return {
        name: list(values) if isinstance(values, (list, tuple)) else [values]
        for name, values in params.items()
    }


def expand(
    axes: Mapping[str, Sequence[Any]], sets: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Every combination of ``axes``, crossed with each explicit set of ``sets`` when given."""
    empty = [name for name, values in axes.items() if len(values) == 0]
    if empty:
        raise UsageProblem(f"parameter(s) {', '.join(empty)} have no values: the grid is empty")
    names = list(axes)
    grid = [dict(zip(names, values, strict=True)) for values in itertools.product(*(axes[n] for n in names))]
    if sets is None:
        combinations = grid if names else []
    else:
        combinations = [{**dict(base), **point} for base in sets for point in grid]
    if not combinations:
        raise UsageProblem(
            "nothing to sweep: give values with -p name=v1,v2 (or params={...}) or a "
            "non-empty -f file"
        )
    return combinations


def sample(
    combinations: Sequence[dict[str, Any]], n: int, seed: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """``n`` distinct combinations drawn at random; returns (chosen, capped) where capped
    says ``n`` exceeded the space and every combination was kept."""
    if n < 1:
        raise UsageProblem(f"--random must be at least 1, got {n}")
    if n >= len(combinations):
        return list(combinations), n > len(combinations)
    rng = random.Random(seed)
    return rng.sample(list(combinations), n), False
