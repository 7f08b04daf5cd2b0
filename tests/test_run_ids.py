"""Short run ids, as every table shows them (8 characters), work wherever a run id does; an
ambiguous prefix lists its candidates, a malformed or unknown one says what to do."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from query_fixtures import StoreFixture, module_store

import nbtrack
from nbtrack.cli.main import main
from nbtrack.errors import NotFound, UsageProblem
from nbtrack.query.lookup import resolve_run_id
from nbtrack.query.store import resolve_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreFixture]:
    yield from module_store(tmp_path_factory)


def twins(root: Path) -> tuple[str, list[str]]:
    """Runs in ``root``'s store until two ids share a first character (17 at most); that
    character and the ids starting with it."""
    from nbtrack.project import Project
    from nbtrack.store import get_or_create_experiment, open_client

    project = Project(root)
    client = open_client(project.default_tracking_uri)
    experiment = get_or_create_experiment(client, "twins.ipynb", project)
    seen: dict[str, list[str]] = {}
    while True:
        run_id = client.create_run(experiment).info.run_id
        seen.setdefault(run_id[0], []).append(run_id)
        if len(seen[run_id[0]]) == 2:
            return run_id[0], seen[run_id[0]]


def test_a_prefix_resolves_to_the_one_run(store: StoreFixture) -> None:
    ref = resolve_store(project=store.root)
    run_id = store.ids["a"]
    assert resolve_run_id(ref, run_id[:8]) == run_id
    assert resolve_run_id(ref, run_id[:8].upper()) == run_id
    assert resolve_run_id(ref, run_id) == run_id


def test_compare_takes_short_ids(store: StoreFixture) -> None:
    short = [store.ids["a"][:8], store.ids["b"][:8]]
    cmp = nbtrack.compare(*short, project=store.root)
    assert cmp.run_ids == [store.ids["a"], store.ids["b"]]
    # the same run twice, once short and once in full, is compared once
    assert nbtrack.compare(store.ids["a"], short[0], project=store.root).run_ids == [store.ids["a"]]


def test_unknown_and_malformed_ids(store: StoreFixture) -> None:
    with pytest.raises(NotFound, match="no run 0000ffff in sqlite:///.*nbtrack runs NOTEBOOK"):
        nbtrack.compare(store.ids["a"], "0000ffff", project=store.root)
    with pytest.raises(UsageProblem, match="'run-1' is not a run id: run ids are hexadecimal"):
        nbtrack.compare("run-1", project=store.root)


def test_an_ambiguous_prefix_lists_the_candidates(project: Path) -> None:
    prefix, ids = twins(project)
    with pytest.raises(UsageProblem, match=f"run id {prefix} is ambiguous") as error:
        nbtrack.compare(prefix, project=project)
    message = str(error.value)
    assert all(run_id in message for run_id in ids) and "give more characters" in message
    assert "\n" not in message
    assert nbtrack.compare(ids[0][:8], ids[1][:8], project=project).run_ids == ids


def test_cli_compare_takes_short_ids(store: StoreFixture, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(store.root)
    assert main(["compare", store.ids["a"][:8], store.ids["c"][:8]]) == 0
    out = capsys.readouterr().out
    assert store.ids["a"] in out and store.ids["c"] in out


def test_cli_ambiguous_prefix_is_one_line_exit_2(project: Path) -> None:
    prefix, ids = twins(project)
    done = subprocess.run([sys.executable, "-m", "nbtrack", "compare", prefix], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(f"nbtrack compare: run id {prefix} is ambiguous: ")
    assert all(run_id in done.stderr for run_id in ids)
    assert len(done.stderr.strip().splitlines()) == 1


def test_cli_and_magic_agree_on_how_many_ids(shell, project: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare"]) == 2
    cli = capsys.readouterr().err.strip()
    assert cli == "nbtrack compare: give at least one run id to compare (see `nbtrack runs NOTEBOOK`)"
    shell.run_line_magic("load_ext", "nbtrack")
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as error:
        shell.run_line_magic("nbtrack", "compare")
    assert str(error.value) == "%" + cli


def test_magic_compare_takes_short_ids(shell, project: Path) -> None:
    _, ids = twins(project)
    shell.run_line_magic("load_ext", "nbtrack")
    shown = shell.run_line_magic("nbtrack", f"compare {ids[0][:8]} {ids[1][:8]}")
    assert shown.run_ids == ids
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="no run 0000ffff"):
        shell.run_line_magic("nbtrack", "compare 0000ffff")


def test_a_store_that_is_not_sqlite_is_asked_through_mlflow(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's file store stands in for a tracking server: no SQLite file to read directly."""
    from mlflow.tracking import MlflowClient

    from nbtrack.project import Project
    from nbtrack.store import StoreRef

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(uri)
    experiment = client.create_experiment("nb.ipynb")
    seen: dict[str, str] = {}
    while True:  # two runs sharing a first character (17 runs at most)
        run_id = client.create_run(experiment).info.run_id
        if run_id[0] in seen:
            break
        seen[run_id[0]] = run_id
    made = [*seen.values(), run_id]
    ref = StoreRef(Project(tmp_path), uri)
    assert resolve_run_id(ref, run_id[:8]) == run_id
    assert resolve_run_id(ref, run_id) == run_id
    with pytest.raises(UsageProblem, match=f"run id {run_id[0]} is ambiguous"):
        resolve_run_id(ref, run_id[0])
    unknown = next(p for p in (f"{i:08x}" for i in range(99)) if not any(r.startswith(p) for r in made))
    with pytest.raises(NotFound, match=f"no run {unknown} in file://"):
        resolve_run_id(ref, unknown)
