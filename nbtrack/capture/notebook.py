"""The notebook on disk and its cells: which cell is executing, by id or by source.

Kernels run by papermill or nbconvert are sent no cell ids, so a cell is matched
by its source; the file is re-read only when it changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path


def source_sha(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class CellRef:
    cell_id: str | None
    index: int | None
    tags: tuple[str, ...] = ()


@dataclass
class NotebookFile:
    """The notebook on disk, re-read only when its mtime changes."""

    path: Path | None
    _mtime: float = -1.0
    _by_id: dict[str, CellRef] = field(default_factory=dict)
    _by_source: dict[str, list[CellRef]] = field(default_factory=dict)  # in notebook order

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            cells = json.loads(self.path.read_text()).get("cells", [])
        except (OSError, ValueError):
            return
        self._mtime = mtime
        self._by_id.clear()
        self._by_source.clear()
        code_index = 0
        for cell in cells:
            if cell.get("cell_type") != "code":
                continue
            tags = tuple(cell.get("metadata", {}).get("tags", []) or ())
            ref = CellRef(cell.get("id"), code_index, tags)
            code_index += 1
            if ref.cell_id:
                self._by_id[ref.cell_id] = ref
            self._by_source.setdefault("".join(cell.get("source", "")).strip(), []).append(ref)

    def find(self, cell_id: str | None, source: str, after: int | None = None) -> CellRef | None:
        """The cell with this id, else with this source: of several cells with the same source,
        the first one below ``after`` (the index of the cell that ran before), else the first."""
        self._refresh()
        if cell_id and cell_id in self._by_id:
            return self._by_id[cell_id]
        refs = self._by_source.get(source.strip())
        if not refs:
            return None
        below = [ref for ref in refs if after is not None and ref.index is not None and ref.index > after]
        return below[0] if below else refs[0]

    def has_source(self, source: str) -> bool:
        self._refresh()
        return source.strip() in self._by_source
