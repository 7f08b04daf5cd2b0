"""Compact profiles of input tables, and the drift between two runs' inputs.

A profile is small JSON kept with each input a run read: per column its type,
null fraction, and mean/std/min/max (numbers, booleans) or distinct count and
top values with their shares (everything else). Two profiles of the same table
are compared column by column; a column whose profile moved more than a
threshold is reported, so ``nbtrack.compare`` can say "inputs differ" and why.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

#: Top values kept per non-numeric column.
TOP_VALUES = 10
#: Columns profiled per table (the widest tables keep their first ones).
MAX_COLUMNS = 200
#: Default drift threshold: standardized mean difference, share or null-fraction change.
DEFAULT_THRESHOLD = 0.1

Profile = dict[str, dict[str, Any]]


def schema_hash(schema: pa.Schema) -> str:
    """A stable digest of column names and types (metadata ignored)."""
    text = ";".join(f"{f.name}:{f.type}:{f.nullable}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def profile_table(table: pa.Table) -> Profile:
    """Per-column profile of an Arrow table (one pass of Arrow compute per column)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = table.num_rows
    out: Profile = {}
    for name in table.column_names[:MAX_COLUMNS]:
        column = table.column(name)
        kind = column.type
        entry: dict[str, Any] = {
            "type": str(kind),
            "null_frac": round(column.null_count / rows, 6) if rows else 0.0,
        }
        if pa.types.is_boolean(kind):
            column = pc.cast(column, pa.int8())
            kind = column.type
        if rows and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            values = pc.cast(column, pa.float64())
            if pa.types.is_floating(kind):
                values = pc.filter(values, pc.is_finite(values))
            stats = pc.min_max(values)
            entry.update(
                mean=_finite(pc.mean(values).as_py()),
                std=_finite(pc.stddev(values).as_py()),
                min=_finite(stats["min"].as_py()),
                max=_finite(stats["max"].as_py()),
            )
        elif rows and not pa.types.is_nested(kind):
            text = pc.cast(column, pa.string()) if not pa.types.is_string(kind) else column
            counts = pc.value_counts(text.drop_null()).to_pylist()
            counts.sort(key=lambda item: (-item["counts"], str(item["values"])))
            entry["distinct"] = len(counts)
            entry["top"] = [
                [item["values"], round(item["counts"] / rows, 6)] for item in counts[:TOP_VALUES]
            ]
        out[name] = entry
    return out


@dataclass
class ColumnDrift:
    column: str
    score: float
    reason: str


@dataclass
class InputDrift:
    """How one input table differs between run A and run B (only built when it does)."""

    table_uri: str
    version_a: int | None
    version_b: int | None
    rows_a: int | None
    rows_b: int | None
    schema_changed: bool = False
    only_in: str | None = None  # "a" or "b" when only one run read the table
    columns: list[ColumnDrift] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a comparison table, e.g. ``data/train (v3 → v5): x mean 0.1 → 0.9``."""
        if self.only_in:
            return f"{self.table_uri}: read only by run {self.only_in.upper()}"
        head = f"{self.table_uri} (v{self.version_a} → v{self.version_b})"
        parts = ["schema changed"] if self.schema_changed else []
        parts += [f"{c.column}: {c.reason}" for c in self.columns]
        return f"{head}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table_uri": self.table_uri, "version_a": self.version_a, "version_b": self.version_b,
            "rows_a": self.rows_a, "rows_b": self.rows_b, "schema_changed": self.schema_changed,
            "only_in": self.only_in, "summary": self.summary(),
            "columns": [{"column": c.column, "score": c.score, "reason": c.reason}
                        for c in self.columns],
        }


def _profile_of(record: Mapping[str, Any]) -> Profile:
    raw = record.get("profile")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _fmt(value: Any) -> str:
    return "∅" if value is None else f"{value:.4g}"


def column_drift(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float, str]:
    """(score, reason) of one column's change; 0.0 when the profiles agree."""
    if a.get("type") != b.get("type"):
        return math.inf, f"type {a.get('type')} → {b.get('type')}"
    moves: list[tuple[float, str]] = []
    null_a, null_b = a.get("null_frac") or 0.0, b.get("null_frac") or 0.0
    moves.append((abs(null_a - null_b), f"nulls {null_a:.1%} → {null_b:.1%}"))
    if "mean" in a or "mean" in b:
        mean_a, mean_b = a.get("mean"), b.get("mean")
        std_a, std_b = a.get("std") or 0.0, b.get("std") or 0.0
        if mean_a is not None and mean_b is not None:
            pooled = math.sqrt((std_a**2 + std_b**2) / 2)
            diff = abs(mean_a - mean_b)
            score = diff / pooled if pooled > 0 else (0.0 if diff == 0 else math.inf)
            moves.append((score, f"mean {_fmt(mean_a)} → {_fmt(mean_b)}"))
            spread = max(std_a, std_b)
            if spread > 0:
                moves.append((abs(std_a - std_b) / spread, f"std {_fmt(std_a)} → {_fmt(std_b)}"))
        elif mean_a != mean_b:
            moves.append((math.inf, f"mean {_fmt(mean_a)} → {_fmt(mean_b)}"))
    if "top" in a or "top" in b:
        share_a = {str(v): s for v, s in a.get("top") or []}
        share_b = {str(v): s for v, s in b.get("top") or []}
        keys = set(share_a) | set(share_b)
        rest_a, rest_b = 1 - sum(share_a.values()), 1 - sum(share_b.values())
        tv = 0.5 * (sum(abs(share_a.get(k, 0) - share_b.get(k, 0)) for k in keys)
                    + abs(rest_a - rest_b))
        moves.append((tv, f"value shares moved {tv:.0%}"))
    return max(moves, key=lambda m: m[0])


