"""End to end in real Chromium, at JupyterLab's default layout: nbtrack's panel over real runs.

A temp git project holds a notebook with ``%load_ext nbtrack`` (params, a matplotlib figure,
a Vega-Lite chart, a metric curve, and an assert that fails for ``lr >= 1``), executed three
times by papermill: three real runs. One ``jupyter lab`` serves it on a free localhost port
for the whole module, and Playwright drives Debian's /usr/bin/chromium (never a downloaded
browser) in a 1600×1000 window where the right sidebar keeps its default width: nothing is
widened. Scrollbars are shown as a user sees them (Playwright hides them by default).

The tests share that server: the first one re-runs a run and a later one starts a sweep, so
each looks its runs up by their params, never by position.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
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
    finished_runs,
    make_project,
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
#: Screenshots a reviewer looks at (dark theme, comparison); build/ is not committed.
ARTIFACTS = Path(os.environ.get("NBTRACK_TEST_ARTIFACTS", Path(__file__).parents[1] / "build" / "test-artifacts"))
VIEWPORT = {"width": 1600, "height": 1000}

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
    env: dict[str, str]


WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"


def widget_manager() -> Path | None:
    """ipywidgets' lab extension as installed (in a venv --system-site-packages, under the base
    interpreter: JupyterLab would not look there), or None."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        found = Path(prefix) / "share" / "jupyter" / "labextensions" / WIDGET_MANAGER
        if (found / "package.json").exists():
            return found
    return None


def jupyter_env(home: Path) -> dict[str, str]:
    """An environment seeing this checkout's built panel, and nothing of the user's config."""
    share = home / "share" / "jupyter"
    (share / "labextensions").mkdir(parents=True, exist_ok=True)
    link = share / "labextensions" / "nbtrack"
    if not link.exists():
        link.symlink_to(LABEXTENSION, target_is_directory=True)
    widgets = widget_manager()  # %nbtrack panel's widgets draw in JupyterLab through it
    manager = share / "labextensions" / WIDGET_MANAGER
    if widgets is not None and not manager.exists():
        manager.parent.mkdir(parents=True, exist_ok=True)
        manager.symlink_to(widgets, target_is_directory=True)
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


def panel_notebook() -> nbformat.NotebookNode:
    """The server tests' tracked notebook, plus a Vega-Lite chart and a cell failing for lr >= 1."""
    nb = tracked_notebook()
    nb.cells.insert(3, nbformat.v4.new_code_cell(
        "import altair as alt\nimport pandas as pd\n"
        "alt.Chart(pd.DataFrame({'x': [0, 1, 2], 'y': [0, lr, 2 * lr]})).mark_line().encode(x='x', y='y')"
    ))
    nb.cells.append(nbformat.v4.new_code_cell("assert lr < 1, f'lr too large: {lr}'"))
    return nb


FAILING_CELL = 6  # the assert: the sixth cell, as JupyterLab's status bar counts


