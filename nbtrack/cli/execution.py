"""What ``nbtrack sweep`` and ``nbtrack rerun`` share: kernels stop cleanly when the job is cancelled."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def prepare(command: str) -> tuple[Console, Callable[[str], None]]:
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
