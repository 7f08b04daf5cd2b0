"""Which notebook is this kernel running?

Kernels are not told their notebook's path, and papermill/nbclient do not send
cell ids. Detection tries, in order: nbtrack's own setting (``%nbtrack config
notebook=``, or ``NBTRACK_NOTEBOOK`` set by sweeps, re-runs and the JupyterLab
panel), the parent process's command line (papermill, ``jupyter nbconvert``,
``jupyter execute``), the output notebook papermill keeps saving, Jupyter's
session name, VS Code's ``__vsc_ipynb_file__``, Databricks' notebook context,
and last the executed cells' sources matched against the notebooks of the
working directory (an output notebook of papermill or nbconvert is never the
notebook itself).

Detection runs at load and on a few cells after it, never on every cell: the
parent process is asked once, and each notebook file is parsed at most once per
modification (a cheap byte search rules most of them out unparsed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbtrack import env

MAX_SOURCES = 5  # executed cell sources worth matching; later cells rarely tell more
_RECENT_S = 600  # a papermill output notebook older than this is not being written now


@dataclass
class Detection:
    notebook: Path | None
    how: str  # which source told us, for %nbtrack status
    papermill_input: Path | None = None
    papermill_output: Path | None = None
    stops_on_error: bool = False  # run by nbconvert / jupyter execute, which stop at the first error
    candidates: tuple[Path, ...] = ()  # several notebooks hold the executed cells: ambiguous
    told: str | None = None  # NBTRACK_NOTEBOOK as it was when this detection ran


NBCONVERT = "nbconvert command line"  # Detection.how of a kernel run by nbconvert / jupyter execute


def not_found_message(detection: Detection) -> str:
    """The one-line warning when runs go to 'untitled': why, and the setting that fixes it."""
    why = []
    if detection.told:
        why.append(f"NBTRACK_NOTEBOOK={detection.told} does not exist here")
    if detection.candidates:
        names = [_shown(path) for path in detection.candidates]
        more = f" and {len(names) - 4} more" if len(names) > 5 else ""
        why.append(f"several notebooks hold its cells: {', '.join(names[:4] if more else names)}{more}")
    because = f" ({'; '.join(why)})" if why else ""
    return (f"could not tell which notebook this is{because}, so runs go to experiment 'untitled'. "
            "Name it with %nbtrack config notebook=PATH (or NBTRACK_NOTEBOOK=PATH).")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def detect(user_ns: dict[str, Any], configured: str = "", sources: Sequence[str] = ()) -> Detection:
    """Find the notebook; ``sources`` (cells executed so far) enable content matching."""
    told = env.NOTEBOOK.get()
    found = _find(user_ns, configured, told, list(sources)[:MAX_SOURCES])
    found.told = told
    return found


def _find(user_ns: dict[str, Any], configured: str, told: str | None, sources: list[str]) -> Detection:
    cwd = Path.cwd()
    for raw, how in ((configured, "config"), (told, "NBTRACK_NOTEBOOK")):
        found = _existing_notebook(raw, cwd)
        if found is not None:
            out = env.PAPERMILL_OUTPUT.get()
            return Detection(found, how, papermill_output=Path(out).resolve() if out else None)
    parent = _parent()
    pm = _papermill_from_cmdline(parent.cmdline, parent.cwd or cwd)
    if pm is not None:
        return Detection(pm[0], "papermill command line", pm[0], pm[1])
    nbconvert = _nbconvert_from_cmdline(parent.cmdline, parent.cwd or cwd, sources)
    if nbconvert is not None:
        return nbconvert
    pm = _papermill_output_nearby([cwd, *([parent.cwd] if parent.cwd else [])], sources)
    if pm is not None:
        return Detection(pm[0], "papermill output notebook", pm[0], pm[1])
    session = user_ns.get("__session__") or env.JPY_SESSION_NAME.get()
    found = _existing_notebook(str(session) if session else None, cwd)
    if found is not None:
        return Detection(found, "Jupyter session")
    found = _existing_notebook(user_ns.get("__vsc_ipynb_file__"), cwd)
    if found is not None:
        return Detection(found, "VS Code")
    found = _databricks_notebook()
    if found is not None:
        return Detection(found, "Databricks")
    found, candidates = _only_holder(sorted(cwd.glob("*.ipynb")), sources)
    if found is not None:
        return Detection(found, "cell source matched in the working directory")
    return Detection(None, "none", candidates=candidates)


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


# -- the process that started this kernel ---------------------------------------------------------


@dataclass(frozen=True)
class _Parent:
    cmdline: list[str]
    cwd: Path | None


_parents: dict[int, _Parent] = {}


def _parent() -> _Parent:
    """The parent's command line and working directory, asked once (it does not change)."""
    ppid = os.getppid()
    if ppid not in _parents:
        try:
            import psutil

            process = psutil.Process(ppid)
            _parents[ppid] = _Parent(process.cmdline(), Path(process.cwd()))
        except Exception:  # noqa: BLE001 - no psutil, no permission, parent gone
            _parents[ppid] = _Parent([], None)
    return _parents[ppid]


