"""Run filters as people type them, the same language as the JupyterLab panel's
(``labextension/src/filter.ts``): ``test_acc>0.95``, ``lr=0.1``, ``status=failed``,
``max_depth in 2,3``, ``name~baseline``, ``#3``, and plain words (searched in names, statuses,
ids and ``param=value`` text). Clauses are separated by spaces (or ``and``); all must hold.

Rows are the JSON rows of :func:`nbtrack.query.runs.runs_records` (with ``number`` and
``label`` from :func:`nbtrack.query.names.display_names` when present).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypedDict, final

Row = Mapping[str, Any]


@final  # so that `"word" in clause` tells the two kinds apart
class Comparison(TypedDict):
    """``lr=0.1``, ``test_acc>0.95``, ``max_depth in 2,3``: a key, an operator and its values."""

    key: str
    op: str
    values: list[str]


@final
class Word(TypedDict):
    """A plain word, searched in a row's names, status, ids and ``param=value`` text."""

    word: str


Clause = Comparison | Word

FIELDS = ("status", "name", "id", "sweep", "origin", "duration", "number")
_NAME = r"[A-Za-z_#][\w.#-]*"
_VALUE = r"\"[^\"]*\"|'[^']*'|[^\s,]+"
_IN = re.compile(rf"^({_NAME})\s+in\s+((?:{_VALUE})(?:\s*,\s*(?:{_VALUE}))*)", re.IGNORECASE)
_CMP = re.compile(rf"^({_NAME})\s*(==|!=|>=|<=|=|>|<|~)\s*({_VALUE})")
_WORD = re.compile(rf"^({_VALUE})")
_SEPARATOR = re.compile(r"^(?:[\s,]+|and\s+|AND\s+)")


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value


def parse_filter(text: str) -> list[Clause]:
    """The clauses of a filter: comparisons and words (never raises)."""
    clauses: list[Clause] = []
    rest = text.strip()
    while rest:
        if match := _SEPARATOR.match(rest):
            rest = rest[match.end():]
        elif match := _IN.match(rest):
            values = [_unquote(v) for v in re.split(r"\s*,\s*", match[2])]
            clauses.append({"key": match[1], "op": "in", "values": values})
            rest = rest[match.end():]
        elif match := _CMP.match(rest):
            op = "=" if match[2] == "==" else match[2]
            clauses.append({"key": match[1], "op": op, "values": [_unquote(match[3])]})
            rest = rest[match.end():]
        else:
            match = _WORD.match(rest)
            assert match is not None  # a non-separator character always starts a word
            clauses.append({"word": _unquote(match[1]).lower()})
            rest = rest[match.end():]
    return clauses


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip() if value is not None else ""
    if text in ("inf", "-inf"):
        return math.inf if text == "inf" else -math.inf
    try:
        return float(text) if text and text != "nan" else math.nan
    except ValueError:
        return math.nan


def _resolve(key: str, op: str, params: set[str], metrics: set[str]) -> tuple[str, str] | None:
    if key.startswith("params.") and key[7:] in params:
        return "param", key[7:]
    if key.startswith("metrics.") and key[8:] in metrics:
        return "metric", key[8:]
    if key in params and key in metrics:
        return ("metric", key) if op in (">", ">=", "<", "<=") else ("param", key)
    if key in params:
        return "param", key
    if key in metrics:
        return "metric", key
    field = "number" if key == "#" else key.lower()
    return ("field", field) if field in FIELDS else None


def _value(row: Row, kind: str, name: str) -> Any:
    if kind == "param":
        return (row.get("params") or {}).get(name)
    if kind == "metric":
        value = (row.get("metrics") or {}).get(name)
        return None if value is None else _number(value)
    return {
        "status": row.get("status"),
        "name": f"{row.get('label') or ''} {row.get('run_name') or ''}".strip(),
        "id": row.get("run_id"),
        "sweep": row.get("sweep_id") or None,
        "origin": row.get("origin") or None,
        "duration": row.get("duration_s"),
        "number": row.get("number"),
    }[name]


def _equal(value: Any, wanted: str) -> bool:
    a, b = _number(value), _number(wanted)
    if not math.isnan(a) and not math.isnan(b):
        return a == b
    return str(value).lower() == wanted.lower()


def _holds(value: Any, op: str, values: list[str]) -> bool:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return False
    if op == "=":
        return _equal(value, values[0])
    if op == "!=":
        return not _equal(value, values[0])
    if op == "in":
        return any(_equal(value, v) for v in values)
    if op == "~":
        return values[0].lower() in str(value).lower()
    a, b = _number(value), _number(values[0])
    if math.isnan(a) or math.isnan(b):
        return False
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def _search_text(row: Row) -> str:
    number = row.get("number")
    parts = [f"#{number}" if number is not None else "", row.get("label") or "", row.get("run_name") or "",
             row.get("status") or "", row.get("run_id") or "", row.get("sweep_id") or ""]
    parts += [f"{k}={v}" for k, v in (row.get("params") or {}).items()]
    return " ".join(str(p) for p in parts).lower()


def compile_filter(text: str, rows: Iterable[Row]) -> tuple[Callable[[Row], bool], list[str]]:
    """A predicate over rows, and one message per key the rows do not have."""
    rows = list(rows)
    params = {k for r in rows for k in (r.get("params") or {})}
    metrics = {k for r in rows for k in (r.get("metrics") or {})}
    errors: list[str] = []
    tests: list[Callable[[Row], bool]] = []
    for clause in parse_filter(text):
        if "word" in clause:
            tests.append(_word_test(clause["word"]))
            continue
        ref = _resolve(clause["key"], clause["op"], params, metrics)
        if ref is None:
            known = ", ".join(sorted(params | metrics)[:8]) or "none yet"
            errors.append(f'No column "{clause["key"]}". Columns: {known}, and status, name, id…')
            tests.append(lambda r: False)
            continue
        tests.append(_comparison_test(ref, clause))
    return (lambda row: all(test(row) for test in tests)), errors


def _word_test(word: str) -> Callable[[Row], bool]:
    """``#3`` matches the run numbered 3; any other word is searched in the row's text."""
    if re.fullmatch(r"#\d+", word):
        number = int(word[1:])
        return lambda row: row.get("number") == number
    return lambda row: word in _search_text(row)


def _comparison_test(ref: tuple[str, str], clause: Comparison) -> Callable[[Row], bool]:
    kind, name = ref
    return lambda row: _holds(_value(row, kind, name), clause["op"], clause["values"])


def example_filter(rows: Iterable[Row], metric: str | None = None) -> str:
    """A filter valid for these rows that matches one: a param value and a metric bound of the
    newest run that has both (``lr=0.1 val_loss<=0.072``), as the panel's placeholder shows."""
    for row in rows:
        params = [(k, v) for k, v in (row.get("params") or {}).items()
                  if re.fullmatch(r"[A-Za-z_]\w*", k) and v and not re.search(r"[\s,\"']", str(v))]
        metrics = row.get("metrics") or {}
        numeric = [k for k, v in metrics.items() if isinstance(v, int | float) and re.fullmatch(r"[A-Za-z_]\w*", k)]
        key = metric if metric in numeric else (numeric[0] if numeric else None)
        parts = [f"{params[0][0]}={params[0][1]}"] if params else []
        if key is not None:
            parts.append(f"{key}<={_round_up(float(metrics[key]))}")
        if parts:
            return " ".join(parts)
    return ""


def _round_up(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return str(value)
    step = 10 ** (math.floor(math.log10(abs(value))) - 1)
    return f"{math.ceil(value / step) * step:.2g}"
