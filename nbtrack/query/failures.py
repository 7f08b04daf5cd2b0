"""Why a run failed, from what it recorded: the error, the cell that raised it, the output notebook.

A FAILED or KILLED run explains itself with

``{"name": "ValueError", "value": "lr too large: 2", "message": "ValueError: lr too large: 2",
"cell": {"cell_id", "index", "number", "exec_count", "source"} | None,
"output": "notebook/papermill_output/4.ipynb" | None, "output_path": str | None,
"traceback": str | None}``

The error and its cell come from the run's cell records (``nbtrack/cells.json``: the last
execution that raised); a sweep's own account of the failure (tag ``nbtrack.sweep.error``)
stands in when no cell raised (a timeout, a dead kernel). ``number`` is the cell's 1-based
position in the notebook, as JupyterLab's status bar counts cells. ``output`` is the run's copy
of papermill's output notebook (an artifact), ``output_path`` where papermill wrote it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack import tags
from nbtrack.query.artifacts import local_artifact_dir, read_cells

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from nbtrack.query.store import StoreRef

FAILED_STATUSES = ("FAILED", "KILLED")
SWEEP_ERROR = "nbtrack.sweep.error"  # nbtrack.batch.store.SWEEP_ERROR (the batch layer sits above)
OUTPUT_DIR = "notebook/papermill_output"
#: Traceback lines kept (the end of it, where the error is).
TRACEBACK_LINES = 40
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cell_error(records: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The last cell execution that raised, from a run's cell records; None when none did."""
    failed = [r for r in records if r.get("status") == "error"]
    if not failed:
        return None
    last = failed[-1]
    index = last.get("index") if isinstance(last.get("index"), int) else None
    return {
        "name": str(last.get("error_name") or "Error"),
        "value": str(last.get("error_value") or ""),
        "cell": {
            "cell_id": last.get("cell_id"),
            "index": index,
            "number": index + 1 if index is not None else None,
            "exec_count": last.get("exec_count") if isinstance(last.get("exec_count"), int) else None,
            "source": str(last.get("source") or ""),
        },
    }


def describe_failure(
    status: str,
    records: Iterable[Mapping[str, Any]],
    run_tags: Mapping[str, str],
    output: str | None = None,
) -> dict[str, Any] | None:
    """A failed run's explanation (see the module docstring); None for a run that did not fail."""
    if status not in FAILED_STATUSES:
        return None
    found = cell_error(records)
    if found is None:
        name, _, value = (run_tags.get(SWEEP_ERROR) or "").partition(": ")
        if not value:
            name, value = ("Killed", "the kernel died or was stopped") if status == "KILLED" else (
                "Failed", name or "the notebook did not finish")
        found = {"name": name, "value": value, "cell": None}
    return {
        **found,
        "message": f"{found['name']}: {found['value']}" if found["value"] else found["name"],
        "output": output,
        "output_path": run_tags.get(tags.PAPERMILL_OUTPUT) or None,
        "traceback": None,
    }


def run_failure(client: MlflowClient, run: Run, *, traceback: bool = True) -> dict[str, Any] | None:
    """Why ``run`` failed, with the traceback from its output notebook; None unless it failed."""
    if run.info.status not in FAILED_STATUSES:
        return None
    output = _output_artifact(client, run)
    failure = describe_failure(run.info.status, read_cells(client, run), run.data.tags, output)
    if failure is not None and traceback and output:
        failure["traceback"] = output_traceback(_artifact_text(client, run, output))
    return failure


def failures(ref: StoreRef, rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{run_id: failure}`` for the failed runs among list rows, without tracebacks.

    Reads only local files and one store query for all of them, so a run list stays fast.
    """
    wanted = [r["run_id"] for r in rows if r.get("status") in FAILED_STATUSES]
    if not wanted:
        return {}
    client = ref.client()
    found: dict[str, dict[str, Any]] = {}
    for run_id in wanted:
        try:
            run = client.get_run(run_id)
        except Exception:  # a run deleted since it was listed: nothing to explain
            continue
        failure = run_failure(client, run, traceback=False)
        if failure is not None:
            found[run_id] = failure
    return found


def output_traceback(text: str | None) -> str | None:
    """The traceback of the error output in a notebook's JSON text (colours removed), if any."""
    if not text:
        return None
    try:
        notebook = json.loads(text)
    except ValueError:
        return None
    for cell in reversed(notebook.get("cells") or []):
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                lines = _ANSI.sub("", "\n".join(output.get("traceback") or [])).splitlines()
                return "\n".join(lines[-TRACEBACK_LINES:])
    return None


def _output_artifact(client: MlflowClient, run: Run) -> str | None:
    local = local_artifact_dir(run.info.artifact_uri)
    if local is not None:
        folder = local / OUTPUT_DIR
        names = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        return f"{OUTPUT_DIR}/{names[0]}" if names else None
    try:
        listed = client.list_artifacts(run.info.run_id, OUTPUT_DIR)
    except Exception:  # an artifact store that cannot be listed
        return None
    names = sorted(item.path for item in listed if item.path.endswith(".ipynb"))
    return names[0] if names else None


def _artifact_text(client: MlflowClient, run: Run, path: str) -> str | None:
    local = local_artifact_dir(run.info.artifact_uri)
    try:
        if local is not None:
            return (local / path).read_text(encoding="utf-8")
        import tempfile

        with tempfile.TemporaryDirectory(prefix="nbtrack-output-") as tmp:
            return Path(client.download_artifacts(run.info.run_id, path, tmp)).read_text(encoding="utf-8")
    except Exception:  # unreadable: the failure still has its error and cell
        return None
