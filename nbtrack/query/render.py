"""HTML for runs, shown inline by ``%nbtrack runs`` and the panel's widgets, and the cells
every nbtrack HTML table is made of (the comparison's too: :mod:`nbtrack.query.compare_html`).

Every value is HTML-escaped (params are user data). Styles are inline, so the
output survives notebook sanitisers and reads the same in any HTML viewer.
Numbers, durations and times read as the JupyterLab panel shows them.
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from nbtrack.query.values import is_missing

if TYPE_CHECKING:
    import pandas as pd

MAX_CELL_CHARS = 120

TABLE_ATTRS = 'style="border-collapse:collapse;font-size:12px;margin:4px 0 12px 0"'
CELL_STYLE = "border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top"
DIFF_ROW_STYLE = "background:#fff3bf"


def format_number(value: float) -> str:
    """A number as the JupyterLab panel shows it (``labextension/src/format.ts``): 4
    significant digits, exponents below 1e-3 and from 1e6, whole numbers whole."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        mantissa, exponent = f"{value:.3e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{'-' if exponent.startswith('-') else '+'}{int(exponent[1:])}"
    return f"{value:.4g}"


def format_duration(seconds: float | None) -> str:
    """"6.2 s", "22 s", "3 min 5 s", "1 h 2 min": as the panel shows durations."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 60:
        return f"{seconds:.{1 if seconds < 10 else 0}f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {round(seconds % 60)} s"
    return f"{minutes // 60} h {minutes % 60} min"


def local_time(value: Any) -> str:
    """A timestamp in this machine's local time, to the minute (what the panel shows too)."""
    to_datetime = getattr(value, "to_pydatetime", None)  # pandas' Timestamp.astimezone needs a zone
    moment = to_datetime() if callable(to_datetime) else value
    if not isinstance(moment, datetime):
        return str(value)
    try:
        return moment.astimezone().strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OSError):
        return str(value)


def list_time(value: Any, now: datetime | None = None) -> str:
    """A run's start as the panel's list shows it (``formatStart`` in labextension/src/format.ts):
    ``14:03`` today, ``Mar 3 14:03`` before, in local time; missing is empty."""
    to_datetime = getattr(value, "to_pydatetime", None)
    moment = to_datetime() if callable(to_datetime) else value
    if not isinstance(moment, datetime) or moment != moment:  # NaT is not equal to itself
        return ""
    local = moment.astimezone()
    today = (now or datetime.now().astimezone()).astimezone().date()
    return local.strftime("%H:%M") if local.date() == today else f"{local:%b} {local.day} {local:%H:%M}"


def cell_text(value: Any) -> str:
    """A cell value as escaped text; missing values are an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format_number(value)
    if hasattr(value, "isoformat"):
        try:
            import pandas as pd

            if pd.isna(value):
                return ""
        except (ImportError, TypeError, ValueError):
            pass
        return escape(local_time(value))
    return escape(str(value))


def td(content: str, style: str = "", title: str = "") -> str:
    """A table cell of HTML ``content`` (escaped already), with a hover ``title``."""
    attr_title = f' title="{escape(title)}"' if title else ""
    return f'<td style="{CELL_STYLE};{style}"{attr_title}>{content}</td>'


def value_td(value: Any, style: str = "") -> str:
    """A value's cell; a long one (a 6,000-character param) is clipped, in full on hover."""
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return td(escape(value[:MAX_CELL_CHARS]) + "…", style, title=value)
    return td(cell_text(value), style)


def th(content: str) -> str:
    """A header cell of HTML ``content``."""
    return f'<th style="{CELL_STYLE};background:#f6f8fa">{content}</th>'


def column_label(column: str, columns: list[str]) -> str:
    """``params.lr`` → ``lr``, unless a metric has that name too (then the prefix stays)."""
    group, _, name = column.partition(".")
    if group not in ("params", "metrics") or not name:
        return column
    other = f"{'metrics' if group == 'params' else 'params'}.{name}"
    return column if other in columns else name


def render_runs_html(df: pd.DataFrame, *, title: str | None = None) -> str:
    """A runs DataFrame (``nbtrack.runs()``) as an HTML table, run ids in full for copying."""
    heading = f"<h4>{escape(title)}</h4>" if title else ""
    if df.empty:
        return f'{heading}<p class="nbtrack-runs">no runs yet</p>'
    columns = [str(c) for c in df.columns]
    header = "".join(
        f'<th style="{CELL_STYLE};background:#f6f8fa" title="{escape(c)}">{escape(column_label(c, columns))}</th>'
        for c in columns
    )
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for column, value in zip(df.columns, row, strict=True):
            style = "font-family:monospace" if column == "run_id" else ""
            cells.append(value_td(None if is_missing(value) else value, style))
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'{heading}<div class="nbtrack-runs" style="overflow-x:auto"><table {TABLE_ATTRS}>'
            f"<thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


class RunsTable:
    """A runs DataFrame that displays as :func:`render_runs_html` (``%nbtrack runs``)."""

    def __init__(self, frame: pd.DataFrame, title: str | None = None) -> None:
        self.frame = frame
        self.title = title

    def _repr_html_(self) -> str:
        return render_runs_html(self.frame, title=self.title)

    def __repr__(self) -> str:
        if self.frame.empty:
            return "no runs yet"
        columns = [c for c in ("run_id", "run_name", "status", "start_time") if c in self.frame]
        return self.frame[columns].to_string(index=False)
