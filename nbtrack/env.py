"""Every environment variable nbtrack reads, declared once with its type and meaning.

Configuration options (``NbtrackConfig`` traits) are also read from
``NBTRACK_<OPTION>`` (upper-cased); those are handled generically in
:mod:`nbtrack.config`. The variables below are not options: they tell a kernel
*which run* it belongs to, and are set by nbtrack's own re-runs and sweeps.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvVar:
    name: str
    help: str

    def get(self, default: str | None = None) -> str | None:
        value = os.environ.get(self.name)
        return value if value not in (None, "") else default


NOTEBOOK = EnvVar("NBTRACK_NOTEBOOK", "Path of the notebook this kernel executes (set by sweeps/re-runs).")
PAPERMILL_OUTPUT = EnvVar("NBTRACK_PAPERMILL_OUTPUT", "Path of papermill's output notebook, logged at run end.")
RUN_ID = EnvVar("NBTRACK_RUN_ID", "An existing MLflow run id the kernel's first run logs into.")
RUN_ID_FILE = EnvVar(
    "NBTRACK_RUN_ID_FILE",
    "A file that will hold the MLflow run id of the kernel's first run; a sweep writes it while the "
    "kernel starts, and the delivery process (not the kernel) waits for it.",
)
PARENT_RUN_ID = EnvVar("NBTRACK_PARENT_RUN_ID", "MLflow run id of the parent (sweep) run.")
SWEEP_ID = EnvVar("NBTRACK_SWEEP_ID", "Id of the sweep this execution belongs to (tag nbtrack.sweep_id).")
RUN_TAGS = EnvVar("NBTRACK_RUN_TAGS", "JSON object of extra tags for the kernel's first run.")
DAEMON_IDLE = EnvVar("NBTRACK_DAEMON_IDLE", "Seconds the delivery process waits idle before exiting.")
MLFLOW_TRACKING_URI = EnvVar("MLFLOW_TRACKING_URI", "MLflow's own variable: overrides the embedded store.")
JPY_SESSION_NAME = EnvVar("JPY_SESSION_NAME", "Jupyter server's name of the kernel's session (the notebook path).")
DATABRICKS_RUNTIME = EnvVar(
    "DATABRICKS_RUNTIME_VERSION", "Set on Databricks: delivery runs in a kernel thread (the notebook's credentials)."
)
INPUT_VERSIONS = EnvVar(
    "NBTRACK_INPUT_VERSIONS",
    "JSON {table_uri: version}: Delta versions read_delta/read_table pin (set by re-runs).",
)


def run_tags() -> dict[str, str]:
    """Extra tags from ``NBTRACK_RUN_TAGS``; a malformed value is ignored (never crash a kernel)."""
    raw = RUN_TAGS.get()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
