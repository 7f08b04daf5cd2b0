"""The server extension's REST API against a real MLflow store, through a real Jupyter server."""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import quote

import nbformat
import pytest
from test_server_store import (
    FIGURE_CELL,
    NOTEBOOK,
    TRACKED_NOTEBOOK,
    finished_runs,
    make_papermill_project,
    make_project,
    stop_daemons,
)
from tornado.httpclient import HTTPClientError

import nbtrack
from nbtrack import tags
from nbtrack.store import open_client

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nbtrack.server": True}}}


@pytest.fixture
def project(jp_root_dir):
    return make_project(jp_root_dir)


@pytest.fixture
def api(jp_fetch):
    """GET/POST an nbtrack endpoint; returns (status, JSON body or bytes, headers)."""

    async def call(*parts, params=None, method="GET", body=None, headers=None, raw=False):
        kwargs = {"method": method, "params": params, "headers": headers, "raise_error": False}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        response = await jp_fetch("nbtrack", "api", *parts, **kwargs)
        payload = response.body if raw else json.loads(response.body or b"null")
        return response.code, payload, response.headers

    return call


async def test_version_handshake_reports_version_and_root(api, jp_root_dir):
    status, body, _ = await api("version")
    assert status == 200
    assert body["version"] == nbtrack.__version__
    assert body["root_dir"] == str(jp_root_dir.resolve())
    assert body["mlflow_ui_url"] is None


async def test_runs_lists_the_notebooks_runs_newest_first(api, project):
    status, body, _ = await api("runs", params={"notebook": NOTEBOOK})
    assert status == 200
    assert [r["run_id"] for r in body["runs"]] == project.run_ids[::-1]
    newest = body["runs"][0]
    assert newest["status"] == "FINISHED"
    assert newest["params"] == {"depth": "3", "lr": "0.001"}
    assert newest["metrics"]["val_loss"] == pytest.approx(1 / 1.01 * 1.0)
    assert newest["duration_s"] == pytest.approx(7.0)
    assert newest["start_time"].endswith("+00:00")
    assert body["notebook"]["experiment"] == NOTEBOOK
    assert body["notebook"]["absolute_path"] == str(project.notebook_path.resolve())


async def test_runs_carry_numbers_names_and_a_change_token(api, project):
    status, body, _ = await api("runs", params={"notebook": NOTEBOOK})
    assert status == 200
    oldest_first = body["runs"][::-1]
    assert [r["number"] for r in oldest_first] == [1, 2, 3]
    assert [r["label"] for r in oldest_first] == ["run-0", "run-1", "run-2"]  # names chosen are kept
    status, changes, _ = await api("changes", params={"notebook": NOTEBOOK})
    assert status == 200
    assert changes["token"] == body["token"]  # nothing happened since the list

    client = open_client(project.tracking_uri)
    client.create_run(project.experiment_id, run_name="made elsewhere")
    _, moved, _ = await api("changes", params={"notebook": NOTEBOOK})
    assert moved["token"] != body["token"]
    _, again, _ = await api("runs", params={"notebook": NOTEBOOK})
    assert again["token"] == moved["token"]
    assert again["runs"][0]["run_name"] == "made elsewhere"


async def test_changes_needs_a_notebook_inside_the_root(api, project):
    status, body, _ = await api("changes")
    assert status == 400
    assert "notebook" in body["message"]
    status, body, _ = await api("changes", params={"notebook": "../x.ipynb"})
    assert status == 400


async def test_a_failed_run_explains_itself_in_the_list_and_its_output_notebook(api, project):
    from test_query_panel import failed_run

    failed = failed_run(project)
    _, body, _ = await api("runs", params={"notebook": NOTEBOOK})
    (row,) = [r for r in body["runs"] if r["run_id"] == failed]
    assert row["status"] == "FAILED"
    assert row["error"]["message"] == "ValueError: lr too large"
    assert row["error"]["cell"]["number"] == 4
    assert all("error" not in r for r in body["runs"] if r["run_id"] != failed)

    status, html, headers = await api("output", failed[:8], params={"notebook": NOTEBOOK}, raw=True)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "sandbox" in headers["Content-Security-Policy"]
    assert b"lr too large" in html

    status, body, _ = await api("output", project.run_ids[0], params={"notebook": NOTEBOOK})
    assert status == 404
    assert "no output notebook" in body["message"]