def _drift_of(a: Mapping[str, Any], b: Mapping[str, Any], threshold: float) -> InputDrift | None:
    drift = InputDrift(
        table_uri=str(a.get("table_uri")), version_a=a.get("version"), version_b=b.get("version"),
        rows_a=a.get("rows"), rows_b=b.get("rows"),
        schema_changed=bool(a.get("schema_hash") and b.get("schema_hash")
                            and a.get("schema_hash") != b.get("schema_hash")),
    )
    prof_a, prof_b = _profile_of(a), _profile_of(b)
    for column in sorted(set(prof_a) | set(prof_b)):
        if column not in prof_b:
            drift.columns.append(ColumnDrift(column, math.inf, "removed"))
        elif column not in prof_a:
            drift.columns.append(ColumnDrift(column, math.inf, "added"))
        else:
            score, reason = column_drift(prof_a[column], prof_b[column])
            if score > threshold:
                drift.columns.append(ColumnDrift(column, score, reason))
    rows_a, rows_b = drift.rows_a or 0, drift.rows_b or 0
    if max(rows_a, rows_b) and abs(rows_a - rows_b) / max(rows_a, rows_b) > threshold:
        drift.columns.insert(0, ColumnDrift("(rows)", abs(rows_a - rows_b) / max(rows_a, rows_b),
                                            f"rows {rows_a} → {rows_b}"))
    drift.columns.sort(key=lambda c: -c.score)
    return drift if drift.columns or drift.schema_changed else None


def _latest_by_table(inputs: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The last record per table (a run that read a table twice is judged by its last read)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for record in inputs:
        latest[str(record.get("table_uri"))] = record
    return latest


def input_drift(
    run_a_inputs: Iterable[Mapping[str, Any]],
    run_b_inputs: Iterable[Mapping[str, Any]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[InputDrift]:
    """The inputs that differ between two runs; an empty list means "same inputs".

    Each input is a mapping with ``table_uri``, ``version``, ``schema_hash``,
    ``rows`` and ``profile`` (a dict or its JSON): a row of the lake's ``inputs``
    table, an ``input`` journal event, or what ``nbtrack.read_delta`` recorded.
    A column is reported when its standardized mean difference, spread, null
    fraction or top-value shares moved by more than ``threshold``. A new table
    version with the same data is not drift.
    """
    a, b = _latest_by_table(run_a_inputs), _latest_by_table(run_b_inputs)
    drifts: list[InputDrift] = []
    for uri in sorted(set(a) | set(b)):
        if uri not in b or uri not in a:
            only_a, only_b = a.get(uri, {}), b.get(uri, {})
            drifts.append(InputDrift(
                table_uri=uri, version_a=only_a.get("version"), version_b=only_b.get("version"),
                rows_a=only_a.get("rows"), rows_b=only_b.get("rows"),
                only_in="a" if uri in a else "b",
            ))
            continue
        found = _drift_of(a[uri], b[uri], threshold)
        if found is not None:
            drifts.append(found)
    return drifts
