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
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipywidgets
    import pandas as pd

    from nbtrack.query.compare import Comparison
    from nbtrack.query.store import ProjectLike

#: Columns of the run list, before the params and metrics.
LIST_COLUMNS = ["run_name", "status", "start_time", "duration_s"]


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
        self.comparison: Comparison | None = None

        self.title = w.HTML()
        self.filter = w.Text(placeholder="filter: name, status, lr=0.1 …", description="Filter")
        self.sort = w.Dropdown(description="Sort", options=[("newest first", ("start_time", False))])
        self.table = w.HTML()
        self.select = w.SelectMultiple(description="Runs", rows=6, layout=w.Layout(width="95%"))
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
        from nbtrack.query.runs import list_runs

        self.frame = list_runs(
            self.notebook, project=self._project, tracking_uri=self._tracking_uri
        )
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
        """The runs after the filter and the sort."""
        assert self.frame is not None
        frame = self.frame
        words = self.filter.value.lower().split()
        if words:
            params = [c for c in frame.columns if c.startswith("params.")]

            def matches(row: Any) -> bool:
                text = " ".join(
                    [str(row["run_name"]), str(row["status"]), str(row["run_id"])]
                    + [f"{c.removeprefix('params.')}={row[c]}" for c in params]
                ).lower()
                return all(word in text for word in words)

            frame = frame[frame.apply(matches, axis=1)] if len(frame) else frame
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
        columns = LIST_COLUMNS + [
            c for c in frame.columns if c.startswith(("params.", "metrics."))
        ]
        self.table.value = render_runs_html(frame[[c for c in columns if c in frame.columns]])
        selected = set(self.select.value)
        self.select.options = [
            (f"{row.run_name or row.run_id[:8]} · {row.status.lower()} · {row.run_id[:8]}", row.run_id)
            for row in frame.itertuples()
        ]
        self.select.value = tuple(v for _, v in self.select.options if v in selected)
        self._selection_changed()

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
