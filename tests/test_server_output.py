"""A failed run's output notebook as a page, wherever nbconvert's templates are installed.

CI runs the tests in a ``venv --system-site-packages``: nbconvert is imported from the base
interpreter, but its templates (data files under the base's ``share/jupyter``) are not on
Jupyter's data path, and ``GET /nbtrack/api/output`` answered 500 ("No template
sub-directory with name 'lab'"). These tests take the templates off Jupyter's data path
the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from test_server import api, jp_server_config, project  # noqa: F401  (fixtures)
from test_server_store import NOTEBOOK

from nbtrack.server import output

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def templates_off_the_data_path(jp_environ, jp_data_dir):
    """Jupyter's data path without nbconvert's templates (pytest-jupyter copies them there)."""
    from jupyter_core.paths import jupyter_path

    shutil.rmtree(jp_data_dir / "nbconvert", ignore_errors=True)
    if any((Path(p) / "lab").exists() for p in jupyter_path("nbconvert", "templates")):
        pytest.skip("nbconvert's templates are installed outside the test's data dirs")
    from nbconvert import HTMLExporter

    with pytest.raises(ValueError, match="No template sub-directory with name 'lab'"):
        HTMLExporter(template_name="lab")  # nbconvert alone fails here, as it did in CI


def failed_notebook(path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("assert lr < 1, f'lr too large: {lr}'")
    cell.outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="lr too large: 5",
        traceback=["\x1b[0;31mAssertionError\x1b[0m: lr too large: 5 <b>"])]
    nb.cells = [nbformat.v4.new_code_cell("lr = 5"), cell]
    nbformat.write(nb, path)
    return path


async def test_output_page_of_a_failed_run_without_templates_on_the_data_path(
    api, project, templates_off_the_data_path  # noqa: F811
):
    from test_query_panel import failed_run

    failed = failed_run(project)
    status, html, headers = await api("output", failed[:8], params={"notebook": NOTEBOOK}, raw=True)
    assert status == 200, html[-2000:]
    assert headers["Content-Type"].startswith("text/html")
    assert b"lr too large" in html
    assert b"jp-Notebook" in html  # drawn by nbconvert's lab template, not the plain fallback


def test_lab_template_found_beside_nbconvert(tmp_path, templates_off_the_data_path):
    found = output.nbconvert_templates()
    assert found is not None and (found / "lab" / "conf.json").is_file()
    html = output.notebook_html(failed_notebook(tmp_path / "out.ipynb"))
    assert "jp-Notebook" in html and "lr too large: 5" in html


def test_without_any_template_the_notebook_is_shown_plainly(tmp_path, monkeypatch,
                                                            templates_off_the_data_path):
    monkeypatch.setattr(output, "nbconvert_templates", lambda: None)
    html = output.notebook_html(failed_notebook(tmp_path / "out.ipynb"))
    assert "shown plainly" in html
    assert "cell 2" in html and "assert lr &lt; 1" in html
    assert "AssertionError: lr too large: 5 &lt;b&gt;" in html  # colours removed, escaped
    assert "<b>" not in html.split("</p>", 1)[1]
