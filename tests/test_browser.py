"""End to end in real Chromium: JupyterLab with nbtrack's panel over a tracked notebook.

A temp git project holds a notebook with ``%load_ext nbtrack``, executed three
times by papermill (three real runs, each with a figure). ``jupyter lab`` serves
it on a free localhost port; Playwright drives Debian's /usr/bin/chromium
(never a downloaded browser): open the notebook and the panel, see the runs,
compare two, re-run one with an edited param and see the new run appear.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_server_store import (
    TRACKED_NOTEBOOK as NOTEBOOK,
)
from test_server_store import (
    make_papermill_project,
    stop_daemons,
    tracked_notebook,
    wait_for,
)

import nbtrack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LABEXTENSION = Path(nbtrack.__file__).parent / "labextension"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no system Chromium at {CHROMIUM}"),
    pytest.mark.skipif(
        not (LABEXTENSION / "package.json").exists(),
        reason="the lab extension is not built (npm run build:prod in labextension/)",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    runtime: Path  # kernels' connection files


def jupyter_env(home: Path) -> dict[str, str]:
    """An environment seeing this checkout's built panel, and nothing of the user's config."""
    share = home / "share" / "jupyter"
    (share / "labextensions").mkdir(parents=True, exist_ok=True)
    link = share / "labextensions" / "nbtrack"
    if not link.exists():
        link.symlink_to(LABEXTENSION, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "MLFLOW_", "JPY_"))}
    env.update(
        JUPYTER_PATH=str(share),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        NBTRACK_DAEMON_IDLE="5",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    root = tmp_path / "project"
    root.mkdir()
    env = jupyter_env(tmp_path / "home")
    make_papermill_project(root, [0.1, 0.01, 0.001], env)
    yield from serve_lab(root, env, tmp_path / "lab.log")
    stop_daemons(tmp_path)


@pytest.fixture
def bare_lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab over a project whose notebook was never run."""
    root = tmp_path / "project"
    root.mkdir()
    nbformat.write(tracked_notebook(), root / NOTEBOOK)
    yield from serve_lab(root, jupyter_env(tmp_path / "home"), tmp_path / "lab.log")


def serve_lab(
    root: Path, env: dict[str, str], log: Path, *, server_part: bool = True
) -> Iterator[Lab]:
    """``jupyter lab`` on a free port over ``root``; shut down (with its kernels) afterwards.

    ``server_part=False`` disables nbtrack's server extension (the panel alone).
    """
    port, token = free_port(), uuid.uuid4().hex
    home = Path(env["JUPYTER_CONFIG_DIR"]).parent
    config = Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"nbtrack.server": server_part}}}))
    page_config = config.parent / "labconfig" / "page_config.json"
    page_config.parent.mkdir(exist_ok=True)
    quiet = {"@jupyterlab/apputils-extension:announcements": True}  # no news toast over the panel
    page_config.write_text(json.dumps({"disabledExtensions": quiet}))
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                "--ip=127.0.0.1", "--allow-root", f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
                f"--LabApp.workspaces_dir={home / 'workspaces'}",
                f"--LabApp.user_settings_dir={home / 'settings'}",
                "--LabApp.news_url=None",
            ],
            cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited: {log.read_text()[-3000:]}")
        probe = "nbtrack/api/version" if server_part else "api/status"
        try:
            with urllib.request.urlopen(f"{url}/{probe}?token={token}", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for(ready, 60, "jupyter lab to answer")
        yield Lab(url, token, root, Path(env["JUPYTER_RUNTIME_DIR"]))
    finally:
        try:
            request = urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=5).close()
            proc.wait(timeout=20)
        except Exception:
            # A shutdown racing a kernel that is still starting can hang jupyter_server: end it for sure.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if proc.poll() is not None:
                    break
                os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    continue


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # JupyterLab itself takes seconds to start its plugins
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_panel(page: Any, lab: Lab, notebook: str = NOTEBOOK) -> Any:
    """Open the notebook in JupyterLab, then the nbtrack side panel; returns the panel."""
    page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.locator('.jp-SideBar li[data-id="nbtrack-panel"]').click()
    panel = page.locator("#nbtrack-panel")
    panel.wait_for(state="visible")
    widen(page, panel, 640)
    return panel


def widen(page: Any, panel: Any, width: int) -> None:
    """Drag the splitter left of the right sidebar until the panel is about ``width`` px wide."""
    box = panel.bounding_box()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").last
    grip = handle.bounding_box()
    if not box or not grip or box["width"] >= width:
        return
    x, y = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - (width - box["width"]), y, steps=5)
    page.mouse.up()


