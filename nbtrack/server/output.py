"""A run's output notebook as one static HTML page (``GET /nbtrack/api/output/RUN_ID``).

nbconvert's ``lab`` template draws it as JupyterLab would. Its templates are data files,
found on Jupyter's data path (``<sys.prefix>/share/jupyter``), which misses them where
nbconvert was installed outside this environment's prefix: a ``venv
--system-site-packages`` over an interpreter that holds nbconvert (what CI builds), a
``pip install --user``. :func:`nbconvert_templates` finds them beside the installed
package instead; with no templates at all the page is a plain rendering of the sources,
text outputs and tracebacks, so the evidence papermill saved is always readable.
"""

from __future__ import annotations

import re
import sys
from html import escape
from pathlib import Path
from typing import Any

#: The template the page is drawn with (nbconvert's ``--to html`` default).
TEMPLATE = "lab"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_IMAGES = ("image/png", "image/jpeg", "image/gif")


def notebook_html(path: Path) -> str:
    """The notebook at ``path`` as a standalone HTML page (tracebacks included)."""
    import nbformat

    node = nbformat.read(path, as_version=4)
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        return plain_html(node, note="nbconvert is not installed: the notebook is shown plainly.")
    extra: dict[str, Any] = {}
    if not _on_jupyter_path():
        templates = nbconvert_templates()
        if templates is None:
            return plain_html(node, note=f"nbconvert's {TEMPLATE!r} template is not installed: "
                                         "the notebook is shown plainly.")
        # Base templates are named relative to that folder: it goes on both search paths.
        extra = {"extra_template_basedirs": [str(templates)],
                 "extra_template_paths": [str(templates), str(templates / "compatibility")]}
    html, _ = HTMLExporter(template_name=TEMPLATE, **extra).from_notebook_node(node)
    return str(html)


def nbconvert_templates() -> Path | None:
    """The folder holding nbconvert's templates beside the installed nbconvert package (or
    under the base interpreter of a venv), or None when it has none."""
    candidates: list[Path] = []
    try:
        import nbconvert

        candidates += list(Path(nbconvert.__file__).resolve().parents)[1:6]  # up to its install prefix
    except ImportError:
        return None
    import site

    candidates += [Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, site.getuserbase())]
    for prefix in dict.fromkeys(candidates):
        folder = prefix / "share" / "jupyter" / "nbconvert" / "templates"
        if (folder / TEMPLATE / "conf.json").is_file():
            return folder
    return None


def _on_jupyter_path() -> bool:
    """Does Jupyter's data path (what nbconvert searches) hold the template?"""
    from jupyter_core.paths import jupyter_path

    return any((Path(p) / TEMPLATE / "conf.json").is_file() for p in jupyter_path("nbconvert", "templates"))


def plain_html(node: Any, *, note: str) -> str:
    """The notebook without nbconvert: each cell's source, its text outputs, images and
    tracebacks (colours removed), every value escaped."""
    parts = [f'<p style="color:#666">{escape(note)}</p>']
    for number, cell in enumerate(node.get("cells") or [], start=1):
        parts.append(f'<section><h4 style="margin:12px 0 2px">cell {number}</h4>'
                     f'<pre style="background:#f6f8fa;padding:6px">{escape(str(cell.get("source") or ""))}</pre>')
        for output in cell.get("outputs") or []:
            parts.append(_output_html(output))
        parts.append("</section>")
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>output notebook</title></head>'
            f'<body style="font-family:sans-serif">{"".join(parts)}</body></html>')


def _output_html(output: Any) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre>{escape(_text(output.get('text')))}</pre>"
    if kind == "error":
        traceback = _ANSI.sub("", "\n".join(output.get("traceback") or []))
        text = traceback or f"{output.get('ename')}: {output.get('evalue')}"
        return f'<pre style="background:#fdd;padding:6px">{escape(text)}</pre>'
    data = output.get("data") or {}
    for mime in _IMAGES:
        if mime in data:
            encoded = "".join(data[mime]) if isinstance(data[mime], list) else str(data[mime])
            return f'<img alt="output" style="max-width:100%" src="data:{mime};base64,{escape(encoded)}"/>'
    if "text/plain" in data:
        return f"<pre>{escape(_text(data['text/plain']))}</pre>"
    return ""


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")
