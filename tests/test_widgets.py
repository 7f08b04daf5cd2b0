"""``%nbtrack panel``'s widget (nbtrack.widgets) over a real MLflow store."""

from __future__ import annotations

import pytest
from test_server_store import NOTEBOOK, XSS, make_project

from nbtrack.widgets import RunsPanel, show_panel

pytest.importorskip("ipywidgets")


@pytest.fixture
def tracked(tmp_path):
    return make_project(tmp_path / "proj", extra_params={"note": XSS})


def test_lists_runs_newest_first(tracked):
    panel = show_panel(tracked.notebook_path)
    assert panel.shown_run_ids == tracked.run_ids[::-1]
    assert [panel.chips[r].description for r in panel.shown_run_ids] == ["#3", "#2", "#1"]
    assert panel.title.value.endswith(" · 3 runs")
    assert "val_loss" in panel.table.value
    assert panel.compare_button.disabled


def test_every_value_is_escaped(tracked):
    panel = show_panel(tracked.notebook_path)
    assert "&lt;img src=x onerror=alert(1)&gt;" in panel.table.value
    assert XSS not in panel.table.value
    panel.pick(tracked.run_ids[:2])
    panel.compare_button.click()
    html = panel.comparison_view.value
    assert "lr" in html and "0.01" in html
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_filter_sort_and_compare(tracked):
    panel = RunsPanel(tracked.notebook_path)
    panel.filter.value = "lr=0.01"
    assert panel.shown_run_ids == [tracked.run_ids[1]]
    assert "1 of 3 runs" in panel.title.value
    panel.filter.value = ""
    panel.sort.value = ("metrics.val_loss", True)  # lowest loss first: lr=0.1
    assert panel.shown_run_ids[0] == tracked.run_ids[0]
    assert panel.compare_button.disabled
    panel.chips[tracked.run_ids[1]].value = True  # picked as a user does: one toggle, then another
    panel.chips[tracked.run_ids[0]].value = True
    assert panel.selected == tracked.run_ids[:2]
    assert [panel.chips[r].button_style for r in panel.shown_run_ids] == ["info", "info", ""]
    assert not panel.compare_button.disabled
    assert panel.compare_button.description == "Compare 2 runs"
    panel.compare_button.click()
    assert panel.comparison is not None
    assert [r.run_id for r in panel.comparison.runs] == tracked.run_ids[:2]
    assert "data:image/png;base64" in panel.comparison_view.value  # both figures, inline


def test_unknown_run_is_a_message_not_a_traceback(tracked):
    panel = RunsPanel(tracked.notebook_path)
    assert panel.compare([tracked.run_ids[0], "deadbeef"]) is None
    assert "deadbeef" in panel.message.value


def test_the_panel_displays_as_one_widget(tracked):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shown = []
    shell.display_pub.publish = lambda data, **kw: shown.append(data)
    try:
        shell.user_ns["show_panel"] = show_panel
        shell.run_cell(f"show_panel({str(tracked.notebook_path)!r})")
    finally:
        InteractiveShell.clear_instance()
    assert len(shown) == 1
    assert "application/vnd.jupyter.widget-view+json" in shown[0]


def test_relative_notebook_path_and_project(tracked, monkeypatch):
    monkeypatch.chdir(tracked.root)
    panel = show_panel(NOTEBOOK)
    assert len(panel.shown_run_ids) == 3
