"""The sidebar in real Chromium marks a retrain run (``nbtrack retrain``) with the input version that
triggered it: a real kernel's champion, a real retrain after a deltalake append, JupyterLab serving
the project (the browser tests' server, browser and page)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_browser import (  # noqa: F401
    CHROMIUM,
    LABEXTENSION,
    box,
    browser,
    inside,
    jp_asyncio_loop,
    jp_server_cleanup,
    jupyter_env,
    open_panel,
    page,
    serve_lab,
)
from test_retrain import finished_runs, rows, table_of, trained  # noqa: F401

from nbtrack.cli.main import main

pytestmark = [
    pytest.mark.browser,
    pytest.mark.kernel,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no system Chromium at {CHROMIUM}"),
    pytest.mark.skipif(not (LABEXTENSION / "package.json").exists(), reason="the lab extension is not built"),
]


def test_the_sidebar_marks_a_retrain_with_the_version_that_triggered_it(trained, page, tmp_path):  # noqa: F811
    from deltalake import DeltaTable, write_deltalake
    from playwright.sync_api import expect

    write_deltalake(table_of(trained), rows([1.0] * 2), mode="append")
    version = DeltaTable(table_of(trained)).version()
    assert main(["retrain", str(trained / "train.ipynb"), "--metric", "val_acc", "--no-progress"]) == 0
    challenger = finished_runs(trained)[0]
    champion = challenger.data.tags["nbtrack.retrain_of"]

    server = serve_lab(trained, jupyter_env(tmp_path / "home"), tmp_path / "lab.log")
    lab = next(server)
    try:
        panel = open_panel(page, lab, "train.ipynb")
        row = panel.locator(f'tr[data-run-id="{challenger.info.run_id}"]')
        label = row.locator(".nbtrack-label")
        expect(label).to_have_text("retrain of #1")
        badge = row.locator(".nbtrack-retrain-line")
        expect(badge).to_have_text(f"⟳ data/train v{version}")
        expect(badge).to_have_attribute("title", f"retrain of run {champion[:8]}\nnew data: data/train "
                                                 f"v{version} (the champion read v{version - 1})")
        expect(badge).to_be_visible()
        # Its own line under the name, inside the name's cell (the default sidebar's width), whole.
        assert inside(box(badge), box(row.locator("td.nbtrack-name")))
        assert box(badge)["y"] >= box(label)["y"] + box(label)["height"] - 1
        assert badge.evaluate("e => e.scrollWidth <= e.clientWidth")
        expect(panel.locator(f'tr[data-run-id="{champion}"]')).to_have_count(1)
        expect(panel.locator(f'tr[data-run-id="{champion}"] .nbtrack-retrain-line')).to_have_count(0)
    finally:
        page.close()  # before the server goes: the panel's live updates would fail to fetch
        server.close()
