"""Which notebook a kernel runs: nbconvert, outputs beside their input, ambiguity, bounded work."""

from __future__ import annotations

import builtins
import io
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import all_runs, client_for, finished_runs, session_of, user_metrics, write_notebook

import nbtrack

TRAIN = [
    "%load_ext nbtrack",
    ("lr = 0.1", ["parameters"]),
    "val_acc = lr * 2",
]
JUPYTER = str(Path(sys.executable).parent / "jupyter")


def experiment(root: Path, run) -> str:
    return client_for(root).get_experiment(run.info.experiment_id).name


def outputs_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(str(out.get("text", "")) for cell in nb.cells for out in cell.get("outputs", []))


# -- item 4: nbconvert ------------------------------------------------------------------------------


@pytest.mark.kernel
def test_nbconvert_twice_in_one_folder_tracks_both_runs_in_the_notebooks_experiment(project):
    write_notebook(project / "nb.ipynb", TRAIN)
    commands = [
        [JUPYTER, "nbconvert", "--to", "notebook", "--execute", "nb.ipynb"],
        [JUPYTER, "nbconvert", "--to", "notebook", "--execute", "nb.ipynb"],  # nb.nbconvert.ipynb beside
        [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "nb.ipynb", "--output", "again"],
    ]
    for command in commands:
        subprocess.run(command, cwd=project, check=True, capture_output=True, timeout=120)
    runs = finished_runs(project, 3)
    assert [experiment(project, r) for r in runs] == ["nb.ipynb"] * 3
    assert [r.data.params for r in runs] == [{"lr": "0.1"}] * 3
    assert [user_metrics(r) for r in runs] == [{"val_acc": 0.2}] * 3
    assert [r.info.status for r in runs] == ["FINISHED"] * 3
    assert [r.data.tags["nbtrack.origin"] for r in runs] == ["nbconvert"] * 3  # not "interactive"
    assert "nbtrack:" not in outputs_text(project / "nb.nbconvert.ipynb")  # no warning either


@pytest.mark.kernel
def test_a_notebook_that_raises_under_nbconvert_ends_failed(project):
    write_notebook(project / "fail.ipynb", [*TRAIN, "raise ValueError('boom')", "never = 1"])
    done = subprocess.run([JUPYTER, "nbconvert", "--to", "notebook", "--execute", "fail.ipynb"],
                          cwd=project, capture_output=True, timeout=120)
    assert done.returncode != 0  # nbconvert stops at the error
    (run,) = finished_runs(project)
    assert experiment(project, run) == "fail.ipynb"
    assert run.info.status == "FAILED"
    assert user_metrics(run) == {"val_acc": 0.2}


def papermill_output(path: Path, input_path: Path, cells: list) -> None:
    nb = write_notebook(path, cells)
    nb.metadata["papermill"] = {"input_path": str(input_path), "end_time": "2024-01-01T00:00:00"}
    nbformat.write(nb, path)


def test_source_matching_prefers_the_input_over_output_notebooks(shell, project):
    """Without any other clue, the executed cells are looked up in the folder: the earlier outputs of
    nbconvert and papermill hold the same cells, but they are never the notebook itself."""
    write_notebook(project / "nb.ipynb", TRAIN)
    write_notebook(project / "nb.nbconvert.ipynb", TRAIN)
    papermill_output(project / "nb-out.ipynb", project / "nb.ipynb", TRAIN)
    for source in [c if isinstance(c, str) else c[0] for c in TRAIN]:
        shell.run_cell(source)  # no cell ids, as nbclient sends them
    assert session_of(shell).notebook == (project / "nb.ipynb").resolve()
    assert nbtrack.flush(30)
    (run,) = all_runs(project)
    assert experiment(project, run) == "nb.ipynb"
    assert run.data.params == {"lr": "0.1"}


def test_an_ambiguous_folder_warns_once_naming_the_candidates_and_the_setting(shell, project, capsys):
    write_notebook(project / "a.ipynb", TRAIN)
    write_notebook(project / "b.ipynb", TRAIN)  # a copy: nothing tells which one runs
    for source in [c if isinstance(c, str) else c[0] for c in TRAIN]:
        shell.run_cell(source)
    shell.run_cell("%nbtrack end")
    for _ in range(5):
        shell.run_cell("val_acc = 0.3")
    err = capsys.readouterr().err
    assert err.count("nbtrack:") == 1, err
    line = next(line for line in err.splitlines() if "nbtrack:" in line)
    assert "a.ipynb" in line and "b.ipynb" in line
    assert "%nbtrack config notebook=PATH" in line and "NBTRACK_NOTEBOOK" in line
    assert nbtrack.flush(30)
    assert {experiment(project, r) for r in all_runs(project)} == {"untitled"}


