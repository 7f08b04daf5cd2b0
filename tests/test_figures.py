"""Charts of altair, plotly and bokeh as a real kernel displays them, kept as figures.

Altair 5/6 show a chart as a vega-embed HTML page only; its Vega-Lite spec is
what must be kept. Plotly's and Bokeh's default notebook outputs too; a plain
HTML table is not a figure.
"""

from __future__ import annotations

import json

import pytest
from helpers import client_for, write_notebook
from test_kernels import artifact_paths, finished

pytestmark = pytest.mark.kernel

pytest.importorskip("altair")
pytest.importorskip("plotly")
pytest.importorskip("bokeh")

CHARTS = [
    "%load_ext nbtrack",
    "import altair as alt\nimport pandas as pd\n"
    "alt.Chart(pd.DataFrame({'a': [1, 2], 'b': [3, 4]})).mark_bar().encode(x='a', y='b')",
    "import plotly.express as px\npx.line(x=[1, 2, 3], y=[3, 1, 2], title='plotly line')",
    "from bokeh.io import output_notebook\nfrom bokeh.plotting import figure, show\noutput_notebook()\n"
    "p = figure(title='bokeh line')\np.line([1, 2], [3, 4])\nshow(p)",
    "pd.DataFrame({'table': [1, 2]})",
]


def test_altair_plotly_and_bokeh_charts_are_kept_as_their_specs(project):
    import papermill

    nb = write_notebook(project / "charts.ipynb", CHARTS)
    papermill.execute_notebook(str(project / "charts.ipynb"), str(project / "charts-out.ipynb"),
                               cwd=str(project), progress_bar=False)
    (run,) = finished(project, timeout=60)
    figures = [p for p in artifact_paths(project, run) if p.startswith("figures/")]
    altair, plotly, bokeh = (f"figures/{i + 2}-{nb.cells[i + 1].id}-0" for i in range(3))
    assert sorted(figures) == [f"{altair}.vl.json", f"{plotly}.json", f"{bokeh}.bokeh.json"]

    def load(path: str) -> dict:
        local = client_for(project).download_artifacts(run.info.run_id, path, str(project / "dl"))
        with open(local, encoding="utf-8") as f:
            return json.load(f)

    spec = load(f"{altair}.vl.json")
    assert spec["mark"] == {"type": "bar"} and "vega-lite" in spec["$schema"]
    assert list(spec["datasets"].values()) == [[{"a": 1, "b": 3}, {"a": 2, "b": 4}]]
    plotly_figure = load(f"{plotly}.json")
    assert plotly_figure["layout"]["title"]["text"] == "plotly line" and plotly_figure["data"]
    assert "bokeh line" in json.dumps(load(f"{bokeh}.bokeh.json"))

    from nbtrack.query.artifacts import group_figures

    groups = group_figures(client_for(project), [run])  # lined up by cell, as compare shows them
    assert [(g.cell_id, g.n) for g in groups] == [(nb.cells[i].id, 0) for i in (1, 2, 3)]
