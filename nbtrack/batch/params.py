"""Parameter values from the command line and from files, checked against a notebook.

``-p name=v1,v2`` values are typed the way papermill's own ``-p`` types them
(int, float, ``True``/``False``, ``None``, else str; ``true``/``false`` are
accepted too), so ``nbtrack sweep -p lr=0.1`` and ``papermill -p lr 0.1``
inject the same value. ``-p name=json:[...]`` gives the values as a JSON list
(for strings with commas, or list-valued parameters). ``-f params.yaml`` holds
either a mapping (name -> list of values, or one fixed value) or a list of
parameter sets.

papermill writes each name verbatim into the injected cell (``name = value``),
so a name is code: :func:`check_name` is the one rule (a Python identifier, not
a keyword), applied where names come in (``-p``, YAML, the server) and, through
:func:`check_injectable`, to every parameter set that is executed. An empty
``-p name=`` (an unset shell variable) is refused; ``json:""`` is an empty string.
"""

from __future__ import annotations

import json
import keyword
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbtrack.errors import NotFound, UsageProblem

Warn = Callable[[str], None]


def parse_value(raw: str) -> Any:
    """One value typed like papermill's ``-p``: ``3`` -> 3, ``0.1`` -> 0.1, ``None``, bools, str."""
    if raw in ("True", "true"):
        return True
    if raw in ("False", "false"):
        return False
    if raw == "None":
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def check_name(name: object, where: str = "") -> str:
    """``name`` if papermill may inject it: it is written into code, so only an identifier
    that is not a keyword (``lr``, ``max_depth``) can never run as something else."""
    if isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name):
        return name
    shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
    why = "a Python keyword" if isinstance(name, str) and keyword.iskeyword(name) else (
        "not a Python identifier")
    raise UsageProblem(f"{where}{shown} is not a valid parameter name ({why}); "
                       "use letters, digits and _, e.g. max_depth")


def _value(name: str, raw: str) -> Any:
    """One value of ``-p``: empty text (an unset shell variable) is a mistake, not ``""``."""
    if raw.strip() == "":
        raise UsageProblem(f"-p {name}=: empty value (an unset shell variable?); give a "
                           f"value, e.g. -p {name}=0.1, or -p '{name}=json:\"\"' for an empty string")
    return parse_value(raw)


def _json(name: str, raw: str) -> Any:
    try:
        return json.loads(raw[len("json:"):])
    except ValueError as exc:
        raise UsageProblem(f"-p {name}: cannot parse JSON {raw[5:]!r} ({exc})") from None


