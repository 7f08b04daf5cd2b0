"""A run's artifacts as the comparison needs them: figures grouped by cell, cell sources.

Figures follow the storage contract ``figures/<exec_count>-<cell_id>-<n>.<ext>``;
the same cell has the same ``cell_id`` in every run, so ``(cell_id, n)`` lines
figures up across runs. Cell records come from ``nbtrack/cells.json``.
"""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

FIGURES_DIR = "figures"
CELLS_JSON = "nbtrack/cells.json"
# The extension may have two parts: a chart's spec is ``.vl.json``, ``.vg.json`` or ``.bokeh.json``.
_FIGURE_NAME = re.compile(r"^(?P<exec>\d+)-(?P<cell>.+)-(?P<n>\d+)\.(?P<ext>[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)?)$")


@dataclass
class FigureFile:
    """One figure artifact of one run."""

    path: str  # artifact path, e.g. "figures/3-a1b2-0.png"
    ext: str
    exec_count: int | None
    uri: str  # full artifact URI
    local_path: str | None  # absolute file path when the artifact store is local

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FigureGroup:
    """The n-th figure of one cell, across the compared runs (latest execution last)."""

    key: str  # "<cell_id>-<n>", or the file name for figures outside the contract
    cell_id: str | None
    n: int | None
    runs: dict[str, list[FigureFile]] = field(default_factory=dict)
    index: int | None = None  # the cell's position in the notebook (0-based), when recorded

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cell_id": self.cell_id,
            "n": self.n,
            "index": self.index,
            "runs": {rid: [f.to_dict() for f in files] for rid, files in self.runs.items()},
        }


@dataclass
class CellDiff:
    """A cell whose last executed source differs between the runs that executed it."""

    cell_id: str
    index: int | None  # position in the notebook, when recorded
    # run id -> last executed source (None: never executed); runs without cell records left out
    sources: dict[str, str | None]
    diffs: dict[str, str]  # run id -> unified diff against the first run having the cell, if any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def local_artifact_dir(artifact_uri: str) -> Path | None:
    """The folder behind a ``file:`` (or plain path) artifact URI; None for remote stores."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        return Path(url2pathname(unquote(parsed.path)))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path, or a Windows drive
        return Path(artifact_uri)
    return None


def run_figures(client: MlflowClient, run: Run) -> list[tuple[tuple[str, ...], FigureFile]]:
    """Every figure of ``run`` with its group key, in artifact order."""
    base = run.info.artifact_uri.rstrip("/")
    local = local_artifact_dir(base)
    try:
        listed = client.list_artifacts(run.info.run_id, FIGURES_DIR)
    except Exception:  # an artifact store that cannot be listed has no figures to show
        return []
    found: list[tuple[tuple[str, ...], FigureFile]] = []
    for item in listed:
        if item.is_dir:
            continue
        name = item.path.rsplit("/", 1)[-1]
        match = _FIGURE_NAME.match(name)
        local_path = str(local / item.path) if local is not None else None
        ext = match["ext"].lower() if match else name.rsplit(".", 1)[-1].lower() if "." in name else ""
        exec_count = int(match["exec"]) if match else None
        figure = FigureFile(item.path, ext, exec_count, f"{base}/{item.path}", local_path)
        key: tuple[str, ...] = ("cell", match["cell"], match["n"]) if match else ("name", name)
        found.append((key, figure))
    return found


def group_figures(client: MlflowClient, runs: list[Run]) -> list[FigureGroup]:
    """Figures of all runs grouped by ``(cell_id, n)``, groups in first-execution order."""
    groups: dict[tuple[str, ...], FigureGroup] = {}
    first_seen: dict[tuple[str, ...], tuple[int, int]] = {}
    for run in runs:
        for key, figure in run_figures(client, run):
            if key not in groups:
                if key[0] == "cell":
                    groups[key] = FigureGroup(f"{key[1]}-{key[2]}", key[1], int(key[2]))
                else:
                    groups[key] = FigureGroup(key[1], None, None)
            groups[key].runs.setdefault(run.info.run_id, []).append(figure)
            order = (figure.exec_count if figure.exec_count is not None else 10**9, len(first_seen))
            first_seen[key] = min(first_seen.get(key, order), order)
    for group in groups.values():
        for files in group.runs.values():
            files.sort(key=lambda f: (f.exec_count if f.exec_count is not None else -1, f.path))
    return [groups[k] for k in sorted(groups, key=lambda k: (first_seen[k], groups[k].n or 0))]


def read_cells(client: MlflowClient, run: Run) -> list[dict[str, Any]]:
    """The cell records of a run (``nbtrack/cells.json``); empty when absent or unreadable."""
    local = local_artifact_dir(run.info.artifact_uri)
    try:
        if local is not None:
            text = (local / CELLS_JSON).read_text(encoding="utf-8")
        else:
            with tempfile.TemporaryDirectory(prefix="nbtrack-cells-") as tmp:
                path = client.download_artifacts(run.info.run_id, CELLS_JSON, tmp)
                text = Path(path).read_text(encoding="utf-8")
        records = json.loads(text)
    except Exception:  # no cells recorded (older run, another tool's run): nothing to diff
        return []
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _last_sources(records: list[dict[str, Any]]) -> dict[str, tuple[str, int | None]]:
    """cell id -> (source of its last execution, notebook index)."""
    latest: dict[str, tuple[int, str, int | None]] = {}
    for record in records:
        cell_id = record.get("cell_id")
        if not cell_id:
            continue
        count = record.get("exec_count")
        count = count if isinstance(count, int) else -1
        index = record.get("index")
        index = index if isinstance(index, int) else None
        if cell_id not in latest or count >= latest[cell_id][0]:
            latest[cell_id] = (count, str(record.get("source") or ""), index)
    return {cid: (src, idx) for cid, (_, src, idx) in latest.items()}


def _lines(source: str) -> list[str]:
    return (source if source.endswith("\n") or not source else source + "\n").splitlines(True)


def cell_indexes(records: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """cell id -> its position in the notebook, from any run's cell records."""
    indexes: dict[str, int] = {}
    for recs in records.values():
        for record in recs:
            cell_id, index = record.get("cell_id"), record.get("index")
            if cell_id and isinstance(index, int):
                indexes.setdefault(cell_id, index)
    return indexes


