"""``%nbtrack panel``: the side panel's run list and comparison as an ipywidgets widget.

For where there is no JupyterLab side panel (VS Code, Databricks, Colab, the
classic Notebook)::

    from nbtrack.widgets import show_panel
    show_panel("train.ipynb")        # or %nbtrack panel in a notebook that loaded nbtrack

It reads the same query layer as the panel, the magics and the CLI
(:func:`nbtrack.query.runs.list_runs`, :func:`nbtrack.query.compare.compare`) and
shows their HTML renderings, which escape every value: a param such as
``<img src=x onerror=alert(1)>`` is shown as text. Run names in the selector
are plain text by construction.

It reads as the JupyterLab panel does: runs numbered ``#1``, ``#2``… with the same names
(:mod:`nbtrack.query.names`), the same filters (``lr=0.1 val_loss<0.5 status=failed``,
:mod:`nbtrack.query.filters`), param and metric names without their ``params.`` /
``metrics.`` prefixes, local times, 4 significant digits, durations as ``6.2 s``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipywidgets
    import pandas as pd

    from nbtrack.query.comparison import Comparison
    from nbtrack.query.store import ProjectLike

#: Columns of the run list, before the params and metrics.
LIST_COLUMNS = ["#", "run", "status", "start", "duration"]


class RunsPanel:
    """Run list (filter, sort, select) and comparison of one notebook's runs; ``.widget`` shows it."""

    def __init__(
        self,
        notebook: str | os.PathLike[str] | None = None,
        *,
        project: ProjectLike | None = None,
        tracking_uri: str | None = None,
    ) -> None:
        import ipywidgets as w

        from nbtrack.query.runs import locate_experiment

        self.notebook = notebook
        ref, self.experiment = locate_experiment(notebook, project=project, tracking_uri=tracking_uri)
        self._project = ref.project
        self._tracking_uri = ref.tracking_uri
        self.frame: pd.DataFrame | None = None
        self.rows: list[dict[str, Any]] = []  # the runs as JSON rows, with number and label
        self.filter_errors: list[str] = []
        self.comparison: Comparison | None = None

        self.title = w.HTML()
        self.filter = w.Text(placeholder="filter runs, e.g. lr=0.1", description="Filter")
        self.sort = w.Dropdown(description="Sort", options=[("newest first", ("start_time", False))])
        self.table = w.HTML()
        self.select = w.SelectMultiple(description="Runs", rows=4, layout=w.Layout(width="95%"))
        self.compare_button = w.Button(description="Compare", button_style="primary", disabled=True)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.message = w.HTML()
        self.comparison_view = w.HTML()
        self.widget: ipywidgets.VBox = w.VBox(
            [
                self.title,
                w.HBox([self.filter, self.sort, self.refresh_button]),
                self.table,
                self.select,
                w.HBox([self.compare_button]),
                self.message,
                self.comparison_view,
            ]
        )
        self.filter.observe(lambda _: self._render(), names="value")
        self.sort.observe(lambda _: self._render(), names="value")
        self.select.observe(lambda _: self._selection_changed(), names="value")
        self.compare_button.on_click(lambda _: self.compare())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.refresh()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def refresh(self) -> None:
        """Read the runs again (newest first)."""
        from nbtrack.query.filters import example_filter
        from nbtrack.query.names import display_names
        from nbtrack.query.runs import list_runs, runs_records

        self.frame = list_runs(
            self.notebook, project=self._project, tracking_uri=self._tracking_uri
        )
        self.rows = runs_records(self.frame)
        names = display_names(self.rows)
        for row in self.rows:
            row.update(names[row["run_id"]])
        example = example_filter(self.rows)
        self.filter.placeholder = f"filter, e.g. {example}" if example else "filter runs"
        metrics = [c for c in self.frame.columns if c.startswith("metrics.")]
        options: list[tuple[str, tuple[str, bool]]] = [
            ("newest first", ("start_time", False)),
            ("oldest first", ("start_time", True)),
            ("longest first", ("duration_s", False)),
        ]
        for column in metrics:
            name = column.removeprefix("metrics.")
            options += [(f"{name} ↑", (column, True)), (f"{name} ↓", (column, False))]
        current = self.sort.value
        self.sort.options = options
        self.sort.value = current if current in dict(options).values() else options[0][1]
        self._render()

    def shown(self) -> pd.DataFrame:
        """The runs after the filter (the panel's filter language) and the sort."""
        from nbtrack.query.filters import compile_filter

        assert self.frame is not None
        frame = self.frame
        self.filter_errors = []
        if self.filter.value.strip() and len(frame):
            test, self.filter_errors = compile_filter(self.filter.value, self.rows)
            kept = {row["run_id"] for row in self.rows if test(row)}
            frame = frame[frame["run_id"].isin(kept)]
        column, ascending = self.sort.value
        if column in frame.columns and len(frame):
            frame = frame.sort_values(column, ascending=ascending, na_position="last")
        return frame

    def _render(self) -> None:
        from html import escape

        from nbtrack.query.render import render_runs_html

        if self.frame is None:
            return
        frame = self.shown()
        label = os.fspath(self.notebook) if self.notebook else self.experiment
        self.title.value = (
            f"<b>nbtrack</b> · {escape(str(label))} · {len(frame)} of {len(self.frame)} runs"
        )
        if self.filter_errors:
            self.message.value = f'<span style="color:#b00">{escape(" ".join(self.filter_errors))}</span>'
        elif self.filter.value.strip() and len(frame) == 0:
            self.message.value = "no run matches the filter"
        else:
            self.message.value = ""
        self.table.value = render_runs_html(self._display(frame))
        rows = {row["run_id"]: row for row in self.rows}
        selected = set(self.select.value)
        self.select.options = [(self._option(rows[run_id]), run_id) for run_id in frame["run_id"]]
        self.select.rows = min(6, max(2, len(self.select.options)))
        self.select.value = tuple(v for _, v in self.select.options if v in selected)
        self._selection_changed()

    def _display(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The list as shown: #, name, status, local start, duration, then params and metrics."""
        import pandas as pd

        from nbtrack.query.render import format_duration

        rows = {row["run_id"]: row for row in self.rows}
        shown = pd.DataFrame({
            "#": [rows[r].get("number") or "" for r in frame["run_id"]],
            "run": [rows[r].get("label") or r[:8] for r in frame["run_id"]],
            "status": frame["status"].str.lower(),
            "start": frame["start_time"],
            "duration": [format_duration(None if pd.isna(d) else float(d)) for d in frame["duration_s"]],
        }, index=frame.index)
        extra = [c for c in frame.columns if c.startswith(("params.", "metrics."))]
        return pd.concat([shown, frame[extra]], axis=1)

    def _option(self, row: dict[str, Any]) -> str:
        """A run in the picker: ``#3 lr=0.1 · finished · val_loss 0.07``."""
        from nbtrack.query.render import format_number

        number = f"#{row['number']} " if row.get("number") else ""
        metric = self._metric()
        value = (row.get("metrics") or {}).get(metric) if metric else None
        shown = f" · {metric} {format_number(float(value))}" if isinstance(value, int | float) else ""
        return f"{number}{row.get('label') or row['run_id'][:8]} · {str(row['status']).lower()}{shown}"

    def _metric(self) -> str | None:
        """The metric a run shows in the picker, chosen as the panel chooses it: the one most
        runs logged, a validation or test one first."""
        counts: dict[str, int] = {}
        for row in self.rows:
            for key in row.get("metrics") or {}:
                counts[key] = counts.get(key, 0) + 1
        if not counts:
            return None
        common = sorted(k for k, n in counts.items() if n == max(counts.values()))
        return next((k for k in common if re.search(r"(^|_)(val|valid|test)(_|$)", k)), common[0])

    def _selection_changed(self) -> None:
        n = len(self.select.value)
        self.compare_button.disabled = n < 2
        self.compare_button.description = f"Compare {n} runs" if n >= 2 else "Compare (select 2+)"

    def compare(self, run_ids: list[str] | None = None) -> Comparison | None:
        """Compare ``run_ids`` (default: the selected runs) below the list."""
        from html import escape

        from nbtrack.errors import NbtrackError
        from nbtrack.query.compare import compare

        ids = list(run_ids if run_ids is not None else self.select.value)
        try:
            self.comparison = compare(ids, tracking_uri=self._tracking_uri, project=self._project)
        except NbtrackError as exc:
            self.message.value = f'<span style="color:#b00">{escape(str(exc))}</span>'
            return None
        names = {row["run_id"]: row for row in self.rows}
        for run in self.comparison.runs:  # the list's "#3 lr=0.1", in the comparison too
            row = names.get(run.run_id)
            if row and row.get("number"):
                run.label = f"#{row['number']} {row.get('label') or run.run_name}"
        self.message.value = ""
        self.comparison_view.value = self.comparison._repr_html_()
        return self.comparison


def show_panel(
    notebook: str | os.PathLike[str] | None = None,
    *,
    project: ProjectLike | None = None,
    tracking_uri: str | None = None,
    display: bool = False,
) -> RunsPanel:
    """The runs of ``notebook`` (default: this kernel's notebook) as a widget panel.

    Like any widget, it shows as the value of a cell (``%nbtrack panel`` returns
    it); ``display=True`` shows it right away instead, mid-cell.
    """
    panel = RunsPanel(notebook, project=project, tracking_uri=tracking_uri)
    if display:
        from IPython.display import display as show

        show(panel.widget)
    return panel
