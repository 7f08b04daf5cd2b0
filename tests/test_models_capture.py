"""Models captured with no call, in a real InteractiveShell, delivered into a real MLflow store.

What a user sees: the MLflow logged models of each run (name, flavor, signature, the
predictions of the model loaded back), the run's ``nbtrack.models`` tag, and the one-line
warnings capture prints instead of failing a cell.
"""

from __future__ import annotations

import json

import pytest
from helpers import all_runs, client_for, session_of

import nbtrack

FIT = (
    "import numpy as np, pandas as pd\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "from sklearn.pipeline import make_pipeline\n"
    "rng = np.random.default_rng(0)\n"
    "X_train = pd.DataFrame(rng.random((60, 3)), columns=['a', 'b', 'c'])\n"
    "y_train = (X_train.a + X_train.b > 1).astype(int)\n"
    "X_test = X_train.head(7)\n"
    "clf = LogisticRegression().fit(X_train, y_train)\n"
    "same_clf = clf\n"
    "unfitted = LogisticRegression()\n"
    "scaler = StandardScaler().fit(X_train)\n"
    "pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train.to_numpy(), y_train)\n"
    "last_step = pipe[-1]\n"
)


def logged_models(project) -> dict[str, list]:
    """run id -> its READY logged models (MLflow's own record), runs oldest first."""
    assert nbtrack.flush(120), "delivery did not catch up"
    client = client_for(project)
    runs = sorted(all_runs(project), key=lambda r: r.info.start_time)
    found = {}
    for run in runs:
        models = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                             filter_string=f"source_run_id = '{run.info.run_id}'")
        found[run.info.run_id] = sorted(models, key=lambda m: m.name)
    return found


def test_run_end_logs_each_fitted_model_once_under_its_name(shell, project):
    import mlflow

    notebooks_own = mlflow.get_tracking_uri()
    shell.run_cell("%load_ext nbtrack")
    shell.run_cell(FIT)
    result = shell.run_cell("%nbtrack end")
    assert result.success
    (models,) = logged_models(project).values()
    assert mlflow.get_tracking_uri() == notebooks_own  # delivered from this process: MLflow as it was
    # clf once (not again as same_clf), pipe whole (not its last step); no unfitted estimator,
    # no scaler (it transforms, it does not predict)
    assert [m.name for m in models] == ["clf", "pipe"]
    assert {str(m.status) for m in models} == {"READY"}
    (run,) = all_runs(project)
    tag = json.loads(run.data.tags["nbtrack.models"])
    assert [(m["name"], m["flavor"]) for m in tag] == [("clf", "sklearn"), ("pipe", "sklearn")]
    assert all(m["size"] > 0 for m in tag)
    mlflow.set_tracking_uri(client_for(project).tracking_uri)
    clf_info = mlflow.models.get_model_info(f"runs:/{run.info.run_id}/clf")
    assert set(clf_info.flavors) == {"python_function", "sklearn"}
    assert clf_info.signature.inputs.input_names() == ["a", "b", "c"]  # fitted on X_train
    assert clf_info.saved_input_example_info is not None
    loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/clf")
    X_test = shell.user_ns["X_test"]
    assert loaded.predict(X_test).tolist() == shell.user_ns["clf"].predict(X_test).tolist()
    pipe = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/pipe")  # fitted on an array
    assert pipe.predict(X_test.to_numpy()).tolist() == shell.user_ns["pipe"].predict(X_test.to_numpy()).tolist()


def test_a_later_run_logs_a_model_only_when_it_changed(shell, project):
    shell.run_cell("%load_ext nbtrack")
    shell.run_cell(FIT)
    shell.run_cell("%nbtrack end")
    shell.run_cell("note = 'evaluating only'")  # a new run that leaves the models as they were
    shell.run_cell("%nbtrack end")
    shell.run_cell("clf = LogisticRegression(C=0.1).fit(X_train, y_train)")  # refitted: a new model
    shell.run_cell("%nbtrack end")
    first, second, third = logged_models(project).values()
    assert [m.name for m in first] == ["clf", "pipe"]
    assert second == []
    assert [m.name for m in third] == ["clf"]


def test_log_models_off_and_the_size_cap(shell, project, capsys):
    shell.run_cell("%load_ext nbtrack")
    shell.run_cell("%nbtrack config log_models=False")
    shell.run_cell(FIT)
    shell.run_cell("%nbtrack end")
    shell.run_cell("%nbtrack config log_models=True max_model_mb=0.001")  # 1 kB: both are larger
    shell.run_cell("clf = LogisticRegression(C=0.5).fit(X_train, y_train)")
    result = shell.run_cell("%nbtrack end")
    assert result.success
    off, capped = logged_models(project).values()
    assert off == [] and capped == []
    warnings = [line for line in capsys.readouterr().err.splitlines() if "max_model_mb" in line]
    # one line per model: the refitted clf, the first one (still held by same_clf), pipe
    assert [line.split()[2] for line in warnings] == ["clf", "same_clf", "pipe"]
    assert all("kB" not in line and "over max_model_mb=0.001: not logged" in line for line in warnings)


