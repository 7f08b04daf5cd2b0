"""Figures are whatever a cell displays as a picture, captured at the display publisher.

Hooking the publisher rather than matplotlib covers every backend, figures the
user closed, ``IPython.display.Image``, PIL images and the JSON/HTML bundles of
plotly, Vega/Altair and Bokeh, with the same code.
"""

from __future__ import annotations

import base64
import json
from typing import Any

# Raster/vector images, best first: one file per display.
_IMAGES = (("image/png", "png"), ("image/svg+xml", "svg"), ("image/jpeg", "jpg"), ("image/gif", "gif"))
# Interactive plot bundles: saved as their HTML when present, else their JSON spec.
_PLOT_BUNDLES = (
    "application/vnd.plotly.v1+json",
    "application/vnd.vegalite.v6+json",
    "application/vnd.vegalite.v5+json",
    "application/vnd.vegalite.v4+json",
    "application/vnd.vega.v5+json",
    "application/vnd.bokehjs_exec.v0+json",
)


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
    for mime in _PLOT_BUNDLES:
        if mime in data:
            if "text/html" in data:
                return "html", "text/html", _as_bytes(data["text/html"], binary=False)
            spec = data[mime]
            content = spec if isinstance(spec, (bytes, str)) else json.dumps(spec, default=str)
            return "json", mime, _as_bytes(content, binary=False)
    return None


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

    data, _ = DisplayFormatter().format(figure)
    found = figure_from_bundle(data)
    if found is None:
        raise TypeError(f"cannot log a {type(figure).__name__} as a figure (no image representation)")
    return found
