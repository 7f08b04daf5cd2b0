"""Models end to end: scikit-learn fitted in a real kernel run by papermill, its models in MLflow
and the lake, registered in MLflow's registry on the embedded store, served by MLflow's own
scoring server over HTTP, and the best model of a real sweep registered.

What a user sees: the commands' output lines and exit codes, MLflow's registry, the predictions
the server answers (equal to the fitted model's in the kernel), the lake's rows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from helpers import client_for, finished_runs, free_port, mlflow_server, stop_daemons, wait_for, write_notebook

pytestmark = pytest.mark.kernel

TRAIN = [
    "%load_ext nbtrack",
    ("C = 1.0", ["parameters"]),
    "import json, sys\nimport numpy as np, pandas as pd\n"
    "rng = np.random.default_rng(0)\n"
    "X_train = pd.DataFrame(rng.random((80, 3)), columns=['a', 'b', 'c'])\n"
    "y_train = (X_train.a + X_train.b > 1).astype(int)\n"
    "X_test = pd.DataFrame(rng.random((6, 3)), columns=['a', 'b', 'c'])",
    "%nbtrack end",  # a first run that prepared data and has no model
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "from sklearn.pipeline import make_pipeline\n"
    "clf = LogisticRegression(C=C).fit(X_train, y_train)\n"
    "pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train.to_numpy(), y_train)\n"
    "val_acc = float((clf.predict(X_train) == y_train).mean())\n"
    "json.dump({'X_test': X_test.to_numpy().tolist(), 'clf': clf.predict(X_test).tolist(),\n"
    "           'proba': clf.predict_proba(X_test)[:, 1].tolist()}, open('expected.json', 'w'))",
    "%nbtrack end",  # the models' run
    "imported = sorted(m for m in ('mlflow', 'torch', 'xgboost', 'lightgbm', 'keras', 'tensorflow')\n"
    "                  if m in sys.modules)\n"
    "json.dump(imported, open('imported.json', 'w'))",  # a third run: the models did not change
]


class Trained:
    """A project whose notebook papermill executed: three runs, the second with two models."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"sqlite:///{root / '.nbtrack' / 'mlflow.db'}"
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(self.uri)
        runs = [r for e in self.client.search_experiments() for r in self.client.search_runs([e.experiment_id])]
        self.runs = sorted(runs, key=lambda r: r.info.start_time)
        self.expected = json.loads((root / "expected.json").read_text())

    @property
    def model_run(self) -> str:
        return self.runs[1].info.run_id


def nbtrack_cli(root: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbtrack", *args], cwd=root, capture_output=True,
                          text=True, timeout=timeout, env=_env())


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "MLFLOW_", "JPY_SESSION"))}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, empty_store: Path):
    root = tmp_path_factory.mktemp("models") / "proj"
    (root / ".nbtrack").mkdir(parents=True)
    shutil.copy(empty_store, root / ".nbtrack" / "mlflow.db")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    write_notebook(root / "train.ipynb", TRAIN)
    env = dict(_env(), NBTRACK_DAEMON_IDLE="3")
    subprocess.run([sys.executable, "-m", "papermill", "train.ipynb", "out.ipynb", "-p", "C", "0.5"],
                   cwd=root, check=True, capture_output=True, env=env, timeout=300)
    finished_runs(root, 3, timeout=120, statuses=("FINISHED",))
    yield Trained(root)
    stop_daemons(root.parent)


def test_a_papermill_run_logs_its_models_into_mlflow_and_the_lake(trained):
    from deltalake import DeltaTable

    models = {r.info.run_id: trained.client.search_logged_models(
        experiment_ids=[r.info.experiment_id], filter_string=f"source_run_id = '{r.info.run_id}'")
        for r in trained.runs}
    first, second, third = (sorted(m.name for m in models[r.info.run_id]) for r in trained.runs)
    assert (first, second, third) == ([], ["clf", "pipe"], [])  # the third run left them unchanged
    # the kernel recognised the models without importing MLflow or any library it had not imported
    assert json.loads((trained.root / "imported.json").read_text()) == []
    models_table = trained.root / ".nbtrack" / "lake" / "models"

    def lake_models() -> list[dict]:  # the Delta sink may commit a moment after MLflow has the run
        if not (models_table / "_delta_log").is_dir():
            return []
        return DeltaTable(str(models_table)).to_pyarrow_table().to_pylist()

    wait_for(lambda: len(lake_models()) >= 2, timeout=60)
    rows = lake_models()
    assert sorted((r["run_id"], r["name"], r["flavor"], r["uri"]) for r in rows) == [
        (trained.model_run, "clf", "sklearn", f"runs:/{trained.model_run}/clf"),
        (trained.model_run, "pipe", "sklearn", f"runs:/{trained.model_run}/pipe"),
    ]
    assert all(r["size_bytes"] > 500 and r["model_class"].startswith("sklearn.") for r in rows)