def diff_cells(
    client: MlflowClient,
    runs: list[Run],
    labels: dict[str, str],
    records: dict[str, list[dict[str, Any]]] | None = None,
) -> list[CellDiff]:
    """Cells whose source differs between runs, with unified diffs against the first run having it.

    Only runs that executed a cell are compared: a run started by changing the
    parameters cell never re-ran the cells above it, and that is no change.
    ``records`` are the runs' cell records when the caller has read them already.
    """
    if records is None:
        records = {run.info.run_id: read_cells(client, run) for run in runs}
    # A run without cell records (not captured by nbtrack) says nothing about its cells.
    per_run = {rid: _last_sources(recs) for rid, recs in records.items() if recs}
    order: dict[str, tuple[int, int]] = {}
    for cells in per_run.values():
        for position, (cell_id, (_, index)) in enumerate(cells.items()):
            rank = (index if index is not None else 10**6, position)
            order[cell_id] = min(order.get(cell_id, rank), rank)
    result = []
    for cell_id in sorted(order, key=order.__getitem__):
        sources = {rid: (cells[cell_id][0] if cell_id in cells else None)
                   for rid, cells in per_run.items()}
        # A cell some runs never executed (a run started mid-notebook) is not a change.
        if len({src for src in sources.values() if src is not None}) <= 1:
            continue
        index = next((c[cell_id][1] for c in per_run.values() if cell_id in c), None)
        base_id = next(rid for rid, src in sources.items() if src is not None)
        base = sources[base_id] or ""
        diffs = {}
        for rid, src in sources.items():
            if rid == base_id or src is None or src == base:
                continue
            diffs[rid] = "".join(difflib.unified_diff(
                _lines(base), _lines(src or ""),
                fromfile=labels.get(base_id, base_id), tofile=labels.get(rid, rid),
            ))
        result.append(CellDiff(cell_id, index, sources, diffs))
    return result
