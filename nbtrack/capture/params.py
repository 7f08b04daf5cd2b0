"""Parameters are the literal top-level assignments of a parameters cell.

The same rule papermill uses to find what it can override: ``lr = 0.1``,
``layers = [64, 32]``, ``name: str = "x"``; anything computed is not a parameter.
"""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING, Any

from nbtrack.capture.metrics import key_problem

if TYPE_CHECKING:
    from nbtrack.capture.runs import RunState
    from nbtrack.capture.session import TrackingSession

_SCALARS = (int, float, str, bool, type(None))


def _is_plain(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, _SCALARS) and _is_plain(v) for k, v in value.items())
    return False


def literal_assignments(tree: ast.Module) -> dict[str, Any]:
    """``name -> value`` for every top-level assignment of a plain literal, in order."""
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value_node = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value_node = [node.target], node.value
        else:
            continue
        try:
            value = ast.literal_eval(value_node)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if not _is_plain(value):
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = value
            elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (tuple, list)):
                names = target.elts
                if len(names) == len(value) and all(isinstance(n, ast.Name) for n in names):
                    found.update({n.id: v for n, v in zip(names, value, strict=True)})  # type: ignore[attr-defined]
    return found


def param_string(value: Any, *, limit: int = 6000) -> str:
    """How a parameter value is stored in MLflow: Python literal text, truncated to MLflow's limit."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (dict, list, tuple)):
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    else:
        text = repr(value) if not isinstance(value, bool) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_value(value: Any) -> Any:
    """A JSON-safe copy of a parameter value (tuples become lists, odd keys strings)."""
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


# -- recording a run's params ------------------------------------------------------------------

_PAPERMILL_PATH_VARS = (
    "PAPERMILL_INPUT_PATH", "PAPERMILL_OUTPUT_PATH", "PAPERMILL_INPUT_DIR", "PAPERMILL_OUTPUT_DIR",
)


class ParamsRecorder:
    """A run's params: the ``parameters`` cell, papermill's injected cell, ``%%nbtrack params`` and
    ``nbtrack.log_params``. Params are immutable in MLflow, so a changed value starts a new run."""

    def __init__(self, session: TrackingSession) -> None:
        self.session = session

    def text(self, value: Any) -> str:
        """The value as MLflow will store it."""
        return param_string(value, limit=self.session.config.max_param_length)

    def log(self, params: dict[Any, Any], *, source: str, cell_id: str | None = None) -> None:
        session = self.session
        with session.safety.guard("logging params"):
            clean: dict[str, Any] = {}
            for key, value in params.items():
                if not isinstance(key, str):
                    session.safety.warn(f"param name {key!r} is not a string; logged as {str(key)!r}")
                    key = str(key)
                problem = key_problem(key)
                if problem:
                    session.safety.warn(f"param skipped: {problem}")
                    continue
                clean[key] = value
            run = session.ensure_run()
            changed = [k for k, v in clean.items() if k in run.params and run.params[k] != self.text(v)]
            if changed:  # the new values make a new run
                session.new_run(carry={**run.values, **clean})
            else:
                self.log_now(run, clean, source=source, cell_id=cell_id)

    def log_now(self, run: RunState, values: dict[str, Any], *, source: str, cell_id: str | None = None) -> None:
        """Record the values that are new to ``run`` (no new run, whatever they are)."""
        new = {k: v for k, v in values.items() if run.params.get(k) != self.text(v)}
        if not new:
            return
        for key, value in new.items():
            self.warn_if_truncated(key, value)
            run.params[key] = self.text(value)
            run.values[key] = value
        self.session.record("params", params={k: run.params[k] for k in new},
                            values={k: json_value(v) for k, v in new.items()}, source=source, cell_id=cell_id)

    def warn_if_truncated(self, key: str, value: Any) -> None:
        if len(self.text(value)) < len(str(value)) and not isinstance(value, (dict, list, tuple)):
            self.session.safety.warn(
                f"param {key} is longer than {self.session.config.max_param_length} characters; "
                "it was truncated", key=f"long-param:{key}")

    def flush_pending(self, run: RunState) -> None:
        """The parameters cell's values, held for papermill's injected cell, are logged now."""
        if run.pending is not None:
            pending, run.pending = run.pending, None
            self.log_now(run, pending, source="parameters")

    def parameters_cell(self, values: dict[str, Any], cell_id: str | None) -> None:
        """The ``parameters`` cell ran: a new run if values changed, else the same run."""
        for key, value in values.items():  # warned now, under this cell, though logged a cell later
            self.warn_if_truncated(key, value)
        run = self.session.ensure_run()
        self.flush_pending(run)
        if any(k in run.params and run.params[k] != self.text(v) for k, v in values.items()):
            run = self.session.new_run()  # changed values: a new run, whose params this cell defines
        run.pending = values  # papermill's injected cell may still override these

    def injected_cell(self, values: dict[str, Any], cell_id: str | None) -> None:
        """papermill's injected cell: its values win over the parameters cell's; its paths are tags."""
        session = self.session
        run = session.ensure_run()
        for var in _PAPERMILL_PATH_VARS:
            path = values.pop(var, None)
            if var == "PAPERMILL_INPUT_PATH" and path and session.notebook is None:
                session.config.notebook = str(path)
                session.redetect()
            if path:
                run.extra_tags[f"nbtrack.papermill.{var.lower()}"] = str(path)
        merged = {**(run.pending or {}), **values}
        run.pending = None
        session.under_papermill = True
        self.log_now(run, merged, source="papermill", cell_id=cell_id)

    def adopt_earlier(self, history: list[Any]) -> None:
        """Params set before nbtrack was loaded: papermill injects its cell at the very top of a
        notebook without a parameters cell, above ``%load_ext nbtrack``."""
        from nbtrack.capture.cells import parse_cell

        for raw in history:
            if not isinstance(raw, str):
                continue
            tree = parse_cell(self.session.shell, raw)
            if tree is None:
                continue
            ref = self.session.nbfile.find(None, raw)
            if raw.startswith("# Parameters\n") and (ref is None or "parameters" not in ref.tags):
                self.injected_cell(literal_assignments(tree), ref.cell_id if ref else None)
            elif ref is not None and "parameters" in ref.tags:
                self.parameters_cell(literal_assignments(tree), ref.cell_id)
