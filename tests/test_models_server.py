"""``POST /nbtrack/api/register`` through a real Jupyter server, on a real MLflow store whose run
holds a model MLflow itself logged."""

from __future__ import annotations

import json

import pytest
from test_server_store import NOTEBOOK, make_project
from tornado.httpclient import HTTPClientError

from nbtrack import tags
from nbtrack.store import open_client

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nbtrack.server": True}}}


@pytest.fixture
def project(jp_root_dir):
    """Two runs of the notebook; the newest holds a scikit-learn model called clf."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    tracked = make_project(jp_root_dir, (0.1, 0.01), figures=False)
    client = open_client(tracked.tracking_uri)
    run_id = tracked.run_ids[-1]
    logged = client.create_logged_model(experiment_id=tracked.experiment_id, name="clf", source_run_id=run_id)
    mlflow.set_tracking_uri(tracked.tracking_uri)
    mlflow.sklearn.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="clf", run_id=run_id,
                             model_id=logged.model_id, pip_requirements=["scikit-learn"])
    client.set_tag(run_id, tags.MODELS, json.dumps([{"name": "clf", "flavor": "sklearn", "size": 900}]))
    return tracked


@pytest.fixture
def api(jp_fetch):
    async def call(*parts, body=None, headers=None):
        response = await jp_fetch("nbtrack", "api", *parts, method="POST", body=json.dumps(body),
                                  headers=headers, raise_error=False)
        return response.code, json.loads(response.body or b"null")

    return call


async def test_register_puts_the_runs_model_in_the_registry(api, project):
    run_id = project.run_ids[-1]
    body = {"run_id": run_id[:8], "name": "churn", "alias": "champion", "notebook": NOTEBOOK}
    status, done = await api("register", body=body)
    assert status == 201
    assert (done["uri"], done["version"], done["model"], done["run_id"]) == ("models:/churn/1", 1, "clf", run_id)
    assert done["aliases"] == ["champion"] and done["created"] is True
    version = open_client(project.tracking_uri).get_model_version_by_alias("churn", "champion")
    assert version.run_id == run_id
    status, again = await api("register", body=body)  # the same model: the same version
    assert status == 200 and again["uri"] == "models:/churn/1" and again["created"] is False


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"run_id": "deadbeef", "name": "x"}, 404, "no run deadbeef"),
    ({"run_id": "OLDEST", "name": "x"}, 404, "has no model"),
    ({"run_id": "NEWEST", "name": "x", "model": "nope"}, 404, "has no model named 'nope'"),
    ({"run_id": "NEWEST", "name": "a:b"}, 400, "cannot name a registered model"),
    ({"run_id": "NEWEST"}, 400, "pass name"),
    ({"run_id": "NEWEST", "name": "x", "alias": "latest"}, 400, "cannot be an alias"),
])
async def test_register_refuses_bad_input_with_a_message(api, project, body, status, message):
    ids = {"OLDEST": project.run_ids[0], "NEWEST": project.run_ids[-1]}
    body = {**body, "run_id": ids.get(body["run_id"], body["run_id"]), "notebook": NOTEBOOK}
    code, answer = await api("register", body=body)
    assert code == status and message in answer["message"]
    assert open_client(project.tracking_uri).search_registered_models() == []


async def test_register_is_403_without_a_token(jp_fetch, project):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("nbtrack", "api", "register", method="POST", headers={"Authorization": ""},
                       body=json.dumps({"run_id": project.run_ids[-1], "name": "x", "notebook": NOTEBOOK}))
    assert error.value.code == 403
