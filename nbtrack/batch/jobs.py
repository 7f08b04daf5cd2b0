"""One notebook execution (a ``Job``) and what became of it (an ``Outcome``).

Both cross process boundaries (to worker processes, to Spark tasks) as one
line of JSON each, so they hold only plain values. ``kernel_env`` is what a
job's kernel is told about its run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from nbtrack import env as env_vars
from nbtrack.batch.params import check_name

FINISHED = "FINISHED"
FAILED = "FAILED"
KILLED = "KILLED"


@dataclass
class Job:
    """Execute ``notebook`` with ``params`` into ``output``, the kernel seeing ``env``."""

    index: int
    notebook: str
    output: str
    params: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    kernel_name: str | None = None
    load_extension: bool = True  # load nbtrack at kernel start (no %load_ext in the notebook)
    timeout: float | None = None  # seconds for the whole execution

    def __post_init__(self) -> None:
        for name in self.params:  # papermill writes names as code: every execution checks them
            check_name(name)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


@dataclass
class Outcome:
    """How an execution ended, as papermill saw it (the kernel's own status is in MLflow)."""

    index: int
    status: str  # FINISHED | FAILED | KILLED
    error: str | None = None  # "ValueError: boom", "timed out after 30 s", "kernel died"
    error_cell: int | None = None  # execution count ("In [n]") of the failing cell
    duration_s: float = 0.0
    output: str | None = None
    #: False when the kernel was killed or died: it cannot report its own final status.
    kernel_ended: bool = True

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def kernel_env(*, notebook: str, output: str, run_id: str | None = None,
               run_id_file: str | None = None, tracking_uri: str, project_root: str,
               parent_run_id: str | None = None, sweep_id: str | None = None,
               tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a kernel reads to know its run (see nbtrack.env) and to log into our store.

    ``run_id``, or ``run_id_file``: the run does not exist yet; its id will be written there.
    """
    variables = {
        env_vars.NOTEBOOK.name: notebook,
        env_vars.PAPERMILL_OUTPUT.name: output,
        "NBTRACK_TRACKING_URI": tracking_uri,
        "NBTRACK_PROJECT_DIR": project_root,
    }
    if run_id:
        variables[env_vars.RUN_ID.name] = run_id
    elif run_id_file:
        variables[env_vars.RUN_ID_FILE.name] = run_id_file
    if parent_run_id:
        variables[env_vars.PARENT_RUN_ID.name] = parent_run_id
    if sweep_id:
        variables[env_vars.SWEEP_ID.name] = sweep_id
    if tags:
        variables[env_vars.RUN_TAGS.name] = json.dumps(dict(tags))
    return variables