def _papermill_from_cmdline(cmdline: list[str], parent_cwd: Path) -> tuple[Path, Path | None] | None:
    """``papermill IN OUT ...`` in the parent process (papermill's CLI starts the kernel)."""
    if not any(Path(part).name == "papermill" or part == "papermill" for part in cmdline[:3]):
        return None
    positional = [p for p in cmdline[1:] if p.endswith(".ipynb")]
    if not positional:
        return None
    inp = _existing_notebook(positional[0], parent_cwd)
    if inp is None:
        return None
    out = (parent_cwd / positional[1]).resolve() if len(positional) > 1 else None
    return inp, out


_NBCONVERT_COMMANDS = {"jupyter-nbconvert", "nbconvert", "jupyter-execute"}
_OUTPUT_OPTIONS = {"--output", "--output-dir", "--NbConvertApp.output_base", "--FilesWriter.build_directory"}


def _nbconvert_from_cmdline(cmdline: list[str], parent_cwd: Path, sources: list[str]) -> Detection | None:
    """``jupyter nbconvert --execute NB...`` / ``python -m nbconvert`` / ``jupyter execute NB...``
    in the parent process. Several notebooks on one command line run one after the other, each in
    its own kernel: the executed cells tell which one this is."""
    names = [Path(part).name for part in cmdline[:4]]
    at = next((i for i, name in enumerate(names) if name in _NBCONVERT_COMMANDS), None)
    if at is None:
        at = next((i + 1 for i, name in enumerate(names[:-1])
                   if name == "jupyter" and names[i + 1] in ("nbconvert", "execute")), None)
    if at is None:
        return None
    args = cmdline[at + 1:]
    inputs = [p for i, p in enumerate(args)
              if p.endswith(".ipynb") and not p.startswith("-") and (i == 0 or args[i - 1] not in _OUTPUT_OPTIONS)]
    paths = list(dict.fromkeys(found for p in inputs if (found := _existing_notebook(p, parent_cwd))))
    if not paths:
        return None
    allow_errors = any(a == "--allow-errors" or a.lower().endswith("allow_errors=true") for a in args)
    how = NBCONVERT
    if len(paths) == 1:
        return Detection(paths[0], how, stops_on_error=not allow_errors)
    found, candidates = _only_holder(paths, sources)
    return Detection(found, how, stops_on_error=not allow_errors, candidates=() if found else candidates)


def _databricks_notebook() -> Path | None:
    try:
        from dbruntime.databricks_repl_context import get_context  # type: ignore[import-not-found]

        path = get_context().notebookPath
        return Path(path) if path else None
    except Exception:  # noqa: BLE001 - not on Databricks
        return None


# -- notebooks beside the kernel: read once per modification ---------------------------------------


@dataclass
class _Seen:
    """What detection learnt from one notebook file at one modification time."""

    stamp: tuple[int, int]  # (mtime_ns, size)
    mtime: float
    papermill: dict[str, Any] | None = None  # metadata.papermill ({} if none), once known
    sources: frozenset[int] | None = None  # hash of each code cell's stripped source, once parsed
    absent: set[int] = field(default_factory=set)  # sources known not to be there (byte search)


_seen: dict[Path, _Seen] = {}


