"""Which notebook is this kernel running, and which of its cells is executing?

Kernels are not told their notebook's path, and papermill/nbclient do not send
cell ids. Detection tries, in order: nbtrack's own variable (set by sweeps,
re-runs and the JupyterLab panel), papermill (its command line, or the output
notebook it keeps saving), Jupyter's session name, VS Code's
``__vsc_ipynb_file__``, Databricks' notebook context. Cells are matched by id
when the frontend sends one, else by source.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbtrack import env


@dataclass
class Detection:
    notebook: Path | None
    how: str  # which source told us, for %nbtrack status
    papermill_input: Path | None = None
    papermill_output: Path | None = None


def source_sha(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()


def _existing_notebook(raw: str | None, cwd: Path) -> Path | None:
    """Resolve a possibly relative notebook path against cwd and its ancestors."""
    if not raw or not raw.endswith(".ipynb"):
        return None
    path = Path(raw)
    if path.is_absolute():
        return path if path.is_file() else None
    for base in (cwd, *cwd.parents):
        candidate = base / path
        if candidate.is_file():
            return candidate.resolve()
    candidate = cwd / path.name
    return candidate.resolve() if candidate.is_file() else None


def _parent_cmdline() -> list[str]:
    try:
        import psutil

        return psutil.Process(os.getppid()).cmdline()
    except Exception:  # noqa: BLE001 - no psutil, no permission, parent gone
        return []


def _papermill_from_cmdline(cmdline: list[str], cwd: Path) -> tuple[Path, Path | None] | None:
    """``papermill IN OUT ...`` in the parent process (papermill's CLI starts the kernel)."""
    if not any(Path(part).name == "papermill" or part == "papermill" for part in cmdline[:3]):
        return None
    positional = [p for p in cmdline[1:] if p.endswith(".ipynb")]
    if not positional:
        return None
    parent_cwd = next(iter(_parent_cwd_list()), cwd)
    inp = _existing_notebook(positional[0], parent_cwd)
    if inp is None:
        return None
    out = (parent_cwd / positional[1]).resolve() if len(positional) > 1 else None
    return inp, out


def _papermill_output_nearby(cwd: Path, first_source: str | None) -> tuple[Path, Path] | None:
    """An output notebook papermill is writing now (metadata.papermill, no end_time yet)."""
    now = time.time()
    for folder in dict.fromkeys([cwd, *_parent_cwd_list()]):
        try:
            candidates = sorted(folder.glob("*.ipynb"), key=lambda p: -p.stat().st_mtime)[:50]
        except OSError:
            continue
        for path in candidates:
            try:
                if now - path.stat().st_mtime > 600:
                    break
                nb = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            meta = nb.get("metadata", {}).get("papermill", {})
            if not meta or meta.get("end_time"):
                continue
            if first_source and not any(
                "".join(c.get("source", "")) == first_source for c in nb.get("cells", [])
            ):
                continue
            inp = _existing_notebook(meta.get("input_path"), folder)
            if inp is not None:
                return inp, path.resolve()
    return None


def _parent_cwd_list() -> list[Path]:
    try:
        import psutil

        return [Path(psutil.Process(os.getppid()).cwd())]
    except Exception:  # noqa: BLE001
        return []


def _databricks_notebook() -> Path | None:
    try:
        from dbruntime.databricks_repl_context import get_context  # type: ignore[import-not-found]

        path = get_context().notebookPath
        return Path(path) if path else None
    except Exception:  # noqa: BLE001 - not on Databricks
        return None


def detect(user_ns: dict[str, Any], configured: str = "", first_source: str | None = None) -> Detection:
    """Find the notebook; ``first_source`` (an executed cell) enables content matching."""
    cwd = Path.cwd()
    for raw, how in ((configured, "config"), (env.NOTEBOOK.get(), "NBTRACK_NOTEBOOK")):
        found = _existing_notebook(raw, cwd)
        if found is not None:
            out = env.PAPERMILL_OUTPUT.get()
            return Detection(found, how, papermill_output=Path(out).resolve() if out else None)
    pm = _papermill_from_cmdline(_parent_cmdline(), cwd)
    if pm is not None:
        return Detection(pm[0], "papermill command line", pm[0], pm[1])
    pm = _papermill_output_nearby(cwd, first_source)
    if pm is not None:
        return Detection(pm[0], "papermill output notebook", pm[0], pm[1])
    session = user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
    found = _existing_notebook(str(session) if session else None, cwd)
    if found is not None:
        return Detection(found, "Jupyter session")
    found = _existing_notebook(user_ns.get("__vsc_ipynb_file__"), cwd)
    if found is not None:
        return Detection(found, "VS Code")
    found = _databricks_notebook()
    if found is not None:
        return Detection(found, "Databricks")
    if first_source:
        found = _match_in_folder(cwd, first_source)
        if found is not None:
            return Detection(found, "cell source matched in the working directory")
    return Detection(None, "none")


def _match_in_folder(folder: Path, source: str) -> Path | None:
    """The only notebook in ``folder`` containing a cell with exactly this source."""
    matches = []
    for path in folder.glob("*.ipynb"):
        try:
            cells = json.loads(path.read_text()).get("cells", [])
        except (OSError, ValueError):
            continue
        if any("".join(c.get("source", "")) == source for c in cells):
            matches.append(path.resolve())
    return matches[0] if len(matches) == 1 else None


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
    _by_source: dict[str, CellRef] = field(default_factory=dict)

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
            self._by_source.setdefault("".join(cell.get("source", "")).strip(), ref)

    def find(self, cell_id: str | None, source: str) -> CellRef | None:
        self._refresh()
        if cell_id and cell_id in self._by_id:
            return self._by_id[cell_id]
        return self._by_source.get(source.strip())

    def has_source(self, source: str) -> bool:
        self._refresh()
        return source.strip() in self._by_source