def test_panel_lists_compares_and_reruns(lab: Lab, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    panel = open_panel(page, lab)
    expect(panel.locator(".nbtrack-title")).to_have_text(NOTEBOOK)

    rows = panel.locator("tr[data-run-id]")
    expect(rows).to_have_count(3, timeout=30_000)
    expect(panel.locator(".nbtrack-message")).to_be_hidden()
    assert sorted(panel.locator('td[data-param="lr"]').all_inner_texts()) == ["0.001", "0.01", "0.1"]

    # Compare the two newest runs: lr differs, epochs does not; both figures load.
    rows.nth(0).locator("input.nbtrack-select").check()
    rows.nth(1).locator("input.nbtrack-select").check()
    panel.locator("button.nbtrack-compare-button").click()
    compare = panel.locator(".nbtrack-compare")
    expect(compare.locator('.nbtrack-params tr.nbtrack-differs[data-param="lr"]')).to_be_visible()
    expect(compare.locator('.nbtrack-params tr[data-param="epochs"]')).not_to_have_class("nbtrack-differs")
    differs_bg = compare.locator('tr[data-param="lr"] td').first.evaluate(
        "td => getComputedStyle(td).backgroundColor"
    )
    plain_bg = compare.locator('tr[data-param="epochs"] td').first.evaluate(
        "td => getComputedStyle(td).backgroundColor"
    )
    assert differs_bg != plain_bg, "the differing param is not highlighted"
    expect(compare.locator('.nbtrack-metrics tr[data-metric="val_loss"] .nbtrack-star')).to_have_count(1)
    images = compare.locator(".nbtrack-figure img")
    expect(images).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.nbtrack-figure img')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=15_000,
    )
    expect(compare.locator(".nbtrack-chart canvas").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "compare.png"))

    # Re-run the newest run with lr edited; a fourth run appears, highlighted.
    rows.nth(1).locator("input.nbtrack-select").uncheck()
    panel.locator("button.nbtrack-rerun-button").click()
    panel.locator('.nbtrack-rerun-form input[data-param="lr"]').fill("0.5")
    panel.locator("button.nbtrack-rerun-start").click()
    expect(rows).to_have_count(4, timeout=150_000)
    expect(panel.locator(".nbtrack-job-status")).to_contain_text("done")
    new_row = panel.locator("tr.nbtrack-new")
    expect(new_row).to_have_count(1)
    expect(new_row.locator('td[data-param="lr"]')).to_have_text("0.5")
    page.screenshot(path=str(tmp_path / "panel.png"), full_page=True)
    print(f"screenshots: {tmp_path / 'compare.png'} {tmp_path / 'panel.png'}")
    assert not errors, errors


def test_kernel_of_the_open_notebook_learns_its_path(bare_lab: Lab, browser: Any) -> None:
    """The kernel plugin sets NBTRACK_NOTEBOOK to the notebook's absolute path in its kernel."""
    from jupyter_client.blocking import BlockingKernelClient
    from playwright.sync_api import expect

    lab = bare_lab
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    panel = open_panel(page, lab)
    expect(panel.locator(".nbtrack-empty")).to_contain_text("No runs recorded")

    def kernel_id() -> str | None:
        with urllib.request.urlopen(f"{lab.url}/api/sessions?token={lab.token}", timeout=5) as r:
            sessions = json.load(r)
        return sessions[0]["kernel"]["id"] if sessions else None

    connection = lab.runtime / f"kernel-{wait_for(kernel_id, 60, 'the notebook kernel')}.json"
    client = BlockingKernelClient(connection_file=str(connection))
    client.load_connection_file()
    client.start_channels()
    client.wait_for_ready(timeout=60)  # the session exists before its kernel answers
    expected = str((lab.root / NOTEBOOK).resolve())
    printed: list[str] = []

    def told() -> bool:
        printed.clear()
        try:
            client.execute_interactive(
                "import os; print(os.environ.get('NBTRACK_NOTEBOOK'))",
                timeout=20,
                output_hook=lambda msg: printed.append(msg["content"].get("text", "")),
            )
        except TimeoutError:
            return False  # a busy kernel: ask again until wait_for's deadline
        return any(expected in text for text in printed)

    try:
        wait_for(told, 30, f"NBTRACK_NOTEBOOK={expected} in the kernel")
    finally:
        client.stop_channels()

    # Run the notebook from the UI: capture names the run after the file, and the panel,
    # refreshing after cells finish, shows it without a click on refresh.
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    page.locator('.lm-MenuBar-itemLabel:text-is("Run")').click()
    page.locator('.lm-Menu-itemLabel:text-is("Run All Cells")').click()
    rows = panel.locator("tr[data-run-id]")
    expect(rows).to_have_count(1, timeout=60_000)
    expect(rows.first.locator('td[data-param="lr"]')).to_have_text("0.1")


def test_missing_server_extension_says_what_to_install(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "project"
    root.mkdir()
    env = jupyter_env(tmp_path / "home")
    nbformat.write(tracked_notebook(), root / NOTEBOOK)
    served = serve_lab(root, env, tmp_path / "lab.log", server_part=False)
    lab = next(served)
    try:
        panel = open_panel(browser.new_page(), lab)
        message = panel.locator(".nbtrack-message")
        expect(message).to_contain_text("server extension is not running")
        expect(message).to_contain_text(f'pip install "nbtrack=={nbtrack.__version__}"')
    finally:
        served.close()
