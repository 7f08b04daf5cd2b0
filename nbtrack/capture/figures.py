"""Figures are whatever a cell displays as a picture, captured at the display publisher.

Hooking the publisher rather than matplotlib covers every backend, figures the
user closed, ``IPython.display.Image``, PIL images and the bundles of plotly,
Vega/Altair and Bokeh, with the same code.

An interactive chart is kept as its own document, which redraws it exactly:
a Vega-Lite spec (``.vl.json``), a Vega spec (``.vg.json``), plotly's figure
JSON, Bokeh's document JSON (``.bokeh.json``). Altair 5/6 display a chart as a
vega-embed HTML page only (``text/html``): its spec is read back from the
page, and the page itself is kept only when no spec can be found. Other HTML
(tables, widgets' fallbacks) is not a figure.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from nbtrack.capture.notebook import source_sha

if TYPE_CHECKING:
    from nbtrack.capture.session import TrackingSession

# Raster/vector images, best first: one file per display.
_IMAGES = (("image/png", "png"), ("image/svg+xml", "svg"), ("image/jpeg", "jpg"), ("image/gif", "gif"))
# Chart documents: mime -> file extension.
_SPECS = (
    ("application/vnd.vegalite.v6+json", "vl.json"),
    ("application/vnd.vegalite.v5+json", "vl.json"),
    ("application/vnd.vegalite.v4+json", "vl.json"),
    ("application/vnd.vega.v5+json", "vg.json"),
    ("application/vnd.plotly.v1+json", "json"),
)
_BOKEH = "application/vnd.bokehjs_exec.v0+json"
# vega-embed pages (altair's html renderer) call a function with the spec: ``})({spec}, {options});``
_VEGA_EMBED_CALL = re.compile(r"\}\)\(\s*(?=\{)")
_BOKEH_DOCS = re.compile(r"\bdocs_json\s*=\s*(?=\{)")


def _as_bytes(value: Any, binary: bool) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, list):  # nbformat multi-line strings
        value = "".join(value)
    if binary:
        return base64.b64decode(value)
    return str(value).encode("utf-8")


def figure_from_bundle(data: Any) -> tuple[str, str, bytes] | None:
    """``(extension, mime, content)`` if a display bundle is a figure, else None."""
    if not isinstance(data, dict):
        return None
    for mime, ext in _IMAGES:
        if mime in data:
            return ext, mime, _as_bytes(data[mime], binary=ext in ("png", "jpg", "gif"))
    for mime, ext in _SPECS:
        if mime in data:
            spec = data[mime]
            content = spec if isinstance(spec, (bytes, str)) else json.dumps(spec, default=str)
            return ext, mime, _as_bytes(content, binary=False)
    if _BOKEH in data:
        script = _as_bytes(data.get("application/javascript", ""), binary=False).decode("utf-8", "replace")
        document = _object_after(script, _BOKEH_DOCS)
        if document is not None:
            return "bokeh.json", _BOKEH, json.dumps(document).encode("utf-8")
        if script:  # a newer BokehJS script: keep what draws the chart
            return "bokeh.js", "application/javascript", script.encode("utf-8")
    html = data.get("text/html")
    if isinstance(html, list):
        html = "".join(html)
    if isinstance(html, str) and "vegaEmbed(" in html:
        return _vega_from_page(html) or ("html", "text/html", html.encode("utf-8"))
    if isinstance(html, str) and "Plotly.newPlot(" in html:  # plotly's HTML renderers
        return "html", "text/html", html.encode("utf-8")
    return None


def _vega_from_page(page: str) -> tuple[str, str, bytes] | None:
    """The Vega-Lite (or Vega) spec a vega-embed page draws, as a figure; None if not found."""
    spec = _object_after(page, _VEGA_EMBED_CALL)
    if spec is None:
        return None
    schema = str(spec.get("$schema", ""))
    content = json.dumps(spec).encode("utf-8")
    if "/vega/" in schema:
        return "vg.json", "application/vnd.vega.v5+json", content
    major = re.search(r"/vega-lite/v(\d+)", schema)
    return "vl.json", f"application/vnd.vegalite.v{major.group(1) if major else 5}+json", content


def _object_after(source: str, marker: re.Pattern[str]) -> dict[str, Any] | None:
    """The JSON object that follows the last match of ``marker`` in a script, if any."""
    matches = list(marker.finditer(source))
    if not matches:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(source, matches[-1].end())
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def render_figure(figure: Any) -> tuple[str, str, bytes]:
    """``nbtrack.log_figure``'s input (matplotlib, plotly, PIL, bytes, anything displayable) as a file."""
    if isinstance(figure, (bytes, bytearray)):
        raw = bytes(figure)
        if raw.startswith(b"\x89PNG"):
            return "png", "image/png", raw
        if raw.lstrip().startswith((b"<svg", b"<?xml")):
            return "svg", "image/svg+xml", raw
        if raw.startswith(b"\xff\xd8"):
            return "jpg", "image/jpeg", raw
        raise TypeError("bytes given to log_figure are not PNG, SVG or JPEG")
    savefig = getattr(figure, "savefig", None)  # matplotlib Figure (or anything like it)
    if callable(savefig):
        import io

        buffer = io.BytesIO()
        savefig(buffer, format="png", bbox_inches="tight")
        return "png", "image/png", buffer.getvalue()
    figure_attr = getattr(figure, "figure", None)  # matplotlib Axes
    if figure_attr is not None and callable(getattr(figure_attr, "savefig", None)):
        return render_figure(figure_attr)
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(figure)  # type: ignore[no-untyped-call]
    found = figure_from_bundle(data)
    if found is None:
        raise TypeError(f"cannot log a {type(figure).__name__} as a figure (no image representation)")
    return found


