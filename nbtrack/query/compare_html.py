"""A comparison of runs as HTML: ``%nbtrack compare`` shows it inline and
``nbtrack compare --html FILE`` saves it as a page.

Sections: runs, why failed runs failed, the notebook's own MLflow runs, params (those that
differ first and marked), inputs, metrics (best marked), the ``system/`` measures (their peak,
no best), metric curves (the notebook's own first), figures side by side, changed cells. Built from the
cells of :mod:`nbtrack.query.render`, so it reads like the run list. Plots are drawn on a
bare ``matplotlib.figure.Figure`` (never pyplot), so rendering touches no global figure state
and nbtrack never captures its own plot as a user's figure.
"""

from __future__ import annotations

import base64
import io
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrack import tags
from nbtrack.query.render import (
    DIFF_ROW_STYLE,
    TABLE_ATTRS,
    cell_text,
    format_duration,
    local_time,
    td,
    th,
    value_td,
)
from nbtrack.query.values import is_missing

if TYPE_CHECKING:
    from nbtrack.query.artifacts import FigureFile
    from nbtrack.query.comparison import Comparison

#: Local images up to this size are inlined (base64) next to each other.
MAX_INLINE_BYTES = 2_000_000
MAX_PLOTTED_METRICS = 12
_IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
                "svg": "image/svg+xml", "gif": "image/gif"}
_BEST = "font-weight:bold;color:#1a7f37"


def render_comparison_html(comparison: Comparison) -> str:
    """The whole comparison: runs, params diff, inputs, metrics (best marked), curves, figures,
    cells."""
    parts = ['<div class="nbtrack-compare">', _runs_section(comparison), _failures_section(comparison),
             _user_runs_section(comparison), _params_section(comparison), _inputs_section(comparison),
             _metrics_section(comparison), _system_section(comparison)]
    try:
        plot = metric_plot_uri(comparison)
    except ImportError:  # matplotlib comes with nbtrack[lab] (or any install of it)
        parts.append('<h4>Metric curves</h4><p style="color:#666">Install matplotlib to draw the '
                     "curves: pip install matplotlib</p>")
        plot = None
    if plot:
        parts.append('<h4>Metric curves</h4><img alt="metric curves" '
                     f'style="max-width:100%" src="{plot}"/>')
    parts.append(_figures_section(comparison))
    parts.append(_cells_section(comparison))
    parts.append("</div>")
    return "".join(parts)


def render_comparison_page(comparison: Comparison) -> str:
    """A standalone HTML document (``nbtrack compare --html FILE``)."""
    title = "nbtrack: " + ", ".join(r.label for r in comparison.runs)
    return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title></head>"
            '<body style="font-family:sans-serif">'
            f"{render_comparison_html(comparison)}</body></html>\n")


def _run_headers(comparison: Comparison) -> str:
    return "".join(th(escape(r.label)) for r in comparison.runs)