async def test_runs_of_an_untracked_notebook_is_an_empty_list(api, jp_root_dir):
    (jp_root_dir / "fresh.ipynb").write_text("{}")
    status, body, _ = await api("runs", params={"notebook": "fresh.ipynb"})
    assert status == 200
    assert body["runs"] == []


async def test_runs_of_a_missing_notebook_is_404_with_message(api, project):
    status, body, _ = await api("runs", params={"notebook": "nope/missing.ipynb"})
    assert status == 404
    assert "missing.ipynb" in body["message"]


async def test_runs_refuses_bad_notebook_arguments(api, project):
    status, body, _ = await api("runs")
    assert status == 400
    assert "notebook" in body["message"]
    status, body, _ = await api("runs", params={"notebook": "../../etc/passwd"})
    assert status == 400
    assert "outside" in body["message"]


async def test_compare_translates_the_query_layers_comparison(api, project):
    first, second, _ = project.run_ids
    status, body, _ = await api("compare", params={"ids": f"{first},{second}", "notebook": NOTEBOOK})
    assert status == 200
    params = {p["key"]: p for p in body["params"]}
    assert params["lr"]["differs"] is True
    assert params["depth"]["differs"] is False
    assert params["lr"]["values"] == {first: "0.1", second: "0.01"}
    metrics = {m["key"]: m for m in body["metrics"]}
    assert metrics["val_loss"]["direction"] == "min"
    assert metrics["val_loss"]["best_runs"]["last"] == [first]  # lr=0.1 has the lower loss
    assert len(body["histories"]["val_loss"][first]) == 3
    (figure,) = body["figures"]
    assert figure["cell_id"] == FIGURE_CELL
    assert set(figure["runs"]) == {first, second}
    assert [c["cell_id"] for c in body["cells"]] == ["p4r4m5"]


async def test_compare_unknown_run_is_404_naming_it(api, project):
    status, body, _ = await api(
        "compare", params={"ids": f"{project.run_ids[0]},deadbeef", "notebook": NOTEBOOK}
    )
    assert status == 404
    assert "deadbeef" in body["message"]


async def test_compare_without_ids_is_400(api, project):
    status, body, _ = await api("compare", params={"notebook": NOTEBOOK})
    assert status == 400
    assert "run" in body["message"]


async def test_artifact_serves_a_runs_figure_as_an_inert_image(api, project):
    run_id = project.run_ids[0]
    path = f"figures/2-{FIGURE_CELL}-0.png"
    status, body, headers = await api(
        "artifact", run_id, path, params={"notebook": NOTEBOOK}, raw=True
    )
    assert status == 200
    assert body.startswith(b"\x89PNG")
    assert headers["Content-Type"] == "image/png"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    ["../../../mlflow.db", "figures/../../../../mlflow.db", "/etc/passwd", "..%2F..%2Fmlflow.db"],
)
async def test_artifact_path_traversal_is_refused(api, project, path):
    status, body, _ = await api(
        "artifact", project.run_ids[0], path, params={"notebook": NOTEBOOK}, raw=True
    )
    assert status in (400, 404), body
    assert b"SQLite" not in body and b"root:" not in body
    if status == 400:
        assert b"artifact" in body


async def test_artifact_symlink_out_of_the_run_is_refused(api, project):
    from mlflow.tracking import MlflowClient

    run = MlflowClient(project.tracking_uri).get_run(project.run_ids[0])
    root = run.info.artifact_uri.removeprefix("file://")
    os.symlink(project.root / ".nbtrack" / "mlflow.db", os.path.join(root, "figures", "db.png"))
    status, body, _ = await api(
        "artifact", project.run_ids[0], "figures/db.png", params={"notebook": NOTEBOOK}
    )
    assert status == 400
    assert "outside" in body["message"]