# -- recording a run's figures -------------------------------------------------------------------


class FiguresRecorder:
    """Every figure a cell displays, and ``nbtrack.log_figure``, as ``figures/<exec>-<cell>-<n>.<ext>``."""

    def __init__(self, session: TrackingSession) -> None:
        self.session = session

    def on_display(self, data: Any, transient: Any = None) -> None:
        """Called for every display_data / execute_result the kernel publishes."""
        session = self.session
        with session.safety.guard("capturing a figure"):
            found = figure_from_bundle(data)
            cell = session.cell
            if cell is not None:
                cell.outputs += 1
            if found is None:
                return
            display_id = (transient or {}).get("display_id") if isinstance(transient, dict) else None
            self._save(*found, display_id=display_id)

    def log(self, figure: Any, name: str | None = None) -> None:
        with self.session.safety.guard("logging a figure"):
            ext, mime, content = render_figure(figure)
            if name:
                artifact = name if "." in PurePosixPath(name).name else f"{name}.{ext}"
                self._write(f"figures/{artifact}", mime, content)
            else:
                self._save(ext, mime, content)

    def _save(self, ext: str, mime: str, content: bytes, display_id: str | None = None) -> None:
        cell = self.session.cell
        if cell is None:
            exec_count, label = getattr(self.session.shell, "execution_count", 0), "x"
            n = 0
        else:
            exec_count, label = cell.exec_count, cell.cell_id or "x" + source_sha(cell.raw)[:8]
            if display_id is not None and display_id in cell.display_ids:
                n = cell.display_ids[display_id]  # an updated display replaces its figure
            else:
                n = cell.figures
                cell.figures += 1
                if display_id is not None:
                    cell.display_ids[display_id] = n
        self._write(f"figures/{exec_count}-{label}-{n}.{ext}", mime, content)

    def _write(self, artifact: str, mime: str, content: bytes) -> None:
        session = self.session
        run = session.ensure_run()
        blob = session.journal.write_blob(f"{run.key}/{artifact}", content)
        cell = session.cell
        session.record("artifact", path=artifact, file=blob, kind="figure", mime=mime,
                       cell_id=cell.cell_id if cell else None, exec_count=cell.exec_count if cell else None)