def parse_assignment(text: str) -> tuple[str, list[Any]]:
    """``"lr=0.1,0.01"`` -> ``("lr", [0.1, 0.01])``; ``"xs=json:[[1,2],[3]]"`` -> two list values."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep:
        raise UsageProblem(f"-p {text!r}: expected name=value[,value...]")
    check_name(name, "-p: ")
    if raw.startswith("json:"):
        value = _json(name, raw)
        return name, value if isinstance(value, list) else [value]
    return name, [_value(name, part) for part in raw.split(",")]


def parse_assignments(texts: Iterable[str]) -> dict[str, list[Any]]:
    """Every ``-p`` option into one space; a name given twice is a mistake worth stopping on."""
    space: dict[str, list[Any]] = {}
    for text in texts:
        name, values = parse_assignment(text)
        if name in space:
            raise UsageProblem(f"parameter {name!r} given twice; list its values once: {name}=a,b")
        space[name] = values
    return space


def parse_override(name: str, raw: str) -> Any:
    """One re-run value as text (``-p name=value``, the panel's edited field): typed like
    papermill's ``-p``, ``json:...`` as JSON, a comma kept in a string, never empty."""
    return _json(name, raw) if raw.startswith("json:") else _value(name, raw)


def parse_overrides(texts: Iterable[str]) -> dict[str, Any]:
    """``-p name=value`` for a re-run: exactly one value each."""
    overrides: dict[str, Any] = {}
    for text in texts:
        name, sep, raw = text.partition("=")
        if not sep:
            raise UsageProblem(f"-p {text!r}: expected NAME=VALUE, e.g. -p max_depth=3")
        name = check_name(name.strip(), "-p: ")
        overrides[name] = parse_override(name, raw)
    return overrides


@dataclass(frozen=True)
class ParamsFile:
    """A ``-f`` file: axes of a grid (mapping) or explicit parameter sets (list)."""

    axes: dict[str, list[Any]]
    sets: list[dict[str, Any]] | None


def load_params_file(path: str | os.PathLike[str]) -> ParamsFile:
    """Read a YAML (or JSON) file of parameters; a malformed one stops the sweep before it starts."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise NotFound(f"parameters file not found: {file}")
    try:
        data = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{file}: not valid YAML ({exc})") from None
    if isinstance(data, Mapping):
        axes = {}
        for name, values in data.items():
            _check_name(str(name), file)
            axes[str(name)] = list(values) if isinstance(values, list) else [values]
        return ParamsFile(axes=axes, sets=None)
    if isinstance(data, list):
        sets = []
        for i, item in enumerate(data):
            if not isinstance(item, Mapping):
                raise UsageProblem(f"{file}: item {i + 1} is not a mapping of name: value")
            for name in item:
                _check_name(str(name), file)
            sets.append({str(k): v for k, v in item.items()})
        return ParamsFile(axes={}, sets=sets)
    raise UsageProblem(
        f"{file}: expected a mapping (name: [values]) or a list of parameter sets, "
        f"got {type(data).__name__}"
    )


def _check_name(name: str, file: Path) -> None:
    check_name(name, f"{file}: ")


def check_injectable(
    combinations: Iterable[Mapping[str, Any]], declared: NotebookParams | None = None
) -> None:
    """Every parameter set about to be executed: names papermill can write as code, values
    that travel as JSON, and no empty string where the parameters cell holds a non-string
    (``lr = ""`` is an unset variable, not a learning rate). Checked before anything starts."""
    defaults = declared.defaults if declared is not None else {}
    for combo in combinations:
        for name, value in combo.items():
            check_name(name)
            if value == "" and name in defaults and not isinstance(defaults[name], str):
                raise UsageProblem(
                    f"parameter {name}: empty value, but the parameters cell sets "
                    f"{name} = {defaults[name]!r}; give a value"
                )
            try:
                json.dumps(to_jsonable(value))
            except (TypeError, ValueError):
                raise UsageProblem(
                    f"parameter {name}={value!r}: only numbers, strings, bools, None and "
                    "lists/dicts of those can be injected into a notebook"
                ) from None


def to_jsonable(value: Any) -> Any:
    """NumPy scalars and tuples become plain JSON values (papermill injects them the same way)."""
    if isinstance(value, tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item) and type(value).__module__ == "numpy":
        return value.item()
    return value


@dataclass(frozen=True)
class NotebookParams:
    """What a notebook's ``parameters`` cell declares: name -> default value."""

    has_cell: bool
    defaults: dict[str, Any]
    metadata: dict[str, Any]  # the notebook's metadata (papermill's parameters, kernelspec)


def read_notebook(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The notebook as JSON (plain ``json``: nbformat's import costs a second here)."""
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise NotFound(f"notebook not found: {file}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageProblem(f"{file}: not a readable notebook ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise UsageProblem(f"{file}: not a Jupyter notebook (no cells)")
    return data


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def inspect_parameters(notebook: str | os.PathLike[str]) -> NotebookParams:
    """The parameters cell of ``notebook``: its literal assignments, read without a kernel."""
    import ast

    from nbtrack.capture.params import literal_assignments

    nb = read_notebook(notebook)
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return NotebookParams(False, {}, nb.get("metadata", {}))
    language = nb.get("metadata", {}).get("kernelspec", {}).get("language", "python")
    defaults: dict[str, Any] = {}
    for cell in cells:
        try:
            defaults.update(literal_assignments(ast.parse(_source(cell))))
        except SyntaxError:
            if language == "python":
                continue
            return NotebookParams(True, {}, nb.get("metadata", {}))  # another language: no check
    return NotebookParams(True, defaults, nb.get("metadata", {}))


def warn_about_names(
    notebook: str | os.PathLike[str], names: Iterable[str], declared: NotebookParams, warn: Warn
) -> None:
    """Warn (never stop) when a notebook lacks a parameters cell or a name is not in it."""
    names = list(names)
    if not names:
        return
    if not declared.has_cell:
        warn(
            f"{Path(notebook).name} has no cell tagged 'parameters': the values will be "
            "injected as a new first cell, as papermill does"
        )
        return
    if not declared.defaults:
        return
    unknown = [n for n in names if n not in declared.defaults]
    if unknown:
        known = ", ".join(declared.defaults) or "(none)"
        warn(
            f"parameter(s) {', '.join(unknown)} not in the parameters cell of "
            f"{Path(notebook).name}; known: {known}"
        )