def test_runs_and_compare_show_each_runs_models(trained):
    listed = nbtrack_cli(trained.root, "runs", "train.ipynb")  # piped: every column whole
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[2:]}
    assert "  clf, pipe  " in lines[trained.model_run]
    assert "clf" not in lines[trained.runs[0].info.run_id]
    compared = nbtrack_cli(trained.root, "compare", trained.model_run[:8], "--json")
    assert compared.returncode == 0, compared.stderr
    (run,) = json.loads(compared.stdout)["runs"]
    assert [(m["name"], m["flavor"], m["uri"]) for m in run["models"]] == [
        ("clf", "sklearn", f"runs:/{trained.model_run}/clf"), ("pipe", "sklearn", f"runs:/{trained.model_run}/pipe")]
    assert all(isinstance(m["size"], int) and m["size"] > 500 for m in run["models"])
    text = nbtrack_cli(trained.root, "compare", trained.model_run[:8]).stdout
    assert "clf (sklearn, " in text and " kB), pipe (sklearn, " in text


def test_register_prints_the_version_and_registers_once(trained):
    from deltalake import DeltaTable

    done = nbtrack_cli(trained.root, "register", trained.model_run[:8], "--model", "clf", "--name", "churn",
                       "--alias", "champion")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "models:/churn/1\n"
    version = trained.client.get_model_version("churn", "1")
    assert version.run_id == trained.model_run and version.aliases == ["champion"]
    assert str(trained.client.get_model_version_by_alias("churn", "champion").version) == "1"
    again = nbtrack_cli(trained.root, "register", trained.model_run[:8], "--model", "clf", "--name", "churn")
    assert again.returncode == 0 and again.stdout == "models:/churn/1\n"  # the same model: the same version
    assert "already registered" in again.stderr
    assert [str(v.version) for v in trained.client.search_model_versions("name = 'churn'")] == ["1"]
    rows = DeltaTable(str(trained.root / ".nbtrack" / "lake" / "models")).to_pyarrow_table().to_pylist()
    clf = next(r for r in rows if r["name"] == "clf")
    assert (clf["registered_name"], clf["registered_version"], clf["aliases"]) == ("churn", 1, "champion")
    assert clf["flavor"] == "sklearn"  # the delivered row, merged with its registration


def test_register_from_python(trained):
    import nbtrack

    assert nbtrack.register(trained.model_run, "pipes", model="pipe", project=trained.root) == "models:/pipes/1"
    assert trained.client.get_model_version("pipes", "1").run_id == trained.model_run


@pytest.mark.parametrize(("args", "code", "message"), [
    (("deadbeef", "--name", "x"), 3, "no run deadbeef"),
    (("not-an-id", "--name", "x"), 2, "is not a run id"),
    (("FIRST", "--name", "x"), 3, "has no model: a run logs one when a top-level variable"),
    (("MODEL", "--name", "x"), 2, "has 2 models (clf, pipe): choose one with --model NAME"),
    (("MODEL", "--model", "nope", "--name", "x"), 3, "has no model named 'nope'; it has clf, pipe"),
    (("MODEL", "--model", "clf", "--name", "x", "--alias", "v2"), 2, "'v2' cannot be an alias"),
    (("MODEL", "--model", "clf", "--name", "a/b"), 2, "'a/b' cannot name a registered model"),
])
def test_register_refuses_bad_input_in_one_line_and_registers_nothing(trained, args, code, message):
    ids = {"FIRST": trained.runs[0].info.run_id[:8], "MODEL": trained.model_run[:8]}
    done = nbtrack_cli(trained.root, "register", *(ids.get(a, a) for a in args))
    assert (done.returncode, done.stdout) == (code, "")
    assert done.stderr.startswith("nbtrack register: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert trained.client.search_registered_models("name = 'x'") == []


def test_a_name_holding_another_notebooks_models_is_a_clash(trained):
    import mlflow
    from sklearn.dummy import DummyClassifier

    other = trained.client.create_experiment("elsewhere.ipynb")
    run = trained.client.create_run(other)
    mlflow.set_tracking_uri(trained.uri)
    info = mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="dummy",
                                    run_id=run.info.run_id, pip_requirements=["scikit-learn"])
    trained.client.create_registered_model("shared")
    trained.client.create_model_version("shared", info.model_uri, run_id=run.info.run_id, model_id=info.model_id)
    clash = nbtrack_cli(trained.root, "register", trained.model_run[:8], "--model", "clf", "--name", "shared",
                        "--alias", "champion")
    assert clash.returncode == 2
    assert "registered model 'shared' holds models of elsewhere.ipynb" in clash.stderr
    versions = trained.client.search_model_versions("name = 'shared'")
    assert [str(v.version) for v in versions] == ["1"]  # nothing half-registered
    assert trained.client.get_registered_model("shared").aliases == {}
    forced = nbtrack_cli(trained.root, "register", trained.model_run[:8], "--model", "clf", "--name", "shared",
                         "--force")
    assert forced.returncode == 0 and forced.stdout == "models:/shared/2\n"