async def test_artifact_of_another_run_or_unknown_run_is_404(api, project):
    status, body, _ = await api(
        "artifact", project.run_ids[0], "figures/none.png", params={"notebook": NOTEBOOK}
    )
    assert status == 404
    assert "figures/none.png" in body["message"]
    status, body, _ = await api(
        "artifact", "0123456789abcdef", f"figures/2-{FIGURE_CELL}-0.png",
        params={"notebook": NOTEBOOK},
    )
    assert status == 404
    assert "0123456789abcdef" in body["message"]


async def test_rerun_of_unknown_run_is_404_and_unknown_job_is_404(api, project):
    status, body, _ = await api(
        "rerun", method="POST", body={"run_id": "feedface", "notebook": NOTEBOOK}
    )
    assert status == 404
    assert "feedface" in body["message"]
    status, body, _ = await api("jobs", "0" * 32)
    assert status == 404
    assert "no job" in body["message"]


@pytest.mark.kernel
async def test_rerun_runs_in_the_background_and_reports_the_new_run(api, jp_root_dir, monkeypatch):
    monkeypatch.setenv("NBTRACK_DAEMON_IDLE", "5")
    make_papermill_project(jp_root_dir, [0.1])
    (original,) = finished_runs(jp_root_dir)
    try:
        status, job, headers = await api(
            "rerun", method="POST",
            body={"run_id": original.info.run_id, "params": {"lr": "0.5"}, "notebook": TRACKED_NOTEBOOK},
        )
        assert status == 202
        assert headers["Location"].endswith(f"/nbtrack/api/jobs/{job['id']}")
        seen = {job["state"]}
        while job["state"] in ("queued", "running"):
            await asyncio.sleep(0.5)
            status, job, _ = await api("jobs", job["id"])
            assert status == 200
            seen.add(job["state"])
        assert job["state"] == "done", job["message"]
        assert "running" in seen
        (new,) = job["result"]["runs"]
        assert new["rerun_of"] == original.info.run_id
        assert str(new["params"]["lr"]) == "0.5"
        status, body, _ = await api("runs", params={"notebook": TRACKED_NOTEBOOK})
        assert [r["run_id"] for r in body["runs"]] == [new["run_id"], original.info.run_id]
    finally:
        stop_daemons(jp_root_dir)


async def test_rerun_refuses_a_bad_param_name(api, project):
    status, body, _ = await api(
        "rerun", method="POST",
        body={"run_id": project.run_ids[0], "params": {"not a name": "1"}, "notebook": NOTEBOOK},
    )
    assert status == 400
    assert "not a name" in body["message"]


@pytest.mark.parametrize("value", [1, "1"], ids=["number", "text"])
async def test_rerun_refuses_code_in_a_param_name(api, project, jp_root_dir, value):
    name = "lr = 0.5\nimport os; os.system('touch pwned')\nzz"
    status, body, _ = await api(
        "rerun", method="POST",
        body={"run_id": project.run_ids[0], "params": {name: value}, "notebook": NOTEBOOK},
    )
    assert status == 400
    assert "is not a valid parameter name" in body["message"] and "\n" not in body["message"]
    assert not list(jp_root_dir.rglob("pwned"))
    assert not (jp_root_dir / ".nbtrack" / "outputs").exists()  # no job started


async def test_rerun_refuses_an_empty_value(api, project):
    status, body, _ = await api(
        "rerun", method="POST",
        body={"run_id": project.run_ids[0], "params": {"lr": ""}, "notebook": NOTEBOOK},
    )
    assert status == 400
    assert "lr" in body["message"] and "empty value" in body["message"]
    assert "-p" not in body["message"]  # the panel's form has fields, not command-line options


