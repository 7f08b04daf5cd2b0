"""Parameters are the literal top-level assignments of a parameters cell.

The same rule papermill uses to find what it can override: ``lr = 0.1``,
``layers = [64, 32]``, ``name: str = "x"``; anything computed is not a parameter.
"""

from __future__ import annotations

import ast
import json
from typing import Any

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