def _stat(path: Path) -> _Seen | None:
    try:
        st = path.stat()
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    seen = _seen.get(path)
    if seen is None or seen.stamp != stamp:
        seen = _seen[path] = _Seen(stamp, st.st_mtime)
    return seen


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _parse(seen: _Seen, data: bytes) -> None:
    try:
        nb = json.loads(data)
        cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        seen.papermill = nb.get("metadata", {}).get("papermill") or {}
        seen.sources = frozenset(hash("".join(c.get("source", "")).strip()) for c in cells)
    except (ValueError, AttributeError, TypeError):  # not a notebook
        seen.papermill, seen.sources = {}, frozenset()


def _papermill_meta(path: Path) -> dict[str, Any]:
    seen = _stat(path)
    if seen is None:
        return {}
    if seen.papermill is None:
        data = _read(path)
        if b'"papermill"' in data:
            _parse(seen, data)
        else:
            seen.papermill = {}
    return seen.papermill or {}


def _holds_any(path: Path, sources: list[str]) -> bool:
    """Whether the notebook has a code cell with one of these sources (compared stripped)."""
    seen = _stat(path)
    if seen is None:
        return False
    hashes = {hash(s.strip()) for s in sources}
    if seen.sources is None:
        unknown = [s for s in sources if hash(s.strip()) not in seen.absent]
        if not unknown:
            return False
        data = _read(path)
        if not any(_may_hold(data, s) for s in unknown):
            seen.absent.update(hash(s.strip()) for s in unknown)
            return False
        _parse(seen, data)
    return bool(hashes & (seen.sources or frozenset()))


def _may_hold(data: bytes, source: str) -> bool:
    """A notebook holding this cell has its first line in the file, JSON-escaped: a byte search
    that rules out most notebooks without parsing them."""
    line = source.strip().split("\n", 1)[0]
    escaped = {json.dumps(line, ensure_ascii=ascii)[1:-1].encode() for ascii in (False, True)}
    return any(text in data for text in escaped)


def _is_output(path: Path) -> bool:
    """An output notebook of nbconvert (``*.nbconvert.ipynb``) or papermill (its metadata)."""
    return path.name.endswith(".nbconvert.ipynb") or bool(_papermill_meta(path))


def _only_holder(paths: list[Path], sources: list[str]) -> tuple[Path | None, tuple[Path, ...]]:
    """The one notebook holding an executed cell, preferring inputs over outputs. Else, when
    several hold every executed cell, those (nothing tells them apart: ambiguous)."""
    sources = [source for source in sources if not _says_nothing(source)]
    paths = [path for path in paths if _holds_any(path, sources)]  # each file read once at most
    every = paths
    for source in sources:
        holders = [path for path in paths if _holds_any(path, [source])]
        every = [path for path in every if path in holders]
        if len(holders) > 1:
            holders = _inputs(holders)
        if len(holders) == 1:
            return holders[0].resolve(), ()
    every = _inputs(every)
    return None, tuple(path.resolve() for path in every) if len(every) > 1 else ()


def _says_nothing(source: str) -> bool:
    """Empty, comments, or nbtrack's own line: in every tracked notebook, so no clue to which."""
    lines = [line.strip() for line in source.strip().splitlines()]
    return all(not line or line.startswith(("#", "%load_ext nbtrack", "%reload_ext nbtrack", "%nbtrack"))
               for line in lines)


def _inputs(paths: list[Path]) -> list[Path]:
    """Drop output notebooks, unless nothing else is left."""
    return [path for path in paths if not _is_output(path)] or paths


def _papermill_output_nearby(folders: list[Path], sources: list[str]) -> tuple[Path, Path] | None:
    """An output notebook papermill is writing now (metadata.papermill, no end_time yet)."""
    now = time.time()
    for folder in dict.fromkeys(folders):
        try:
            paths = list(folder.glob("*.ipynb"))
        except OSError:
            continue
        recent = [(seen.mtime, path) for path in paths
                  if (seen := _stat(path)) is not None and now - seen.mtime <= _RECENT_S]
        for _, path in sorted(recent, reverse=True)[:50]:
            meta = _papermill_meta(path)
            if not meta or meta.get("end_time"):
                continue
            if sources and not _holds_any(path, sources):
                continue
            inp = _existing_notebook(meta.get("input_path"), folder)
            if inp is not None:
                return inp, path.resolve()
    return None
