"""The events that flow from capture through the journal into every sink.

An event is a flat JSON object, one line in a session's journal. Every event
has the envelope fields::

    id       "<session>-<seq>"   unique, stable: sinks use it for idempotency
    seq      int                 1, 2, 3 ... within the session's journal
    session  str                 the kernel session that wrote it
    t        float               unix time the event was captured
    type     one of TYPES below
    run      str                 nbtrack's run key (absent on session events)

The run key is nbtrack's own id of a run; the MLflow sink maps it to an MLflow
run id (tag ``nbtrack.run_key``) and records the mapping for the other sinks.
Payload fields per type are listed in ``TYPES``; values are JSON, floats may be
NaN or +/-Infinity (Python's json module round-trips them).
"""

from __future__ import annotations

from typing import Any

Event = dict[str, Any]

#: type -> payload fields (documentation and a check for tests; not enforced at runtime).
TYPES: dict[str, tuple[str, ...]] = {
    # A kernel session began writing this journal.
    # tracking_uri: the store the session's runs go to (a run that died before its run_start).
    "session_start": ("pid", "pid_started", "host", "python", "executable", "cwd", "version", "delivery",
                      "tracking_uri"),
    # A run began. mlflow_run_id set => log into that existing run, which a sweep or re-run
    # created for it (never a run of the notebook's own MLflow); mlflow_run_id_file => the id
    # will appear in that file (a sweep creates runs while its kernels start). notebook is an
    # absolute path or None.
    "run_start": (
        "experiment", "notebook", "project", "tracking_uri", "name", "mlflow_run_id",
        "parent_run_id", "tags", "origin", "papermill_input", "papermill_output",
        "mlflow_run_id_file",
    ),
    # Parameters of the run: key -> string value (as MLflow stores it), and the
    # same values as JSON (``values``) for engines that want types.
    "params": ("params", "values", "source", "cell_id"),
    # One metric point.
    "metric": ("key", "value", "step", "cell_id", "exec_count"),
    # Tags to set (or overwrite) on the run (nbtrack.user_runs links the notebook's own MLflow runs).
    "tags": ("tags",),
    # A file to log as an artifact: ``file`` is relative to the journal folder,
    # ``path`` is the artifact path inside the run (e.g. figures/3-abc-0.png).
    "artifact": ("path", "file", "kind", "mime", "cell_id", "exec_count"),
    # One cell execution.
    # cpu_s: the kernel's CPU time in the cell; peak_memory_mb: its resident memory peak (Linux).
    "cell": (
        "exec_count", "cell_id", "source", "source_sha", "start", "duration_s", "status",
        "error_name", "error_value", "outputs", "metrics", "index", "cpu_s", "peak_memory_mb",
    ),
    # A model to log into the run: ``file`` is its snapshot (nbtrack.journal.frames: a protocol-5
    # pickle of (model, input example or None) and its out-of-band buffers), written by a thread
    # just after this event (``file``.failed holds why it could not be). flavor: sklearn |
    # xgboost | lightgbm | pytorch | keras; size: bytes pickled; source: auto | api.
    "model": ("name", "flavor", "file", "size", "model_class", "example", "source"),
    # A Delta (or other) table read by the run.
    "input": ("table_uri", "version", "schema_hash", "rows", "profile"),
    # A capture problem the user was warned about.
    "warning": ("message",),
    # The run ended. status: FINISHED | FAILED | KILLED. The delivery process logs
    # the notebook snapshot(s), environment and git state then.
    "run_end": ("status", "notebook", "papermill_output", "out_of_order"),
    # The kernel session ended cleanly (nothing more will be appended).
    "session_end": (),
}

TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")


def event_id(session: str, seq: int) -> str:
    return f"{session}-{seq}"