def test_log_models_from_pyproject_and_the_environment(shell, project, monkeypatch):
    (project / "pyproject.toml").write_text("[tool.nbtrack]\nlog_models = false\nmax_model_mb = 50\n")
    shell.run_cell("%load_ext nbtrack")
    config = session_of(shell).config
    assert config.log_models is False and config.max_model_mb == 50
    shell.run_cell("%unload_ext nbtrack")
    monkeypatch.setenv("NBTRACK_LOG_MODELS", "true")
    shell.run_cell("%load_ext nbtrack")
    assert session_of(shell).config.log_models is True  # the environment wins over pyproject


def test_log_model_logs_now_and_bad_calls_only_warn(shell, project, capsys):
    shell.run_cell("%load_ext nbtrack")
    shell.run_cell(FIT)
    calls = shell.run_cell(
        "import nbtrack\n"
        "nbtrack.log_model(clf, name='best')\n"
        "nbtrack.log_model(unfitted)\n"
        "nbtrack.log_model(42)\n"
        "nbtrack.log_model(pipe, name='no/slash')\n"
        "nbtrack.log_model(pipe, name='best')\n"
    )
    assert calls.success  # capture never raises into a cell
    shell.run_cell("%nbtrack end")
    (models,) = logged_models(project).values()
    assert [m.name for m in models] == ["best", "pipe"]  # clf was logged as best: not again
    err = capsys.readouterr().err
    assert "log_model: this LogisticRegression is not fitted yet" in err
    assert "log_model: a int is not a model nbtrack can log" in err
    assert "log_model: 'no/slash' cannot name a model" in err
    assert "log_model: this run already has a model named 'best'" in err


def test_a_torch_network_is_logged_whole_and_loads_back(shell, project):
    pytest.importorskip("torch")
    import mlflow
    import torch

    shell.run_cell("%load_ext nbtrack")
    shell.run_cell(
        "import torch\n"
        "torch.manual_seed(0)\n"
        "class Net(torch.nn.Module):  # defined in the notebook: travels by value\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.body = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))\n"
        "    def forward(self, x):\n"
        "        return self.body(x)\n"
        "net = Net()\n"
        "head = net.body[2]\n"
        "loss_fn = torch.nn.MSELoss()\n"
    )
    shell.run_cell("%nbtrack end")
    (models,) = logged_models(project).values()
    assert [m.name for m in models] == ["net"]  # not its layer, not a loss without weights
    mlflow.set_tracking_uri(client_for(project).tracking_uri)
    loaded = mlflow.pytorch.load_model(f"runs:/{models[0].source_run_id}/net")
    x = torch.rand(5, 3)
    assert torch.allclose(loaded(x), shell.user_ns["net"](x))


def test_a_lightgbm_model_is_logged_and_predicts_the_same(shell, project):
    pytest.importorskip("lightgbm")
    import mlflow

    shell.run_cell("%load_ext nbtrack")
    shell.run_cell(FIT + "from lightgbm import LGBMClassifier\n"
                   "boosted = LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1).fit(X_train, y_train)")
    shell.run_cell("%nbtrack end")
    (models,) = logged_models(project).values()
    assert [m.name for m in models] == ["boosted", "clf", "pipe"]
    mlflow.set_tracking_uri(client_for(project).tracking_uri)
    uri = f"runs:/{models[0].source_run_id}/boosted"
    assert "lightgbm" in mlflow.models.get_model_info(uri).flavors
    X_test = shell.user_ns["X_test"]
    assert (mlflow.lightgbm.load_model(uri).predict(X_test).tolist()
            == shell.user_ns["boosted"].predict(X_test).tolist())


def test_a_keras_model_is_logged_whole_and_predicts_the_same(shell, project, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # no TensorFlow here: Keras 3 on PyTorch
    keras = pytest.importorskip("keras")
    import mlflow
    import numpy as np

    shell.run_cell("%load_ext nbtrack")
    shell.run_cell(
        "import keras, numpy as np\n"
        "net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation='relu'), keras.layers.Dense(1)])\n"
        "net.compile(optimizer='sgd', loss='mse')\n"
        "net.fit(np.random.default_rng(0).random((16, 3)), np.zeros(16), epochs=1, verbose=0)\n"
        "first_layer = net.layers[0]\n"
        "untrained = keras.Sequential([keras.layers.Dense(1)])  # never built: no weights\n"
    )
    shell.run_cell("%nbtrack end")
    (models,) = logged_models(project).values()
    assert [m.name for m in models] == ["net"]  # not its layer, not a model without weights
    mlflow.set_tracking_uri(client_for(project).tracking_uri)
    uri = f"runs:/{models[0].source_run_id}/net"
    assert "keras" in mlflow.models.get_model_info(uri).flavors
    x = np.random.default_rng(1).random((4, 3)).astype("float32")
    loaded = mlflow.keras.load_model(uri)
    assert np.allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(shell.user_ns["net"](x)))
