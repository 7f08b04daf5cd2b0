"""Which variables are metrics, and turning values into floats without importing NumPy."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable
from typing import Any

# MLflow's rule for metric and param names (letters, digits, _ - . space / :).
_VALID_KEY = re.compile(r"^[\w\-. /:]+$")


class MetricNames:
    """Decides whether a variable name is a metric: ``val_acc`` yes, ``test_size`` no."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(w.lower() for w in words)
        self._cache: dict[str, bool] = {}

    def __contains__(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            hit = bool(self.words.intersection(name.lower().split("_")))
            self._cache[name] = hit
        return hit


def key_problem(key: Any) -> str | None:
    """Why MLflow would refuse ``key`` as a metric/param name, or None if it is fine."""
    if not isinstance(key, str):
        return f"name {key!r} is not a string"
    if not key or len(key) > 250:
        return f"name {key[:40]!r} must have 1 to 250 characters"
    if not _VALID_KEY.match(key) or key.startswith("/") or ".." in key.split("/"):
        return f"name {key!r} may only contain letters, digits, '_', '-', '.', ' ', '/', ':'"
    return None


def as_number(value: Any) -> float | None:
    """A float for a numeric scalar (Python, NumPy scalar or 0-d array, 0-d tensor), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    module = type(value).__module__ or ""
    if module.startswith(("numpy", "torch", "jax", "tensorflow")):
        if getattr(value, "ndim", None) != 0:
            return None
        dtype = getattr(value, "dtype", None)
        kind = getattr(dtype, "kind", None)
        if kind is not None and kind not in "iuf":
            return None  # bools, complex, strings, datetimes are not metrics
        try:
            return float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError, OverflowError):
            return None
    return None


def assigned_names(tree: ast.Module) -> list[str]:
    """Names a cell assigns in the notebook's namespace (not inside functions or classes)."""
    names: list[str] = []

    def targets_of(target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                targets_of(element)
        elif isinstance(target, ast.Starred):
            targets_of(target.value)

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    targets_of(target)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                if not isinstance(node, ast.AnnAssign) or node.value is not None:
                    targets_of(node.target)
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.If)):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                visit(node.body)
            elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
                visit(node.body)  # type: ignore[attr-defined]
                for handler in node.handlers:  # type: ignore[attr-defined]
                    visit(handler.body)
                visit(node.orelse)  # type: ignore[attr-defined]
                visit(node.finalbody)  # type: ignore[attr-defined]

    visit(tree.body)
    return list(dict.fromkeys(names))
