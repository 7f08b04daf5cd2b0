"""The per-project delivery process: ``python -m nbtrack.delivery.daemon PROJECT_DIR``.

Started on demand by the first kernel that needs it, detached in its own
session so a kernel killed by papermill or by the user leaves nothing
undelivered. A lock file keeps it single-instance per project; it exits once
no kernel of the project is alive and nothing has moved for a while, unless it
still holds undelivered events (a store that is down): then it keeps retrying,
with backoff, for ``delivery_retry_hours`` after its last progress.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from nbtrack import env
from nbtrack.project import Project
from nbtrack.store import quiet_mlflow_env

log = logging.getLogger(__name__)

POLL_BUSY = 0.1
POLL_IDLE = 0.5


def lock_path(project: Project) -> Path:
    return project.state_dir / "delivery.lock"


def pid_path(project: Project) -> Path:
    return project.state_dir / "delivery.pid"


ALREADY_RUNNING = 1


def serve(project: Project, *, idle_exit: float, give_up: float = float("inf"), once: bool = False) -> int:
    """Deliver until idle (or one full pass with ``once``); returns 0, or ``ALREADY_RUNNING``.

    With undelivered events left it does not idle out: it retries until ``give_up``
    seconds have passed without progress, and then says so in the journals' status.
    """
    from filelock import FileLock, Timeout

    from nbtrack.delivery.deliverer import Deliverer

    project.ensure()
    lock = FileLock(str(lock_path(project)))
    try:
        lock.acquire(timeout=0 if not once else 10)
    except Timeout:
        return ALREADY_RUNNING
    try:
        pid_path(project).write_text(str(os.getpid()))
        deliverer = Deliverer(project)
        deliverer.watch_kernels()  # system samples start now, not once the store is open
        _warm_store(project)
        last_active = time.monotonic()  # events moved, or a kernel was alive
        try:
            while True:
                moved = deliverer.run_once()
                if once:
                    while moved:
                        moved = deliverer.run_once()
                    return 0
                now = time.monotonic()
                live = True if moved else deliverer.live_sessions() > 0
                if live:
                    last_active = now
                elif now - last_active > idle_exit:
                    backlog = deliverer.backlog()
                    if not backlog:
                        return 0
                    if now - last_active > give_up:
                        deliverer.give_up()
                        log.warning("giving up after %.1f h without progress: %d journal(s) keep their "
                                    "events for the next kernel or `nbtrack recover`",
                                    give_up / 3600, len(backlog))
                        return 0
                # A live kernel may append at any moment: look often (a pass costs a few stat calls).
                time.sleep(POLL_BUSY if live else POLL_IDLE)
        finally:
            deliverer.close()
    finally:
        try:
            pid_path(project).unlink()
        except OSError:
            pass
        lock.release()


def _warm_store(project: Project) -> None:
    """Open (and on first use create) the project's store now, while the kernel's first cells
    run, so a run's end is not delayed by MLflow's schema creation."""
    from nbtrack.store import open_client, resolve

    try:
        open_client(resolve(project=project).tracking_uri)
    except Exception as exc:  # noqa: BLE001 - delivery reports store problems per journal
        log.warning("store not ready yet: %s", exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nbtrack-delivery", description=__doc__)
    parser.add_argument("project", type=Path)
    parser.add_argument("--idle-exit", type=float, default=float(env.DAEMON_IDLE.get("30") or 30))
    args = parser.parse_args(argv)
    quiet_mlflow_env()  # before MLflow is imported here
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    from nbtrack.config import project_config

    project = Project(args.project.resolve())
    give_up = project_config(project.root).delivery_retry_hours * 3600
    serve(project, idle_exit=args.idle_exit, give_up=give_up)
    return 0  # also when another instance delivers: exit 1 means this one failed


if __name__ == "__main__":
    sys.exit(main())
