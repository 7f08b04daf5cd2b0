"""What ``nbtrack sweep`` and ``nbtrack rerun`` share: kernels stop cleanly when the job is cancelled."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def prepare(command: str) -> tuple[Any, Callable[[str], None]]:
    """A stderr console and a warning printer; SIGTERM (a cancelled CI job) behaves like Ctrl-C,
    so kernels are stopped and unfinished runs marked KILLED."""
    from rich.console import Console

    err = Console(stderr=True)
    signal.signal(signal.SIGTERM, _interrupt)
    # MLflow is imported later and sets its own level: "Creating initial MLflow database..."
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

    def warn(message: str) -> None:
        err.print(f"[yellow]nbtrack {command}: warning:[/] {message}", highlight=False)

    return err, warn