def make_panel_project(root: Path, lrs: list[float], env: dict[str, str]) -> None:
    """Real runs: papermill executes the notebook once per learning rate, in parallel."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    nbformat.write(panel_notebook(), root / NOTEBOOK)
    out = root.parent / f"{root.name}-papermill"
    out.mkdir(exist_ok=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "papermill", "--no-progress-bar", NOTEBOOK,
             str(out / f"run-{i}.ipynb"), "-p", "lr", str(lr)],
            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for i, lr in enumerate(lrs)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()[-2000:]
    wait_for(lambda: len(finished_runs(root)) == len(lrs), 90, f"{len(lrs)} delivered runs")


CHARTS_NOTEBOOK = "charts.ipynb"


def chart_runs(root: Path) -> None:
    """Two runs of another notebook whose figures are a plotly figure (JSON) and a Bokeh
    document, as capture saves them (written through MLflow's client: no kernel needed); the
    newer one holds a scikit-learn model, clf, as delivery logs it."""
    from mlflow.tracking import MlflowClient

    tracked = make_project(root, (0.2, 0.4), notebook=CHARTS_NOTEBOOK)
    client = MlflowClient(tracked.tracking_uri)
    for run_id, lr in zip(tracked.run_ids, (0.2, 0.4), strict=True):
        figures = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://")) / "figures"
        plotly = {"data": [{"type": "scatter", "x": [0, 1, 2], "y": [0, lr, 2 * lr]}],
                  "layout": {"title": {"text": f"lr={lr}"}}}
        (figures / "3-p1ot1y-0.json").write_text(json.dumps(plotly))
        (figures / "4-b0keh-0.bokeh.json").write_text(json.dumps({"roots": {"references": []}}))
    # In a process of its own: mlflow.set_tracking_uri would follow this one's later tests.
    log_model = (
        "import json, sys, mlflow\n"
        "from mlflow.tracking import MlflowClient\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "uri, experiment, run_id = sys.argv[1:]\n"
        "client = MlflowClient(uri)\n"
        "logged = client.create_logged_model(experiment_id=experiment, name='clf', source_run_id=run_id)\n"
        "mlflow.set_tracking_uri(uri)\n"
        "mlflow.sklearn.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name='clf', run_id=run_id,\n"
        "                         model_id=logged.model_id, pip_requirements=['scikit-learn'])\n"
        "client.set_tag(run_id, 'nbtrack.models', json.dumps([{'name': 'clf', 'flavor': 'sklearn', 'size': 900}]))\n"
    )
    subprocess.run([sys.executable, "-c", log_model, tracked.tracking_uri, tracked.experiment_id,
                    tracked.run_ids[-1]], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One JupyterLab for the module, over a project with three real runs (lr 0.1, 0.01, 0.001)."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "project"
    root.mkdir()
    env = jupyter_env(base / "home")
    make_panel_project(root, [0.1, 0.01, 0.001], env)
    other = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                               "language": "python"}})
    nbformat.write(other, root / "other.ipynb")  # a second notebook to switch to
    chart_runs(root)
    yield from serve_lab(root, env, base / "lab.log")
    stop_daemons(base)


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
        yield Lab(url, token, root, Path(env["JUPYTER_RUNTIME_DIR"]), env)
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


def launch(playwright: Any) -> Any:
    # Playwright hides scrollbars by default: show them, as a user's Chromium does.
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                      ignore_default_args=["--hide-scrollbars"])


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[None]:
    """Playwright's sync API runs an event loop of its own. pytest-jupyter's autouse fixtures of
    this name and the next (a plugin the server tests load) would take that loop as theirs and
    close it while it runs, so a browser test run after the server tests errors at teardown. The
    browser tests' JupyterLab is a process of its own: nothing of pytest-jupyter's to clean up."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    yield None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # JupyterLab itself takes seconds to start its plugins
    with sync_playwright() as p:
        chromium = launch(p)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page at the default layout; page errors fail the test."""
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.close()
    assert not errors, errors


def open_panel(page: Any, lab: Lab, notebook: str = NOTEBOOK) -> Any:
    """Open the notebook in JupyterLab, then the nbtrack sidebar, as it is (never widened)."""
    page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    return open_sidebar(page)


def open_sidebar(page: Any) -> Any:
    """Open the nbtrack sidebar of the page's JupyterLab as it is (never widened)."""
    page.locator('.jp-SideBar li[data-id="nbtrack-panel"]').click()
    panel = page.locator("#nbtrack-panel")
    panel.wait_for(state="visible")
    return panel


def row_of(panel: Any, lr: str) -> Any:
    """The list row of the run with that learning rate."""
    return panel.locator(f'tr[data-run-id]:has(td[data-param="lr"]:text-is("{lr}"))')


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not laid out"
    return found


def inside(inner: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack)


def luminance(css_color: str) -> float:
    """Relative brightness (0 black … 1 white) of a computed CSS colour."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css_color)[:3]]
    scale = 1.0 if css_color.startswith("color(") else 255.0
    r, g, b = (n / scale for n in numbers)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_panel_lists_compares_and_reruns(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    panel = open_panel(page, lab)
    expect(panel.locator(".nbtrack-title")).to_have_text(NOTEBOOK)
    assert box(panel)["width"] <= 300, "the test must run at the default sidebar width"

    rows = panel.locator("tr[data-run-id]")
    expect(rows).to_have_count(3, timeout=30_000)
    expect(panel.locator(".nbtrack-message")).to_be_hidden()
    assert sorted(panel.locator('td[data-param="lr"]').all_inner_texts()) == ["0.001", "0.01", "0.1"]
    compare_button = panel.locator("button.nbtrack-compare-button")
    expect(compare_button).to_be_disabled()
    assert float(compare_button.evaluate("b => getComputedStyle(b).opacity")) < 0.7, "disabled must look disabled"

    # Compare the two newest runs: lr differs, epochs does not; both figures load.
    rows.nth(0).locator("input.nbtrack-select").check()
    rows.nth(1).locator("input.nbtrack-select").check()
    compare_button.click()
    compare = page.locator("#nbtrack-comparison .nbtrack-compare")
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
    images.first.scroll_into_view_if_needed()
    expect(images).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.nbtrack-figure img')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=15_000,
    )
    compare.locator(".nbtrack-chart canvas").first.scroll_into_view_if_needed()
    expect(compare.locator(".nbtrack-chart canvas").first).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare.png"))

    # Re-run the newest run with lr edited; the field is marked; a fourth run appears, highlighted,
    # named by what changed; the job goes on while another notebook is shown.
    newest_lr = rows.nth(0).locator('td[data-param="lr"]').inner_text()
    newest_number = rows.nth(0).locator(".nbtrack-number").inner_text()
    rows.nth(1).locator("input.nbtrack-select").uncheck()
    panel.locator("button.nbtrack-rerun-button").click()
    field = panel.locator('.nbtrack-rerun-form input[data-param="lr"]')
    inputs = panel.locator(".nbtrack-rerun-form input")
    assert len({round(box(inputs.nth(i))["x"]) for i in range(inputs.count())}) == 1, "the fields do not line up"
    field.fill("0.5")
    expect(field).to_have_class(re.compile("nbtrack-edited"))
    expect(field.locator("xpath=following-sibling::span[1]")).to_have_text(f"was {newest_lr}")
    panel.locator("button.nbtrack-rerun-start").click()
    expect(panel.locator(".nbtrack-job")).to_be_visible()
    page.locator(".jp-DirListing-content").get_by_text("other.ipynb", exact=True).dblclick()
    expect(panel.locator(".nbtrack-title")).to_have_text("other.ipynb")
    expect(panel.locator(".nbtrack-job")).to_have_count(0)
    page.locator(f'.lm-DockPanel-tabBar .lm-TabBar-tab:has-text("{NOTEBOOK}")').click()
    expect(panel.locator(".nbtrack-title")).to_have_text(NOTEBOOK)
    expect(panel.locator(".nbtrack-job")).to_be_visible()  # progress kept while we were away
    expect(rows).to_have_count(4, timeout=150_000)
    expect(panel.locator(".nbtrack-job-status")).to_contain_text("done")
    new_row = panel.locator("tr.nbtrack-new")
    expect(new_row).to_have_count(1)
    expect(new_row.locator('td[data-param="lr"]')).to_have_text("0.5")
    expect(new_row.locator(".nbtrack-label")).to_have_text(f"rerun of {newest_number} · lr=0.5")
    page.screenshot(path=str(ARTIFACTS / "panel.png"), full_page=True)


def test_the_list_fits_the_default_sidebar(lab: Lab, page: Any) -> None:
    """Compact rows (status, name, metric) whole inside ~250 px; extra columns scroll sideways
    under a visible scrollbar while the checkbox and name stay; counts stay on top."""
    from playwright.sync_api import expect

    panel = open_panel(page, lab)
    rows = panel.locator("tr[data-run-id]")
    expect(rows.first).to_be_visible()
    panel_box = box(panel)
    assert 200 <= panel_box["width"] <= 300
    listing = panel.locator(".nbtrack-list")
    list_box = box(listing)
    for i in range(rows.count()):
        row = rows.nth(i)
        for part in (".nbtrack-dot", ".nbtrack-number", ".nbtrack-metric-cell"):
            assert inside(box(row.locator(part)), list_box), f"row {i}: {part} is cut off"
        label = row.locator(".nbtrack-label")
        assert box(label)["width"] >= 40, f"row {i}: the name has no room"
        assert row.locator(".nbtrack-metric-cell").inner_text().strip(), f"row {i} shows no metric"
    expect(panel.locator("th.nbtrack-metric-cell")).to_contain_text("val_loss")

    sizes = listing.evaluate(
        "l => ({scroll: l.scrollWidth, client: l.clientWidth, bar: l.offsetHeight - l.clientHeight})"
    )
    assert sizes["scroll"] > sizes["client"] + 50, "the extra columns do not overflow sideways"
    assert sizes["bar"] >= 6, "no visible horizontal scrollbar under the list"
    name_x = box(rows.first.locator(".nbtrack-name"))["x"]
    listing.evaluate("l => { l.scrollLeft = 200; }")
    page.wait_for_timeout(100)
    assert abs(box(rows.first.locator(".nbtrack-name"))["x"] - name_x) < 1, "the name column scrolled away"
    assert inside(box(panel.locator(".nbtrack-count")), panel_box)
    expect(panel.locator(".nbtrack-count")).to_contain_text("runs")
    # The kernel's system/ measures are no default column: the notebook's own metrics are.
    headers = panel.locator("thead th").all_inner_texts()
    assert not [h for h in headers if h.startswith("system/")], headers
    # Selecting runs keeps the counts on one line (the Compare button counts the selected).
    rows.nth(0).locator("input.nbtrack-select").check()
    rows.nth(1).locator("input.nbtrack-select").check()
    expect(panel.locator("button.nbtrack-compare-button")).to_have_text("Compare 2 runs")
    assert box(panel.locator(".nbtrack-count"))["height"] < 24, "the counts wrap or are cut"

    # The column picker adds a column; the metric picker changes the row's metric.
    panel.locator("button.nbtrack-columns-button").click()
    panel.locator('.nbtrack-column-menu input[data-column="origin"]').check()
    expect(panel.locator('th[data-column="origin"]')).to_have_count(1)
    panel.locator(".nbtrack-column-menu button:text-is('Done')").click()
    panel.locator("select.nbtrack-metric-select").select_option("accuracy")
    expect(panel.locator("th.nbtrack-metric-cell")).to_contain_text("accuracy")


def test_filters_people_type(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    panel = open_panel(page, lab)
    rows = panel.locator("tr[data-run-id]")
    expect(rows.first).to_be_visible()
    total = rows.count()
    box_filter = panel.locator("input.nbtrack-filter")
    hint = panel.locator(".nbtrack-hint")

    box_filter.fill("lr=0.1")
    expect(rows).to_have_count(1)
    expect(rows.first.locator('td[data-param="lr"]')).to_have_text("0.1")
    expect(panel.locator(".nbtrack-count")).to_have_text(f"1 of {total} runs")
    box_filter.fill("lr in 0.01,0.001 status=finished")
    expect(rows).to_have_count(2)
    box_filter.fill("accuracy>0.4 accuracy<0.6")
    expect(rows).to_have_count(1)  # accuracy = 1 - 1/(1 + 10 lr): 0.5 for lr=0.1 only
    expect(rows.first.locator('td[data-param="lr"]')).to_have_text("0.1")
    box_filter.fill("accuracy>2")
    expect(rows).to_have_count(0)
    expect(hint).to_contain_text("No run has accuracy>2: the highest accuracy is")
    box_filter.fill("acuracy>0.5")
    expect(hint).to_contain_text('No column "acuracy": did you mean accuracy?')

    # The placeholder's example is a valid filter for this notebook: it matches runs.
    example = box_filter.get_attribute("placeholder").removeprefix("filter, e.g. ")
    assert re.match(r"^\w+=\S+ \w+<=\S+$", example), example
    box_filter.fill(example)
    expect(hint).to_be_hidden()
    assert rows.count() >= 1
    box_filter.fill("")
    expect(rows).to_have_count(total)


def test_compare_three_runs_side_by_side(lab: Lab, page: Any) -> None:
    """Three runs in the main-area comparison: every run's column, the differing values and
    the figures side by side on screen; hover readouts; figures enlarge and flip by arrow keys."""
    from playwright.sync_api import expect

    panel = open_panel(page, lab)
    for lr in ("0.1", "0.01", "0.001"):
        row_of(panel, lr).locator("input.nbtrack-select").check()
    panel.locator("button.nbtrack-compare-button").click()
    view = page.locator("#nbtrack-comparison")
    expect(view.locator(".nbtrack-compare")).to_be_visible()
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", has_text="Compare")).to_be_visible()
    expect(panel).to_be_visible()  # the sidebar keeps the list
    area = box(view)
    notebook = box(page.locator(".jp-NotebookPanel").first)
    assert area["x"] >= notebook["x"] + notebook["width"] - 2, "the comparison is not beside the notebook"

    # One truth: each run's duration reads the same in the list and in the comparison.
    listed = {row_of(panel, lr).locator(".nbtrack-number").inner_text(): row_of(panel, lr).locator(
        'td:nth-child(' + str(1 + panel.locator("thead th").all_inner_texts().index("duration")) + ')').inner_text()
        for lr in ("0.1", "0.01", "0.001")}
    compared = dict(zip([h.strip() for h in view.locator(".nbtrack-runs-grid th.nbtrack-run-head").all_inner_texts()],
                        view.locator('.nbtrack-runs-grid tr[data-row="duration"] td.nbtrack-num').all_inner_texts(),
                        strict=True))
    assert compared == listed and all(re.fullmatch(r"\d+(\.\d)? s", d) for d in listed.values()), (listed, compared)
    heads = view.locator(".nbtrack-params th.nbtrack-run-head")
    expect(heads).to_have_count(3)
    xs = []
    for i in range(3):
        head = box(heads.nth(i))
        assert inside(head, area), f"run column {i} is off screen"
        assert re.fullmatch(r"#\d+", heads.nth(i).inner_text().strip())
        assert heads.nth(i).get_attribute("title")
        xs.append(head["x"])
    assert xs == sorted(xs)
    numbers = [int(heads.nth(i).inner_text().strip()[1:]) for i in range(3)]
    assert numbers == sorted(numbers)  # oldest first, as the list numbers them
    lr_cells = view.locator('.nbtrack-params tr.nbtrack-differs[data-param="lr"] td[data-run-id]')
    assert sorted(lr_cells.all_inner_texts()) == ["0.001", "0.01", "0.1"]
    cell_boxes = [box(lr_cells.nth(i)) for i in range(3)]
    assert all(inside(b, area) for b in cell_boxes), "a differing value is off screen"
    assert len({round(b["y"]) for b in cell_boxes}) == 1, "the values are not side by side"
    view.locator("input.nbtrack-diff-only").check()
    expect(view.locator('.nbtrack-params tr[data-param="epochs"]')).to_have_count(0)
    expect(view.locator('.nbtrack-params tr[data-param="lr"]')).to_have_count(1)
    metric_cells = view.locator('.nbtrack-metrics tr[data-metric="val_loss"] td[data-run-id]')
    expect(metric_cells).to_have_count(3)
    expect(view.locator('.nbtrack-metrics tr[data-metric="val_loss"] .nbtrack-star')).to_have_count(1)
    # The kernel's system/ measures are no results: not among the metrics, no star, no prefix.
    expect(view.locator('.nbtrack-metrics tr[data-metric^="system/"]')).to_have_count(0)
    expect(view.locator(".nbtrack-system .nbtrack-star")).to_have_count(0)
    assert not [k for k in view.locator(".nbtrack-system td.nbtrack-key").all_inner_texts() if "/" in k]
    # Every action on a run is whole in its column: no button cut to "…".
    for action in view.locator(".nbtrack-run-actions button").all():
        assert action.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), f"{action.inner_text()!r} is cut"
        assert inside(box(action), box(action.locator("xpath=ancestor::td[1]"))), f"{action.inner_text()!r} overflows"

    # Curves: hovering shows each run's value at that step; the legend is shorter than the chart.
    order = view.locator(".nbtrack-chart").evaluate_all("charts => charts.map(c => c.dataset.metric)")
    own = [m for m in order if not m.startswith("system/")]
    assert order[:len(own)] == own and "val_loss" in own, f"the notebook's curves are not first: {order}"
    chart = view.locator('.nbtrack-chart[data-metric="val_loss"]')
    chart.scroll_into_view_if_needed()
    plot = chart.locator(".u-over")
    plot_box = box(plot)
    page.mouse.move(plot_box["x"] + plot_box["width"] * 0.5, plot_box["y"] + plot_box["height"] * 0.5)
    readout = chart.locator(".nbtrack-readout")
    expect(readout).to_be_visible()
    expect(readout.locator(".nbtrack-readout-row")).to_have_count(3)
    expect(readout.locator(".nbtrack-readout-step")).to_contain_text("step")
    assert all(re.search(r"\d", t) for t in readout.locator(".nbtrack-readout-row").all_inner_texts())
    values = [float(v) for v in readout.locator(".nbtrack-readout-row .nbtrack-num").all_inner_texts()]
    assert values == sorted(values), f"val_loss: the lowest (best) value is not first: {values}"
    assert box(chart.locator(".nbtrack-legend"))["height"] < plot_box["height"]
    # Dragging zooms into some steps and says so; a double-click shows them all again.
    zoom = chart.locator(".nbtrack-zoom-note")
    y = plot_box["y"] + plot_box["height"] * 0.5
    page.mouse.move(plot_box["x"] + plot_box["width"] * 0.05, y)
    page.mouse.down()
    page.mouse.move(plot_box["x"] + plot_box["width"] * 0.4, y, steps=8)
    page.mouse.up()
    expect(zoom).to_be_visible()
    expect(zoom).to_contain_text("double-click to see all")
    plot.dblclick()
    expect(zoom).to_be_hidden()
    # Smoothing: the readout gives the raw value and the smoothed one (~).
    view.locator("input.nbtrack-smoothing").fill("0.6")
    expect(view.locator("span.nbtrack-num").filter(has_text="0.60")).to_have_count(1)
    plot_box = box(chart.locator(".u-over"))
    page.mouse.move(plot_box["x"] + plot_box["width"] * 0.95, plot_box["y"] + plot_box["height"] * 0.5)
    expect(chart.locator(".nbtrack-readout")).to_contain_text("~")
    view.locator("input.nbtrack-smoothing").fill("0")
    view.locator("input.nbtrack-log").check()
    expect(chart.locator("canvas")).to_be_visible()
    wide = box(chart.locator("canvas"))["width"]
    page.set_viewport_size({"width": 1300, "height": 1000})  # the charts follow their tab's width
    page.wait_for_function(
        f"() => document.querySelector('.nbtrack-chart[data-metric=\"val_loss\"] canvas')"
        f".getBoundingClientRect().width < {wide - 50}"
    )
    page.set_viewport_size(VIEWPORT)

    # Figures: a row per cell, the runs side by side; the Vega-Lite chart is drawn too.
    images = view.locator(".nbtrack-figure img")
    images.first.evaluate("img => img.scrollIntoView({block: 'center'})")
    expect(images).to_have_count(3)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#nbtrack-comparison .nbtrack-figure img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    image_boxes = [box(images.nth(i)) for i in range(3)]
    assert len({round(b["y"]) for b in image_boxes}) == 1, "the figures are not side by side"
    assert all(inside(b, area) for b in image_boxes)
    charts = view.locator('.nbtrack-figure[data-kind="vega-lite"] .nbtrack-figure-chart')
    charts.first.scroll_into_view_if_needed()
    expect(charts).to_have_count(3)
    expect(view.locator(".nbtrack-figure-chart.nbtrack-drawn")).to_have_count(3, timeout=30_000)
    chart_boxes = [box(charts.nth(i)) for i in range(3)]
    assert len({round(b["y"]) for b in chart_boxes}) == 1, "the charts are not side by side"
    expect(view.locator(".nbtrack-figure-group h4").first).to_have_text("cell 3 · figure 1")

    # Click to enlarge; arrow keys flip between the runs' versions of that figure.
    images.first.click()
    lightbox = view.locator(".nbtrack-lightbox")
    expect(lightbox).to_be_visible()
    first = lightbox.get_attribute("data-run-id")
    expect(lightbox.locator(".nbtrack-lightbox-caption")).to_contain_text("1 of 3")
    page.keyboard.press("ArrowRight")
    expect(view.locator(".nbtrack-lightbox .nbtrack-lightbox-caption")).to_contain_text("2 of 3")
    assert view.locator(".nbtrack-lightbox").get_attribute("data-run-id") != first
    page.keyboard.press("Escape")
    expect(view.locator(".nbtrack-lightbox")).to_have_count(0)

    # Actions on a run live in its column; what goes wrong is said in place.
    view.locator(".nbtrack-run-actions .nbtrack-action-rerun").first.click()
    form = view.locator(".nbtrack-rerun-form")
    form.locator('input[data-param="lr"]').fill("")
    form.locator("button.nbtrack-rerun-start").click()
    status = view.locator(".nbtrack-run-actions-area .nbtrack-job-status.nbtrack-error")
    expect(status).to_contain_text("empty")
    assert inside(box(status), area)


def test_plotly_and_bokeh_figures_in_a_comparison(lab: Lab, page: Any) -> None:
    """Charts kept as documents: plotly's figures are redrawn side by side by JupyterLab's plotly
    renderer; a Bokeh document, which needs the jupyter_bokeh extension, is a clear placeholder."""
    from playwright.sync_api import expect

    panel = open_panel(page, lab, CHARTS_NOTEBOOK)
    rows = panel.locator("tr[data-run-id]")
    expect(rows).to_have_count(2)
    panel.locator("input.nbtrack-select-all").check()
    panel.locator("button.nbtrack-compare-button").click()
    view = page.locator("#nbtrack-comparison")
    plotly = view.locator('.nbtrack-figure[data-kind="plotly"] .nbtrack-figure-chart')
    plotly.first.scroll_into_view_if_needed()
    expect(plotly).to_have_count(2)
    expect(view.locator('.nbtrack-figure[data-kind="plotly"] .nbtrack-drawn')).to_have_count(2, timeout=30_000)
    expect(plotly.first.locator(".js-plotly-plot, .plot-container").first).to_be_attached()
    assert len({round(box(plotly.nth(i))["y"]) for i in range(2)}) == 1, "the plotly charts are not side by side"
    bokeh = view.locator('.nbtrack-figure[data-kind="bokeh"] .nbtrack-figure-placeholder')
    expect(bokeh).to_have_count(2)
    expect(bokeh.first).to_contain_text("Bokeh")
    link = bokeh.first.locator("a")
    artifact = re.compile(r"/nbtrack/api/artifact/[0-9a-f]+/figures/4-b0keh-0\.bokeh\.json")
    expect(link).to_have_attribute("href", artifact)

    # Changed cells: the params cell differs, numbered as JupyterLab counts, its diff coloured.
    changed = view.locator('[data-section="cells"] details.nbtrack-cell')
    changed.first.scroll_into_view_if_needed()
    expect(changed).to_have_count(1)
    expect(changed.locator("summary")).to_have_text("cell 1")
    expect(changed.locator(".nbtrack-del")).to_contain_text("lr = 0.2")
    expect(changed.locator(".nbtrack-add")).to_contain_text("lr = 0.4")
    assert changed.locator(".nbtrack-add").first.evaluate("e => getComputedStyle(e).color") != \
        changed.locator(".nbtrack-del").first.evaluate("e => getComputedStyle(e).color")


def test_register_a_model_from_the_comparison(lab: Lab, page: Any) -> None:
    """Register model… on a compared run: offered only where the run holds a model, asks the
    registered name, says the new version in place; a refused name is said in place too."""
    from playwright.sync_api import expect

    panel = open_panel(page, lab, CHARTS_NOTEBOOK)
    expect(panel.locator("tr[data-run-id]")).to_have_count(2)
    expect(panel.locator("tr[data-run-id] .nbtrack-model-badge")).to_have_count(1)
    panel.locator("input.nbtrack-select-all").check()
    panel.locator("button.nbtrack-compare-button").click()
    view = page.locator("#nbtrack-comparison")
    buttons = view.locator(".nbtrack-run-actions .nbtrack-action-register")
    expect(buttons).to_have_count(2)
    expect(buttons.nth(0)).to_be_disabled()  # the older run has no model
    expect(buttons.nth(1)).to_be_enabled()
    area = box(view)

    def register(name: str) -> Any:
        buttons.nth(1).click()
        dialog = page.locator(".jp-Dialog")
        field = dialog.locator("input")
        expect(field).to_have_value("clf")  # the model's own name, to keep or change
        field.fill(name)
        dialog.locator("button.jp-mod-accept").click()
        return view.locator(".nbtrack-run-actions-area .nbtrack-job-status").last

    status = register("churn")
    expect(status).to_have_class(re.compile("nbtrack-done"), timeout=60_000)
    expect(status).to_contain_text("clf → models:/churn/1")
    assert inside(box(status), area)
    refused = register("a:b")
    expect(refused).to_have_class(re.compile("nbtrack-error"), timeout=60_000)
    expect(refused).to_contain_text("a:b")
    assert inside(box(refused), area)


def test_a_sweep_appears_live_and_its_failed_run_explains_itself(lab: Lab, page: Any) -> None:
    """`nbtrack sweep` runs from a terminal while the page is open: its runs appear without a
    click, grouped under the sweep; the failed one says why, in the list and in the main area."""
    from playwright.sync_api import expect

    panel = open_panel(page, lab)
    rows = panel.locator("tr[data-run-id]")
    expect(rows.first).to_be_visible()
    before = rows.count()
    sweep = subprocess.run(
        [sys.executable, "-m", "nbtrack", "sweep", NOTEBOOK, "-p", "lr=0.2,5", "--workers", "2", "--no-progress"],
        cwd=lab.root, env=lab.env, capture_output=True, text=True, timeout=300,
    )
    assert sweep.returncode == 5, sweep.stdout[-2000:] + sweep.stderr[-2000:]  # one execution failed
    finished = time.monotonic()
    expect(rows).to_have_count(before + 2, timeout=20_000)  # no click: the panel polls for changes
    print(f"sweep runs listed {time.monotonic() - finished:.1f} s after the sweep ended")
    group = panel.locator("tr.nbtrack-sweep")
    expect(group).to_have_count(1)
    expect(group).to_contain_text("2 runs, 1 failed")

    failed = row_of(panel, "5")
    error = failed.locator(".nbtrack-row-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("AssertionError: lr too large: 5")
    assert inside(box(error), box(panel)), "the error is cut off"
    assert error.evaluate("e => e.scrollHeight <= e.clientHeight + 1"), "the error message is cut short"
    # The sweep's best is a finished run's: the failed run's last value is no result.
    best = row_of(panel, "0.2").locator(".nbtrack-metric-cell").inner_text()
    expect(group.locator(".nbtrack-metric-cell")).to_have_text(best)
    error.click()
    view = page.locator("#nbtrack-comparison")
    failure = view.locator(".nbtrack-failure")
    expect(failure).to_be_visible()
    expect(failure).to_contain_text(f"failed in cell {FAILING_CELL}")
    expect(failure.locator(".nbtrack-error-name")).to_have_text("AssertionError")
    expect(failure.locator(".nbtrack-source")).to_contain_text("assert lr < 1")
    failure.locator(".nbtrack-output-link").click()
    frame = page.frame_locator("iframe").last
    expect(frame.locator("body")).to_contain_text("lr too large: 5", timeout=30_000)

    # Collapse the sweep like MLflow does; open its view: one line per execution.
    group.locator(".nbtrack-sweep-toggle").click()
    expect(rows).to_have_count(before)
    group.locator(".nbtrack-sweep-toggle").click()
    expect(rows).to_have_count(before + 2)
    group.locator(".nbtrack-sweep-open").click()
    sweep_view = page.locator("#nbtrack-sweep")
    expect(sweep_view.locator("svg.nbtrack-parallel polyline")).to_have_count(2)
    expect(sweep_view.locator("svg.nbtrack-scatter")).to_have_count(1)


def test_the_inline_twin_in_a_notebook(lab: Lab, page: Any) -> None:
    """`%nbtrack panel`'s widget (for where there is no sidebar) drawn in a notebook's output:
    the list reads as the sidebar's, runs are picked by compact #n toggles, and the picked runs
    are compared oldest first."""
    from playwright.sync_api import expect

    if widget_manager() is None:
        pytest.skip("ipywidgets' JupyterLab extension is not installed")
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(f"from nbtrack.widgets import show_panel\nshow_panel({NOTEBOOK!r})")]
    nbformat.write(nb, lab.root / "inline.ipynb")
    page.goto(f"{lab.url}/lab/tree/inline.ipynb?reset&token={lab.token}")
    # Run the cell once its kernel is up: run before, JupyterLab asks which kernel instead.
    expect(page.get_by_text(re.compile(r"\(ipykernel\) \| Idle")).first).to_be_visible(timeout=120_000)
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-NotebookPanel .jp-OutputArea-output").first
    chips = output.locator("button.widget-toggle-button")
    expect(chips.first).to_be_visible(timeout=120_000)
    numbers = [int(t.strip().lstrip("#")) for t in chips.all_inner_texts()]
    assert numbers == sorted(numbers, reverse=True), numbers  # newest first, as the list
    expect(output.locator(".widget-html").first).to_contain_text(f"{NOTEBOOK} · {len(numbers)} runs")
    headers = output.locator("table").first.locator("th").all_inner_texts()
    assert headers[:5] == ["#", "run", "status", "start", "duration"], headers
    assert "lr" in headers and not [h for h in headers if h.startswith(("params.", "metrics."))]
    own = [h for h in headers if h in ("accuracy", "val_loss")]
    assert headers.index(own[-1]) < min((i for i, h in enumerate(headers) if h.startswith("system/")),
                                        default=len(headers)), "system measures before the notebook's metrics"
    assert re.fullmatch(r"#\d+ .+ · (finished|failed|running|killed)( · val_loss \S+)?",
                        chips.first.get_attribute("title") or ""), chips.first.get_attribute("title")
    rows_of_chips = {round(box(chips.nth(i))["y"]) for i in range(chips.count())}
    assert len(rows_of_chips) <= 2, "the run picker is not compact"

    inline = {f"#{cells[0]}": cells[4] for cells in (
        row.locator("td").all_inner_texts() for row in output.locator("table").first.locator("tbody tr").all())}

    compare = output.locator("button.widget-button", has_text="Compare")
    expect(compare).to_be_disabled()
    chips.last.click()  # the oldest run, then a newer one: compared oldest first all the same
    chips.nth(chips.count() - 2).click()
    expect(compare).to_have_text("Compare 2 runs")
    expect(compare).to_be_enabled()
    compare.click()
    params = output.locator("h4:text-is('Params') + table")
    expect(params).to_be_visible(timeout=30_000)
    heads = params.locator("thead th").all_inner_texts()
    assert [h.split()[0] for h in heads[1:]] == [f"#{numbers[-1]}", f"#{numbers[-2]}"], heads
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inline.png"))

    # One truth: the inline list's durations are the sidebar's, run by run.
    page.locator(".jp-DirListing-content").get_by_text(NOTEBOOK, exact=True).dblclick()
    panel = open_sidebar(page)
    expect(panel.locator(".nbtrack-title")).to_have_text(NOTEBOOK)
    expect(panel.locator("tr[data-run-id]").first).to_be_visible()
    duration_column = panel.locator("thead th").all_inner_texts().index("duration")
    checked = 0
    for row in panel.locator("tr[data-run-id]").all():
        number = row.locator(".nbtrack-number").inner_text()
        if number in inline:
            assert row.locator("td").nth(duration_column).inner_text() == inline[number], number
            checked += 1
    assert checked == len(inline), (checked, inline)


def test_network_errors_say_what_is_wrong_and_mark_the_list_stale(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    panel = open_panel(page, lab)
    expect(panel.locator("tr[data-run-id]").first).to_be_visible()
    page.route("**/nbtrack/api/**", lambda route: route.abort())
    message = panel.locator(".nbtrack-message")
    expect(message).to_contain_text("Cannot reach the Jupyter server", timeout=15_000)
    expect(message).to_contain_text("may be out of date")
    expect(panel).to_have_class(re.compile("nbtrack-stale"))
    page.unroute("**/nbtrack/api/**")
    expect(message).to_be_hidden(timeout=15_000)
    expect(panel).not_to_have_class(re.compile("nbtrack-stale"))


def test_sidebar_tab_title_and_command_palette(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    panel = open_panel(page, lab)
    tab = page.locator('.jp-SideBar li[data-id="nbtrack-panel"]')
    assert tab.get_attribute("title") == "nbtrack: runs of this notebook"
    tab.click()  # collapse the sidebar
    expect(panel).to_be_hidden()
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette-input")
    expect(palette).to_be_visible()
    palette.fill("nbtrack: show")
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()


def test_dark_theme(lab: Lab, page: Any) -> None:
    """The dark theme: dark panel and comparison, highlighted params without light rows.
    The screenshot is kept as a test artifact."""
    from playwright.sync_api import expect

    panel = open_panel(page, lab)
    page.locator('.lm-MenuBar-itemLabel:text-is("Settings")').click()
    page.locator('.lm-Menu-itemLabel:text-is("Theme")').click()
    page.locator('.lm-Menu-itemLabel:text-is("JupyterLab Dark")').click()
    try:
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
        for lr in ("0.1", "0.01"):
            row_of(panel, lr).locator("input.nbtrack-select").check()
        panel.locator("button.nbtrack-compare-button").click()
        view = page.locator("#nbtrack-comparison")
        differing = view.locator('.nbtrack-params tr.nbtrack-differs[data-param="lr"] td').nth(1)
        expect(differing).to_be_visible()
        page.wait_for_timeout(500)  # the theme's transition
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dark-theme.png"))
        print(f"dark theme screenshot: {ARTIFACTS / 'dark-theme.png'}")
        style = "e => getComputedStyle(e).backgroundColor"
        assert luminance(panel.evaluate(style)) < 0.3
        assert luminance(differing.evaluate(style)) < 0.35, "a light row in the dark theme"
        assert luminance(differing.evaluate("e => getComputedStyle(e).color")) > 0.6
        assert luminance(panel.locator("tr[data-run-id] td.nbtrack-name").first.evaluate(style)) < 0.3
        assert luminance(view.evaluate(style)) < 0.3
    finally:
        page.locator('.lm-MenuBar-itemLabel:text-is("Settings")').click()
        page.locator('.lm-Menu-itemLabel:text-is("Theme")').click()
        page.locator('.lm-Menu-itemLabel:text-is("JupyterLab Light")').click()
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "true")


def test_kernel_of_the_open_notebook_learns_its_path(bare_lab: Lab, browser: Any) -> None:
    """The kernel plugin sets NBTRACK_NOTEBOOK to the notebook's absolute path in its kernel."""
    from jupyter_client.blocking import BlockingKernelClient
    from playwright.sync_api import expect

    lab = bare_lab
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    panel = open_panel(page, lab)
    expect(panel.locator(".nbtrack-empty")).to_contain_text("No runs recorded")
    expect(panel.locator(".nbtrack-actions")).to_be_hidden()  # nothing to compare or re-run yet
    expect(panel.locator("button.nbtrack-compare-button")).to_be_hidden()
    expect(panel.locator("button.nbtrack-rerun-button")).to_be_hidden()

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
    expect(panel.locator("button.nbtrack-compare-button")).to_be_visible()


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
