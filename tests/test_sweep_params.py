"""Sweep inputs: -p values typed like papermill's, json: lists, YAML files, grids, random search,
and every bad input stopping with a clear message before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbtrack.batch import grid
from nbtrack.batch.params import (
    inspect_parameters,
    load_params_file,
    parse_assignment,
    parse_assignments,
    parse_overrides,
    parse_value,
)
from nbtrack.batch.plan import notebook_loads_nbtrack
from nbtrack.batch.sweep import sweep
from nbtrack.cli.main import main
from nbtrack.errors import NotFound, UsageProblem

NOTEBOOKS = Path(__file__).parent / "notebooks_for_tests"
GRID_NB = NOTEBOOKS / "sweep_grid.ipynb"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("3", 3), ("-2", -2), ("0.1", 0.1), ("1e-3", 0.001), ("True", True), ("false", False),
     ("None", None), ("adam", "adam"), ("", ""), ("0x10", "0x10"), ("1_000", 1000)],
)
def test_values_are_typed_like_papermill(raw, expected):
    value = parse_value(raw)
    assert value == expected and type(value) is type(expected)


def test_papermill_agrees_on_every_plain_value():
    from papermill.cli import _resolve_type

    for raw in ("3", "0.1", "True", "False", "None", "adam", "1e-3", "nan"):
        ours, theirs = parse_value(raw), _resolve_type(raw)
        assert repr(ours) == repr(theirs), raw


def test_comma_lists_and_json_lists():
    assert parse_assignment("lr=0.1,0.01") == ("lr", [0.1, 0.01])
    assert parse_assignment("opt=adam,sgd") == ("opt", ["adam", "sgd"])
    assert parse_assignment('tag=json:["a,b", "c"]') == ("tag", ["a,b", "c"])
    assert parse_assignment("layers=json:[[64, 64], [128]]") == ("layers", [[64, 64], [128]])
    assert parse_assignment('cfg=json:{"a": 1}') == ("cfg", [{"a": 1}])
    assert parse_overrides(["note=a,b", "n=json:[1, 2]"]) == {"note": "a,b", "n": [1, 2]}


@pytest.mark.parametrize(
    ("texts", "message"),
    [(["lr"], "expected name=value"), (["1lr=3"], "not a valid parameter name"),
     (["lr=json:[1,"], "cannot parse JSON"), (["lr=1", "lr=2"], "given twice")],
)
def test_malformed_options_are_usage_errors(texts, message):
    with pytest.raises(UsageProblem, match=message):
        parse_assignments(texts)


def test_grid_varies_the_last_parameter_fastest():
    combos = grid.expand({"x": [1, 2], "y": ["a", "b", "c"]})
    assert combos[:4] == [{"x": 1, "y": "a"}, {"x": 1, "y": "b"}, {"x": 1, "y": "c"},
                          {"x": 2, "y": "a"}]
    assert len(combos) == 6
    assert grid.as_axes({"x": (1, 2), "name": "fixed"}) == {"x": [1, 2], "name": ["fixed"]}


def test_explicit_sets_are_crossed_with_the_grid():
    combos = grid.expand({"seed": [0, 1]}, sets=[{"lr": 0.1}, {"lr": 0.2, "depth": 3}])
    assert combos == [{"lr": 0.1, "seed": 0}, {"lr": 0.1, "seed": 1},
                      {"lr": 0.2, "depth": 3, "seed": 0}, {"lr": 0.2, "depth": 3, "seed": 1}]


def test_random_search_is_distinct_and_seeded():
    combos = grid.expand({"x": list(range(10)), "y": list(range(10))})
    first, capped = grid.sample(combos, 7, seed=3)
    again, _ = grid.sample(combos, 7, seed=3)
    assert first == again and not capped
    assert len({(c["x"], c["y"]) for c in first}) == 7
    everything, capped = grid.sample(combos[:3], 5, seed=0)
    assert everything == combos[:3] and capped
    with pytest.raises(UsageProblem, match="at least 1"):
        grid.sample(combos, 0)


def test_empty_grids_are_refused():
    with pytest.raises(UsageProblem, match="no values"):
        grid.expand({"x": []})
    with pytest.raises(UsageProblem, match="nothing to sweep"):
        grid.expand({})
    with pytest.raises(UsageProblem, match="nothing to sweep"):
        grid.expand({}, sets=[])


def test_yaml_files_hold_axes_or_sets(tmp_path):
    axes = tmp_path / "axes.yaml"
    axes.write_text("lr: [0.1, 0.01]\noptimizer: adam\n")
    loaded = load_params_file(axes)
    assert loaded.axes == {"lr": [0.1, 0.01], "optimizer": ["adam"]} and loaded.sets is None
    sets = tmp_path / "sets.yaml"
    sets.write_text("- {lr: 0.1, depth: 3}\n- {lr: 0.01, depth: 5}\n")
    assert load_params_file(sets).sets == [{"lr": 0.1, "depth": 3}, {"lr": 0.01, "depth": 5}]


@pytest.mark.parametrize(
    ("text", "message"),
    [("lr: [0.1\n", "not valid YAML"), ("just a string\n", "expected a mapping"),
     ("- 3\n", "item 1 is not a mapping"), ("'bad name': [1]\n", "not a valid parameter name")],
)
def test_bad_yaml_files(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(UsageProblem, match=message):
        load_params_file(path)
    with pytest.raises(NotFound):
        load_params_file(tmp_path / "missing.yaml")


def test_parameters_cell_is_read_without_a_kernel():
    declared = inspect_parameters(GRID_NB)
    assert declared.has_cell
    assert declared.defaults == {"x": 1, "y": 1, "fail_x": -1, "fail_y": -1, "marker": "",
                                 "sleep_s": 0.0}
    assert not inspect_parameters(NOTEBOOKS / "no_params.ipynb").has_cell
    assert not notebook_loads_nbtrack(GRID_NB)


# -- bad input through the API and the CLI: clear message, non-zero exit, nothing written --------


def _nothing_written(root: Path) -> bool:
    """No outputs and no runs (the project fixture starts with an empty store)."""
    from mlflow.tracking import MlflowClient

    if (root / ".nbtrack" / "outputs").exists():
        return False
    db = root / ".nbtrack" / "mlflow.db"
    if not db.exists():
        return True
    client = MlflowClient(f"sqlite:///{db}")
    return not [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def test_bad_sweeps_write_nothing(project):
    nb = project / "nb.ipynb"
    nb.write_bytes(GRID_NB.read_bytes())
    cases = [
        (dict(notebook=project / "missing.ipynb", params={"x": [1]}), NotFound, "not found"),
        (dict(notebook=nb, params={"x": []}), UsageProblem, "no values"),
        (dict(notebook=nb, params={}), UsageProblem, "nothing to sweep"),
        (dict(notebook=nb, params={"x": [1]}, workers=0), UsageProblem, "at least 1"),
        (dict(notebook=nb, params={"x": [1]}, timeout=0), UsageProblem, "positive"),
        (dict(notebook=nb, params={"x": [1]}, random=0), UsageProblem, "at least 1"),
        (dict(notebook=nb, params={"x": [object()]}), UsageProblem, "can be injected"),
        (dict(notebook=nb, params={"x": [1]}, backend="dask"), UsageProblem, "unknown backend"),
        (dict(notebook=nb, params={"x": [1]}, file=project / "nope.yaml"), NotFound, "not found"),
        (dict(notebook=None, params={"x": [1]}), UsageProblem, "which notebook"),
    ]
    for kwargs, error, message in cases:
        notebook = kwargs.pop("notebook")
        with pytest.raises(error, match=message):
            sweep(notebook, **kwargs)
        assert _nothing_written(project), kwargs
    bad = project / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(UsageProblem, match="not a readable notebook"):
        sweep(bad, {"x": [1]})
    assert _nothing_written(project)


def test_cli_exit_codes_and_messages(project, capsys):
    nb = project / "nb.ipynb"
    nb.write_bytes(GRID_NB.read_bytes())
    assert main(["sweep", "missing.ipynb", "-p", "x=1"]) == 3
    assert "notebook not found" in capsys.readouterr().err
    assert main(["sweep", str(nb), "-p", "x=1", "-w", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(["sweep", str(nb), "-p", "x"]) == 2
    assert "expected name=value" in capsys.readouterr().err
    assert main(["sweep", str(nb)]) == 2
    assert "nothing to sweep" in capsys.readouterr().err
    assert main(["sweep", "--resume", "nope", "-p", "x=1"]) == 2
    assert "drop -p" in capsys.readouterr().err
    assert main(["sweep", "--resume", "20260101-000000-abcd"]) == 3
    assert "no sweep" in capsys.readouterr().err
    assert _nothing_written(project)


def test_resume_without_a_store_creates_none(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["sweep", "--resume", "20260101-000000-abcd"]) == 3
    assert "no nbtrack store" in capsys.readouterr().err
    assert not (tmp_path / ".nbtrack").exists()


# -- names are code once injected; an empty -p value is an unset variable, not a value ----------

CODE_IN_A_NAME = "lr = 0.5\nimport os; os.system('touch pwned')\nzz"


@pytest.mark.parametrize("name", ["class", "lambda", "not a name", "1lr", "", "lr\nimport os\nzz"])
def test_a_parameter_name_must_be_an_identifier_and_not_a_keyword(name):
    for parse in (lambda: parse_assignment(f"{name}=1"), lambda: parse_overrides([f"{name}=1"])):
        with pytest.raises(UsageProblem, match="not a valid parameter name") as error:
            parse()
        assert "\n" not in str(error.value)


def test_the_python_api_refuses_bad_names_before_anything_is_written(project):
    nb = project / "nb.ipynb"
    nb.write_bytes(GRID_NB.read_bytes())
    for params in ({CODE_IN_A_NAME: [1]}, {"class": [1]}, {"x": [1], "for": 2}):
        with pytest.raises(UsageProblem, match="not a valid parameter name"):
            sweep(nb, params)
        assert _nothing_written(project)
    (project / "p.yaml").write_text("x: [1]\nclass: [2]\n")
    with pytest.raises(UsageProblem, match="'class' is not a valid parameter name .*keyword"):
        sweep(nb, {}, file=project / "p.yaml")
    assert _nothing_written(project) and not (project / "pwned").exists()


def test_every_execution_checks_its_names():
    """Whatever built it (a sweep, a resumed plan, a re-run's stored params), a job whose
    parameter name is not an identifier never reaches papermill."""
    from nbtrack.batch.jobs import Job

    with pytest.raises(UsageProblem, match="not a valid parameter name"):
        Job(index=1, notebook="nb.ipynb", output="out.ipynb", params={CODE_IN_A_NAME: 1})
    with pytest.raises(UsageProblem, match="not a valid parameter name"):
        Job.from_json('{"index": 1, "notebook": "n", "output": "o", "params": {"if": 1}}')


@pytest.mark.parametrize("text", ["x=", "x= ", "x=1,", "x=,2", "x=1,,2"])
def test_an_empty_value_is_refused(text):
    with pytest.raises(UsageProblem, match=r"empty value \(an unset shell variable\?\)") as error:
        parse_assignment(text)
    assert "\n" not in str(error.value)
    if text.count(",") == 0:
        with pytest.raises(UsageProblem, match="empty value"):
            parse_overrides([text])
    assert parse_assignment('x=json:[""]') == ("x", [""])  # an empty string, said explicitly
    assert parse_overrides(['x=json:""']) == {"x": ""}


def test_cli_empty_values_exit_2_and_create_nothing(project, capsys):
    nb = project / "nb.ipynb"
    nb.write_bytes(GRID_NB.read_bytes())
    for argv in (["sweep", str(nb), "-p", "x="], ["sweep", str(nb), "-p", "x=1", "-p", "y=2,"],
                 ["rerun", "0123456789abcdef0123456789abcdef", "-p", "x="],
                 ["demo", "--dir", str(project / "demo"), "-p", "max_depth="]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "empty value (an unset shell variable?)" in err and len(err.splitlines()) == 1
    assert _nothing_written(project) and not (project / "demo").exists()


def test_the_python_api_refuses_an_empty_string_for_a_number(project):
    nb = project / "nb.ipynb"
    nb.write_bytes(GRID_NB.read_bytes())  # its parameters cell: x = 1, marker = ""
    with pytest.raises(UsageProblem, match="parameter x: empty value, but the parameters cell "
                                           "sets x = 1; give a value"):
        sweep(nb, {"x": [1, ""]})
    assert _nothing_written(project)
