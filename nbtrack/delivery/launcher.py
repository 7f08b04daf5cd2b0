"""Starting delivery for a kernel, and the kernel's view of it (poke, wait, stop).

Preferred: the per-project delivery process (no MLflow in the kernel, nothing
lost when the kernel is killed). Fallback, or ``delivery = "thread"``: a
thread in the kernel that delivers this session's journal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

from nbtrack.delivery.state import Status
from nbtrack.project import Project

_RESPAWN_GRACE = 5.0  # seconds a freshly spawned process gets to take its lock


def daemon_alive(project: Project) -> bool:
    from nbtrack.delivery.daemon import pid_path

    try:
        pid = int(pid_path(project).read_text())
    except (OSError, ValueError):
        return False
    try:
        import psutil

        return "nbtrack.delivery.daemon" in " ".join(psutil.Process(pid).cmdline())
    except Exception:  # noqa: BLE001
        return False


def spawn_daemon(project: Project) -> subprocess.Popen[bytes]:
    project.ensure()
    log = open(project.state_dir / "delivery.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "nbtrack.delivery.daemon", str(project.root)],
            cwd=str(project.root), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, close_fds=True,
        )
    finally:
        log.close()


class _Handle:
    """What the session holds: check on delivery, wait for it, stop it."""

    def __init__(self, project: Project, session: str) -> None:
        self.project = project
        self.session = session
        self.status = Status(project.journal_dir, session)
        self._shown: set[str] = set()
        self._status_mtime = 0.0

    def problems(self) -> list[str]:
        """New delivery errors since the last call (each shown once)."""
        try:
            mtime = self.status.path.stat().st_mtime
        except OSError:
            return []
        if mtime == self._status_mtime:
            return []
        self._status_mtime = mtime
        messages = [e["message"] for e in self.status.read().get("errors", {}).values()]
        new = [m for m in messages if m not in self._shown]
        self._shown.update(new)
        return new

    def wait(self, seq: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poke()
            status = self.status.read()
            delivered = status.get("delivered", {})
            if delivered.get("mlflow", 0) >= seq:
                return True
            time.sleep(0.05)
        return False

    def poke(self) -> list[str]:
        return self.problems()

    def stop(self, timeout: float) -> None:
        pass


class ProcessDelivery(_Handle):
    def __init__(self, project: Project, session: str) -> None:
        super().__init__(project, session)
        self._spawned_at = 0.0
        self.ensure()

    def ensure(self) -> None:
        if time.monotonic() - self._spawned_at < _RESPAWN_GRACE or daemon_alive(self.project):
            return
        spawn_daemon(self.project)
        self._spawned_at = time.monotonic()

    def poke(self) -> list[str]:
        self.ensure()
        return self.problems()

    def stop(self, timeout: float) -> None:
        self.ensure()  # make sure someone delivers what this kernel leaves behind


class ThreadDelivery(_Handle):
    """Delivers this session's journal from a daemon thread (Databricks, no subprocesses)."""

    def __init__(self, project: Project, session: str) -> None:
        super().__init__(project, session)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nbtrack-delivery", daemon=True)
        self._deliverer: Any = None
        self._thread.start()

    def _loop(self) -> None:
        from nbtrack.delivery.deliverer import Deliverer

        self._deliverer = Deliverer(self.project, sessions={self.session})
        while not self._stop.is_set():
            moved = self._deliverer.run_once()
            self._stop.wait(0.05 if moved else 0.5)

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._deliverer is not None and not self._thread.is_alive():
            deadline = time.monotonic() + timeout
            while self._deliverer.run_once() and time.monotonic() < deadline:
                pass
            self._deliverer.close()


def start_delivery(project: Project, session: str, config: Any) -> _Handle:
    if config.delivery == "thread" or os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return ThreadDelivery(project, session)
    try:
        return ProcessDelivery(project, session)
    except OSError:
        return ThreadDelivery(project, session)