@pytest.mark.parametrize("current", [True, False])
@pytest.mark.parametrize("where", ["absolute", "relative"])
async def test_rerun_never_executes_a_notebook_outside_the_root(api, project, jp_root_dir,
                                                               current, where):
    """A run's notebook path is a tag anyone with access to the store can set."""
    outside = jp_root_dir.parent / "elsewhere" / "evil.ipynb"
    outside.parent.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("open('pwned', 'w').close()")]
    nbformat.write(nb, outside)
    client = open_client(project.tracking_uri)
    found = ({tags.SOURCE_NAME: str(outside)} if where == "absolute"
             else {tags.NOTEBOOK: os.path.relpath(outside, jp_root_dir)})
    run_id = client.create_run(project.experiment_id, tags=found).info.run_id
    status, body, _ = await api(
        "rerun", method="POST", body={"run_id": run_id, "current": current, "notebook": NOTEBOOK},
    )
    assert status == 400
    assert f"({outside}) is outside the server's root {jp_root_dir.resolve()}" in body["message"]
    assert f"nbtrack rerun {run_id[:8]}" in body["message"]
    assert not (outside.parent / "pwned").exists()
    assert len(client.search_runs([project.experiment_id])) == len(project.run_ids) + 1


async def test_short_run_ids_work_in_every_endpoint(api, project):
    first, second, _ = project.run_ids
    status, body, _ = await api("compare", params={"ids": f"{first[:8]},{second[:8]}",
                                                   "notebook": NOTEBOOK})
    assert status == 200
    assert [r["run_id"] for r in body["runs"]] == [first, second]
    status, png, _ = await api("artifact", first[:8], f"figures/2-{FIGURE_CELL}-0.png",
                               params={"notebook": NOTEBOOK}, raw=True)
    assert status == 200 and png.startswith(b"\x89PNG")
    unknown = next(c * 8 for c in "0123456789abcdef" if not any(r.startswith(c) for r in project.run_ids))
    status, body, _ = await api("rerun", method="POST", body={"run_id": unknown, "notebook": NOTEBOOK})
    assert status == 404
    assert f"no run {unknown}" in body["message"]
    status, body, _ = await api("compare", params={"ids": "not-an-id", "notebook": NOTEBOOK})
    assert status == 400
    assert "'not-an-id' is not a run id" in body["message"]


async def test_rerun_requires_a_run_id(api, project):
    status, body, _ = await api("rerun", method="POST", body={"params": {"lr": "1"}})
    assert status == 400
    assert "run_id" in body["message"]


@pytest.mark.parametrize(
    ("method", "parts"),
    [
        ("GET", ("version",)),
        ("GET", ("runs",)),
        ("GET", ("compare",)),
        ("GET", ("artifact", "r", "figures/x.png")),
        ("GET", ("changes",)),
        ("GET", ("output", "r")),
        ("POST", ("rerun",)),
        ("GET", ("jobs", "j")),
    ],
)
async def test_every_endpoint_is_403_without_a_token(jp_fetch, project, method, parts):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch(
            "nbtrack", "api", *parts, method=method, headers={"Authorization": ""},
            params={"notebook": NOTEBOOK},
            body=json.dumps({"run_id": project.run_ids[0]}) if method == "POST" else None,
        )
    assert error.value.code == 403


async def test_paths_with_spaces_and_unicode_resolve(api, jp_root_dir):
    tracked = make_project(jp_root_dir, (0.5,), notebook="my notebooks/été.ipynb")
    status, body, _ = await api("runs", params={"notebook": tracked.notebook})
    assert status == 200
    assert [r["run_id"] for r in body["runs"]] == tracked.run_ids
    status, _, _ = await api(
        "artifact", tracked.run_ids[0], quote(f"figures/2-{FIGURE_CELL}-0.png"),
        params={"notebook": tracked.notebook}, raw=True,
    )
    assert status == 200


def test_panel_and_server_versions_match():
    """The panel's handshake compares its package.json version with the server's __version__."""
    from pathlib import Path

    package = json.loads((Path(__file__).parents[1] / "labextension" / "package.json").read_text())
    assert package["version"] == nbtrack.__version__