def _runs_section(comparison: Comparison) -> str:
    from nbtrack.query.models import describe

    models = any(run.models for run in comparison.runs)  # a column only when a run has one
    rows = []
    for run in comparison.runs:
        info = run.to_dict()
        rows.append("<tr>" + "".join([
            td(escape(run.label)), td(escape(run.run_id), "font-family:monospace"),
            td(escape(run.experiment_name)), td(escape(run.status.lower())),
            td(escape(_local_iso(info["start_time"]))),
            td(escape(format_duration(info["duration_s"]))),
            *([td(escape(", ".join(describe(m) for m in run.models)))] if models else []),
        ]) + "</tr>")
    titles = ("run", "run id", "notebook", "status", "start", "duration") + (("model",) if models else ())
    header = "".join(th(h) for h in titles)
    return (f"<h4>Runs</h4><table {TABLE_ATTRS}><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _local_iso(text: str | None) -> str:
    if not text:
        return ""
    from datetime import datetime

    return local_time(datetime.fromisoformat(text))


def _user_runs_section(comparison: Comparison) -> str:
    """Links to the runs the notebook's own MLflow made (its store, never nbtrack's)."""
    from nbtrack.query.links import ui_command

    rows = []
    for run in comparison.runs:
        for item in run.user_runs:
            run_id = escape(item["run_id"])
            link = f'<a href="{escape(item["url"])}" target="_blank">{run_id}</a>' if item.get("url") else run_id
            uri = item.get("tracking_uri") or ""
            rows.append("<tr>" + "".join([
                td(escape(run.label)), td(link, "font-family:monospace"), td(escape(item.get("name") or "")),
                td(escape(item.get("experiment_id") or "")),
                td(escape(uri), title=ui_command(uri) if uri else ""),
            ]) + "</tr>")
    if not rows:
        return ""
    header = "".join(th(h) for h in ("nbtrack run", "MLflow run", "name", "experiment", "its store"))
    return (f"<h4>The notebook's own MLflow runs</h4><table {TABLE_ATTRS}><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _failures_section(comparison: Comparison) -> str:
    """Why each failed run failed: the error, its cell by position and source, where the output
    notebook is (what the JupyterLab comparison shows; :mod:`nbtrack.query.failures`)."""
    blocks = []
    for run in comparison.runs:
        error = run.error
        if not error:
            continue
        cell = error.get("cell") or {}
        where = f" in cell {cell['number']}" if cell.get("number") else ""
        if where and isinstance(cell.get("exec_count"), int):
            where += f" (execution [{cell['exec_count']}])"
        source = (f'<pre style="background:#f6f8fa;padding:6px;font-size:11px">{escape(str(cell["source"]))}</pre>'
                  if cell.get("source") else "")
        output = error.get("output_path") or error.get("output")
        note = (f'<div style="color:#666;font-size:11px">output notebook: {escape(str(output))}</div>'
                if output else "")
        blocks.append(f'<div class="nbtrack-failure"><p><b>{escape(run.label)}</b> {escape(run.status.lower())}'
                      f'{escape(where)}: <code style="color:#b00">{escape(str(error.get("name") or ""))}</code>'
                      f' {escape(str(error.get("value") or ""))}</p>{source}{note}</div>')
    if not blocks:
        return ""
    return f"<h4>{'Why it failed' if len(blocks) == 1 else 'Why they failed'}</h4>{''.join(blocks)}"


def _params_section(comparison: Comparison) -> str:
    params = comparison.params
    if params.empty:
        return "<h4>Params</h4><p>no params logged</p>"
    rows = []
    # The params that differ first, then by name, as the panel shows them.
    ordered = sorted(params.iterrows(), key=lambda item: (not bool(item[1]["differs"]), str(item[0])))
    for key, row in ordered:
        differs = bool(row["differs"])
        style = DIFF_ROW_STYLE if differs else ""
        cells = [td(escape(str(key)) + (" ≠" if differs else ""), style)]
        cells += [value_td(None if is_missing(row[rid]) else row[rid], style)
                  for rid in comparison.run_ids]
        marker = ' class="nbtrack-differs"' if differs else ""
        rows.append(f"<tr{marker}>{''.join(cells)}</tr>")
    return (f"<h4>Params</h4><table {TABLE_ATTRS}><thead><tr>{th('param')}"
            f"{_run_headers(comparison)}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _inputs_section(comparison: Comparison) -> str:
    """"inputs differ: columns …" and one line per moved table; "same inputs" otherwise."""
    from nbtrack.query.inputs import drift_headline

    inputs = comparison.inputs
    if not inputs.get("runs"):
        return ""
    headline = drift_headline(inputs)
    if headline is None:
        tables = sorted({r["table_uri"] for rs in inputs["runs"].values() for r in rs})
        return (f'<h4>Inputs</h4><p class="nbtrack-inputs">same inputs: '
                f"{escape(', '.join(tables))}</p>")
    labels = comparison.labels
    items = "".join(
        f"<li>{escape(labels.get(d['run_a'], d['run_a']))} → "
        f"{escape(labels.get(d['run_b'], d['run_b']))}: {escape(d['summary'])}</li>"
        for d in inputs["drift"]
    )
    return (f'<h4>Inputs</h4><p class="nbtrack-inputs" style="{DIFF_ROW_STYLE}">'
            f"<b>{escape(headline)}</b></p><ul style=\"font-size:12px\">{items}</ul>")


def _is_system(key: object) -> bool:
    return str(key).startswith(tags.SYSTEM_METRICS)


def _metrics_section(comparison: Comparison) -> str:
    metrics = comparison.metrics
    own = [key for key in metrics.index if not _is_system(key)]
    if not own:
        return "<h4>Metrics</h4><p>no metrics logged</p>"
    rows = []
    for key in own:
        direction = comparison.directions[key]
        winners = comparison.best_runs.get(key, {})
        arrow = "↓" if direction == "min" else "↑"
        cells = [td(f"{escape(str(key))} {arrow}", title=f"best = {direction}")]
        for rid in comparison.run_ids:
            last = metrics.at[key, (rid, "last")]
            best = metrics.at[key, (rid, "best")]
            if rid not in comparison.histories.get(key, {}) and is_missing(last):
                cells.append(td(""))
                continue
            text = _mark(_number(last), rid in winners.get("last", []))
            if not (is_missing(best) and is_missing(last)) and best != last:
                text += (f' <span style="color:#666">(best '
                         f'{_mark(_number(best), rid in winners.get("best", []))})</span>')
            cells.append(td(text))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f"<h4>Metrics</h4><table {TABLE_ATTRS}><thead><tr>{th('metric (last)')}"
            f"{_run_headers(comparison)}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _system_section(comparison: Comparison) -> str:
    """The ``system/`` measures of each run's kernel: their peak, names without the prefix and
    no best (more memory is no better run), as ``nbtrack compare`` and the panel show them."""
    metrics = comparison.metrics
    keys = [key for key in metrics.index if _is_system(key)]
    if not keys:
        return ""
    rows = []
    for key in keys:
        cells = [td(escape(str(key).removeprefix(tags.SYSTEM_METRICS)), title=str(key))]
        for rid in comparison.run_ids:
            peak = metrics.at[key, (rid, "best")]
            cells.append(td("" if is_missing(peak) else _number(peak)))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f"<h4>System</h4><table {TABLE_ATTRS}><thead><tr>{th('measure (peak)')}"
            f"{_run_headers(comparison)}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _number(value: object) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return cell_text(value)


def _mark(text: str, is_best: bool) -> str:
    if not is_best:
        return text
    return f'<span class="nbtrack-best" style="{_BEST}" title="best">★ {text}</span>'


def metric_plot_uri(comparison: Comparison) -> str | None:
    """Overlaid curves (one axes per metric, one line per run) as an SVG data URI.

    None when no run has a metric with more than one point.
    """
    curves = {
        key: {rid: pts for rid, pts in per_run.items() if len(pts) > 1}
        for key, per_run in comparison.histories.items()
    }
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    keys = sorted(curves, key=lambda k: (_is_system(k), k))[:MAX_PLOTTED_METRICS]  # own metrics first
    cols = min(3, len(keys))
    nrows = math.ceil(len(keys) / cols)
    figure = Figure(figsize=(4.2 * cols, 3.0 * nrows), layout="constrained")
    axes = figure.subplots(nrows, cols, squeeze=False)
    labels = comparison.labels
    for ax, key in zip(axes.flat, keys, strict=False):
        for rid in comparison.run_ids:
            points = curves[key].get(rid)
            if points:
                ax.plot([s for s, _ in points], [v for _, v in points],
                        marker=".", label=labels.get(rid, rid))
        better = "lower" if comparison.directions.get(key) == "min" else "higher"
        ax.set_title(str(key) if _is_system(key) else f"{key} ({better} is better)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    buffer = io.BytesIO()
    with rc_context({"svg.hashsalt": "nbtrack"}):  # same data, same bytes: no random ids
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure_cell(figure: FigureFile) -> str:
    mime = _IMAGE_TYPES.get(figure.ext)
    path = Path(figure.local_path) if figure.local_path else None
    caption = f'<div style="color:#666;font-size:11px">{escape(figure.path)}</div>'
    if mime and path is not None and path.is_file() and path.stat().st_size <= MAX_INLINE_BYTES:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return (f'<img alt="{escape(figure.path)}" style="max-width:360px" '
                f'src="data:{mime};base64,{data}"/>{caption}')
    return caption


def _figures_section(comparison: Comparison) -> str:
    if not comparison.figures:
        return ""
    rows = []
    for group in comparison.figures:
        label = (f"cell {group.index + 1} · figure {(group.n or 0) + 1}" if group.index is not None
                 else group.key)  # the cell's position, as everywhere else
        cells = [td(escape(label), title=group.key)]
        for rid in comparison.run_ids:
            files = group.runs.get(rid)
            cells.append(td(_figure_cell(files[-1]) if files else "—"))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f"<h4>Figures</h4><table {TABLE_ATTRS}><thead><tr>{th('figure')}"
            f"{_run_headers(comparison)}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _cells_section(comparison: Comparison) -> str:
    if not comparison.cells:
        return ""
    labels = comparison.labels
    blocks = []
    for cell in comparison.cells:
        where = f"cell {cell.index + 1}" if cell.index is not None else "cell"  # 1-based, as JupyterLab counts
        missing = [labels.get(r, r) for r, src in cell.sources.items() if src is None]
        note = f" (not run in {escape(', '.join(missing))})" if missing else ""
        diffs = "".join(
            f'<pre style="background:#f6f8fa;padding:6px;font-size:11px">{escape(text)}</pre>'
            for text in cell.diffs.values() if text
        )
        blocks.append(f"<details><summary>{escape(where)} <code>{escape(cell.cell_id)}</code>"
                      f"{note}</summary>{diffs}</details>")
    return f"<h4>Changed cells</h4>{''.join(blocks)}"
