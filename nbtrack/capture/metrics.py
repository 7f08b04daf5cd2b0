"""Which variables are metrics, and turning values into floats without importing NumPy."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbtrack.capture.session import TrackingSession

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


# -- recording a run's metrics -------------------------------------------------------------------


class MetricsRecorder:
    """A run's metrics: ``nbtrack.log``, ``%%nbtrack metrics`` and metric-like top-level variables.

    A name logged again without a step is the next step of the same metric.
    """

    def __init__(self, session: TrackingSession) -> None:
        self.session = session
        self.names = MetricNames(session.config.metric_words)

    def log(self, metrics: dict[Any, Any], *, step: Any = None, cell_id: str | None = None) -> None:
        session = self.session
        with session.safety.guard("logging metrics"):
            at = self._step(step)
            for key, value in metrics.items():
                problem = key_problem(key)
                if problem:
                    session.safety.warn(f"metric skipped: {problem}")
                    continue
                number = as_number(value)
                if number is None:
                    kind = type(value).__name__
                    session.safety.warn(f"metric {key} skipped: {kind} is not a number",
                                        key=f"not-a-number:{key}:{kind}")
                    continue
                self.log_one(key, number, at, cell_id)

    def _step(self, step: Any) -> int | None:
        """A usable step, or None (the next step) with a warning: a bad step never costs the values."""
        if step is None:
            return None
        number = as_number(step)
        if number is not None and math.isfinite(number) and number == int(number):
            return int(number)
        self.session.safety.warn(
            f"step {step!r} is not an integer; the values were logged at the next step instead",
            key=f"bad-step:{type(step).__name__}")
        return None

    def log_one(self, key: str, value: float, step: int | None, cell_id: str | None) -> None:
        run = self.session.ensure_run()
        if step is None:
            step = run.steps.get(key, 0)
        run.steps[key] = max(run.steps.get(key, 0), int(step) + 1)
        cell = self.session.cell
        self.session.record("metric", key=key, value=value, step=int(step),
                            cell_id=cell_id or (cell.cell_id if cell else None),
                            exec_count=cell.exec_count if cell else None)

    def from_cell(self, tree: ast.Module, user_ns: dict[str, Any], cell_id: str | None,
                  skip: Callable[[str, Any], bool] | None = None) -> list[str]:
        """Log the metric-like numbers a cell assigned at top level; returns their names.

        ``skip(name, value)``: already recorded (a loop's last point), not a second point.
        """
        logged = []
        for name in assigned_names(tree):
            if name in self.names and name in user_ns:
                number = as_number(user_ns[name])
                if number is not None and not (skip is not None and skip(name, user_ns[name])):
                    self.log_one(name, number, None, cell_id)
                    logged.append(name)
        return logged