# -- item 6: detection work is bounded, whatever the state -------------------------------------------


def write_decoys(folder: Path, n: int = 20) -> list[Path]:
    """Notebooks beside the kernel's, sharing some cells with it, as a project folder has."""
    paths = []
    for i in range(n):
        path = folder / f"decoy_{i}.ipynb"
        write_notebook(path, ["%load_ext nbtrack", f"data_{i} = {i}", *[f"x = {j}" for j in range(50)]])
        paths.append(path)
    return paths


class ReadCounter:
    """Counts how often files are opened, through every ``open`` Python code uses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, paths: list[Path]) -> None:
        self.watched = {str(p) for p in paths} | {str(p.resolve()) for p in paths}
        self.reads: dict[str, int] = {}
        real = io.open

        def counting_open(file, *args, **kwargs):
            if str(file) in self.watched:
                self.reads[str(file)] = self.reads.get(str(file), 0) + 1
            return real(file, *args, **kwargs)

        monkeypatch.setattr(io, "open", counting_open)
        monkeypatch.setattr(builtins, "open", counting_open)

    def total(self) -> int:
        return sum(self.reads.values())


STATES = {
    "known from the Jupyter session": {"JPY_SESSION_NAME": "nb.ipynb"},
    "unknown": {},
    "Jupyter session name that is not a file": {"JPY_SESSION_NAME": "gone/renamed.ipynb"},
    "told a path that does not exist": {"NBTRACK_NOTEBOOK": "/nowhere/x.ipynb"},
}


@pytest.mark.parametrize("state", list(STATES))
def test_detection_reads_the_folders_notebooks_a_bounded_number_of_times(shell, project, monkeypatch,
                                                                          capsys, state):
    write_notebook(project / "nb.ipynb", ["%load_ext nbtrack", "val_acc = 0.5"])
    decoys = write_decoys(project)
    for name, value in STATES[state].items():
        monkeypatch.setenv(name, value)
    counter = ReadCounter(monkeypatch, decoys)
    shell.run_cell("%load_ext nbtrack")
    for i in range(50):
        shell.run_cell(f"val_acc = {i} / 50")
        if i == 9:
            after_ten = counter.total()
    assert counter.total() == after_ten, "detection kept reading notebooks on later cells"
    assert max(counter.reads.values(), default=0) <= 6, counter.reads
    err = capsys.readouterr().err
    if state == "known from the Jupyter session":
        assert session_of(shell).notebook == (project / "nb.ipynb").resolve()
    else:
        assert err.count("could not tell which notebook") == 1, err
    if state == "told a path that does not exist":
        assert "NBTRACK_NOTEBOOK=/nowhere/x.ipynb does not exist" in err
        # the JupyterLab panel telling a real path later still switches the notebook
        monkeypatch.setenv("NBTRACK_NOTEBOOK", str(project / "nb.ipynb"))
        shell.run_cell("val_acc = 1.0")
        assert session_of(shell).notebook == project / "nb.ipynb"


COUNT_READS = """\
import builtins, io, json
_nbtrack_reads = {}
_real_open = io.open
def _counting_open(file, *args, **kwargs):
    if 'decoy_' in str(file):
        _nbtrack_reads[str(file)] = _nbtrack_reads.get(str(file), 0) + 1
    return _real_open(file, *args, **kwargs)
io.open = builtins.open = _counting_open"""


@pytest.mark.kernel
def test_under_papermill_detection_reads_nothing_per_cell(project):
    cells = [COUNT_READS, "%load_ext nbtrack", *[f"val_acc = {i} / 50" for i in range(50)],
             "import json\njson.dump(_nbtrack_reads, _real_open('reads.json', 'w'))"]
    cells.insert(12, "after_ten = sum(_nbtrack_reads.values())")
    cells.append("assert sum(_nbtrack_reads.values()) == after_ten")
    write_notebook(project / "nb.ipynb", cells)
    write_decoys(project)
    subprocess.run([sys.executable, "-m", "papermill", "nb.ipynb", "out.ipynb"], cwd=project, check=True,
                   capture_output=True, timeout=180)
    reads = json.loads((project / "reads.json").read_text())
    assert max(reads.values(), default=0) <= 6, reads
    (run,) = finished_runs(project)
    assert experiment(project, run) == "nb.ipynb"
