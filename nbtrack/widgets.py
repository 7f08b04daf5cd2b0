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
``metrics.`` prefixes, local times as the panel's list shows them (``14:03`` today, ``Mar 3
14:03`` before), 4 significant digits, durations as ``6.2 s``; a sweep's own run (it
executes nothing) is no row, the ``system/`` measures come after the notebook's metrics.
Runs are picked by their number: one small toggle per run listed (``#3``, its name and
metric on hover), compared oldest first as the panel compares them.
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
#: Runs offered in the picker at once (the first ones listed); a filter reaches the others.
MAX_PICKED_FROM = 60


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
        # The run picker: one toggle per listed run, "#3", its name and metric on hover.
        self.chips: dict[str, ipywidgets.ToggleButton] = {}
        self.picker = w.HBox(layout=w.Layout(flex_flow="row wrap", align_items="center"))
        self.compare_button = w.Button(description="Compare", button_style="primary", disabled=True,
                                       layout=w.Layout(width="auto"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="auto"))
        self.message = w.HTML()
        self.comparison_view = w.HTML()
        self.widget: ipywidgets.VBox = w.VBox(
            [
                self.title,
                w.HBox([self.filter, self.sort, self.refresh_button]),
                self.table,
                w.HBox([w.HTML("<b>Pick runs</b>&nbsp;"), self.picker],
                       layout=w.Layout(align_items="center")),
                w.HBox([self.compare_button]),
                self.message,
                self.comparison_view,
            ]
        )
        self.filter.observe(lambda _: self._render(), names="value")
        self.sort.observe(lambda _: self._render(), names="value")
        self.compare_button.on_click(lambda _: self.compare())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.refresh()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def refresh(self) -> None:
        """Read the runs again (newest first)."""
        from nbtrack.query.filters import example_filter
        from nbtrack.query.names import display_names, is_sweep_parent
        from nbtrack.query.runs import list_runs, runs_records

        frame = list_runs(self.notebook, project=self._project, tracking_uri=self._tracking_uri)
        rows = runs_records(frame)
        names = display_names(rows)  # numbered among all runs, sweeps' own runs included
        for row in rows:
            row.update(names[row["run_id"]])
        # A sweep's own run executes nothing: it is no run of the list (the panel makes it a header).
        self.rows = [row for row in rows if not is_sweep_parent(row)]
        self.frame = frame[frame["run_id"].isin({row["run_id"] for row in self.rows})]
        example = example_filter(self.rows)
        self.filter.placeholder = f"filter, e.g. {example}" if example else "filter runs"
        metrics = _metric_columns(self.frame.columns)
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
        total = len(self.frame)
        counts = f"{len(frame)} of {total} runs" if len(frame) < total else f"{total} run{'' if total == 1 else 's'}"
        self.title.value = f"<b>nbtrack</b> · {escape(str(label))} · {counts}"

        if self.filter_errors:
            self.message.value = f'<span style="color:#b00">{escape(" ".join(self.filter_errors))}</span>'
        elif self.filter.value.strip() and len(frame) == 0:
            self.message.value = "no run matches the filter"
        else:
            self.message.value = ""
        self.table.value = render_runs_html(self._display(frame))
        self._render_picker([str(run_id) for run_id in frame["run_id"]])

    def _render_picker(self, run_ids: list[str]) -> None:
        """One toggle per run listed (the first :data:`MAX_PICKED_FROM`), picks kept."""
        import ipywidgets as w

        rows = {row["run_id"]: row for row in self.rows}
        picked = set(self.selected)
        offered = run_ids[:MAX_PICKED_FROM]
        chips: dict[str, ipywidgets.ToggleButton] = {}
        for run_id in offered:
            row = rows[run_id]
            chip = self.chips.get(run_id) or w.ToggleButton(layout=w.Layout(width="auto", margin="1px 2px"))
            chip.description = f"#{row['number']}" if row.get("number") else run_id[:8]
            chip.tooltip = self._option(row)
            chip.value = run_id in picked
            if run_id not in self.chips:
                chip.observe(lambda _: self._selection_changed(), names="value")
            chips[run_id] = chip
        self.chips = chips
        more = len(run_ids) - len(offered)
        note = [w.HTML(f"&nbsp;and {more} more: filter to pick them")] if more > 0 else []
        self.picker.children = [*chips.values(), *note]
        self._selection_changed()

    @property
    def shown_run_ids(self) -> list[str]:
        """The runs offered in the picker, in the list's order."""
        return list(self.chips)

    @property
    def selected(self) -> list[str]:
        """The picked runs, in the list's order."""
        return [run_id for run_id, chip in self.chips.items() if chip.value]

    def pick(self, run_ids: list[str]) -> None:
        """Pick exactly these runs (among those offered)."""
        wanted = set(run_ids)
        for run_id, chip in self.chips.items():
            chip.value = run_id in wanted

    def _display(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The list as shown: #, name, status, local start, duration, then params and metrics."""
        import pandas as pd

        from nbtrack.query.render import format_duration, list_time

        rows = {row["run_id"]: row for row in self.rows}
        shown = pd.DataFrame({
            "#": [rows[r].get("number") or "" for r in frame["run_id"]],
            "run": [rows[r].get("label") or r[:8] for r in frame["run_id"]],
            "status": frame["status"].str.lower(),
            "start": [list_time(t) for t in frame["start_time"]],
            "duration": [format_duration(None if pd.isna(d) else float(d)) for d in frame["duration_s"]],
        }, index=frame.index)
        extra = [c for c in frame.columns if c.startswith("params.")] + _metric_columns(frame.columns)
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
        runs logged, a validation or test one first, a ``system/`` measure only when the runs
        logged nothing else."""
        from nbtrack import tags

        counts: dict[str, int] = {}
        for row in self.rows:
            for key in row.get("metrics") or {}:
                counts[key] = counts.get(key, 0) + 1
        own = {k: n for k, n in counts.items() if not k.startswith(tags.SYSTEM_METRICS)}
        counts = own or counts
        if not counts:
            return None
        common = sorted(k for k, n in counts.items() if n == max(counts.values()))
        return next((k for k in common if re.search(r"(^|_)(val|valid|test)(_|$)", k)), common[0])

    def _selection_changed(self) -> None:
        for chip in self.chips.values():  # a picked run stands out in any theme
            chip.button_style = "info" if chip.value else ""
        n = len(self.selected)
        self.compare_button.disabled = n < 2
        self.compare_button.description = f"Compare {n} runs" if n >= 2 else "Compare (pick 2 or more)"

    def compare(self, run_ids: list[str] | None = None) -> Comparison | None:
        """Compare ``run_ids`` (default: the picked runs) below the list, oldest first as the
        runs are numbered (the JupyterLab panel's order)."""
        from html import escape

        from nbtrack.errors import NbtrackError
        from nbtrack.query.compare import compare

        numbers = {row["run_id"]: row.get("number") or 0 for row in self.rows}
        picked = list(run_ids if run_ids is not None else self.selected)
        ids = sorted(picked, key=lambda run_id: numbers.get(run_id, 0))  # stable: unknown ids keep their place
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


def _metric_columns(columns: Any) -> list[str]:
    """``metrics.*`` columns, the notebook's own before the ``system/`` measures."""
    from nbtrack import tags

    metrics = [str(c) for c in columns if str(c).startswith("metrics.")]
    system = f"metrics.{tags.SYSTEM_METRICS}"
    return [c for c in metrics if not c.startswith(system)] + [c for c in metrics if c.startswith(system)]


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