def test_serve_answers_invocations_with_the_fitted_models_predictions(trained):
    import nbtrack

    nbtrack.register(trained.model_run, "served", model="clf", alias="champion", project=trained.root)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "nbtrack", "serve", "models:/served@champion",
                               "--port", str(port)], cwd=trained.root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env())
    try:
        line = server.stdout.readline()  # printed once the server answers
        assert line.startswith(f"serving models:/served@champion at http://127.0.0.1:{port}"), (
            line, server.poll())
        payload = {"dataframe_split": {"columns": ["a", "b", "c"], "data": trained.expected["X_test"]}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert answer["predictions"] == trained.expected["clf"]
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    assert "stopped" in server.stderr.read()
    with socket.socket() as probe:  # MLflow's server is gone with it
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_serve_refuses_a_port_in_use_and_unknown_models_in_one_line(trained):
    import nbtrack

    nbtrack.register(trained.model_run, "churn", model="clf", project=trained.root)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = nbtrack_cli(trained.root, "serve", "models:/churn/1", "--port", port)
    assert busy.returncode == 6 and f"port {port} on 127.0.0.1 is in use" in busy.stderr
    for uri, code, message in [
        ("models:/churn/9", 3, "registered model 'churn' has no version 9 (versions: 1)"),
        ("models:/nope/1", 3, "no registered model 'nope'"),
        ("models:/churn@prod", 3, "registered model 'churn' has no alias 'prod'"),
        (f"runs:/{trained.model_run[:8]}/nope", 3, "has no model named 'nope' (it has clf, pipe)"),
        ("churn", 2, "is not a model URI"),
    ]:
        done = nbtrack_cli(trained.root, "serve", uri, "--port", str(free_port()))
        assert done.returncode == code, (uri, done.stderr)
        assert message in done.stderr and done.stdout == ""
        assert done.stderr.strip().splitlines()[-1].startswith("nbtrack serve: ")


SWEEP = [
    "%load_ext nbtrack",
    ("noise = 0.0", ["parameters"]),
    "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
    "X = np.random.default_rng(0).random((40, 2))\ny = (X[:, 0] > 0.5).astype(int)\n"
    "model = LogisticRegression().fit(X, y)\nval_acc = 1.0 - noise",
]


def test_sweep_registers_the_model_of_its_best_execution(project, capsys):

    from nbtrack.cli.main import main

    write_notebook(project / "sweep.ipynb", SWEEP)
    assert main(["sweep", "sweep.ipynb", "-p", "noise=0.1", "--register-best", "best"]) == 2
    assert "--register-best needs --metric" in capsys.readouterr().err
    assert not (project / ".nbtrack" / "outputs").exists()  # refused before anything ran
    code = main(["sweep", "sweep.ipynb", "-p", "noise=0.3,0.1,0.2", "--metric", "val_acc",
                 "--register-best", "best", "--workers", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3 finished, 0 failed; best model registered as models:/best/1" in " ".join(out.split())
    client = client_for(project)
    version = client.get_model_version("best", "1")
    assert client.get_run(version.run_id).data.params["noise"] == "0.1"


def test_models_on_a_tracking_server_are_registered_and_served(project):
    from mlflow.tracking import MlflowClient

    write_notebook(project / "train.ipynb", TRAIN[:3] + TRAIN[4:5])  # one run: data, then the models
    with mlflow_server(project.parent / "server", env=_env()) as uri:
        env = dict(_env(), MLFLOW_TRACKING_URI=uri, NBTRACK_DAEMON_IDLE="3")
        subprocess.run([sys.executable, "-m", "papermill", "train.ipynb", "out.ipynb"], cwd=project, check=True,
                       capture_output=True, env=env, timeout=300)
        client = MlflowClient(uri)
        (run,) = finished_runs(client, timeout=120, statuses=("FINISHED",))
        found = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                            filter_string=f"source_run_id = '{run.info.run_id}'")
        assert sorted(m.name for m in found) == ["clf", "pipe"]
        done = subprocess.run([sys.executable, "-m", "nbtrack", "register", run.info.run_id[:8], "--model", "clf",
                               "--name", "remote", "--alias", "champion"], cwd=project, capture_output=True,
                              text=True, env=env, timeout=180)
        assert (done.returncode, done.stdout) == (0, "models:/remote/1\n"), done.stderr
        assert client.get_model_version_by_alias("remote", "champion").run_id == run.info.run_id
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "nbtrack", "serve", "models:/remote@champion", "--port",
                                   str(port)], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, env=env)
        try:
            assert server.stdout.readline().startswith(f"serving models:/remote@champion at http://127.0.0.1:{port}")
            expected = json.loads((project / "expected.json").read_text())
            payload = {"dataframe_split": {"columns": ["a", "b", "c"], "data": expected["X_test"]}}
            request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(payload).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as response:
                assert json.loads(response.read())["predictions"] == expected["clf"]
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0
