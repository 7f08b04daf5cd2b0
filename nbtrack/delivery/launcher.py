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
from pathlib import Path
from typing import Any

from nbtrack import env
from nbtrack.journal.state import Status
from nbtrack.project import Project

_RESPAWN_GRACE = 5.0  # seconds a freshly spawned process gets to take its lock
_RESPAWN_MAX = 300.0  # while it keeps failing, respawn at most this rarely


def log_path(project: Project) -> Path:
    return project.state_dir / "delivery.log"


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
    log = open(log_path(project), "ab")  # noqa: SIM115 - handed to the child
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

    def current_problems(self) -> list[str]:
        """Every problem delivery has now, with its retry state (for ``%nbtrack status``)."""
        return self.status.problems()

    def stop(self, timeout: float) -> None:
        pass


class ProcessDelivery(_Handle):
    def __init__(self, project: Project, session: str) -> None:
        super().__init__(project, session)
        self._spawned_at = 0.0
        self._grace = _RESPAWN_GRACE
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.start_problem: str | None = None  # why the last spawned process failed
        if not daemon_alive(project):
            self._spawn()  # OSError here: start_delivery falls back to a thread

    def ensure(self) -> None:
        self._check_spawned()
        if time.monotonic() - self._spawned_at < self._grace:
            return
        if daemon_alive(self.project):
            self.start_problem, self._grace = None, _RESPAWN_GRACE
            return
        try:
            self._spawn()
        except OSError as exc:  # no such interpreter, too many processes...
            self._failed(f"{type(exc).__name__}: {exc}")  # could not even be started

    def _spawn(self) -> None:
        self._spawned_at = time.monotonic()
        try:
            self._log_offset = log_path(self.project).stat().st_size
        except OSError:
            self._log_offset = 0
        self._process = spawn_daemon(self.project)

    def _check_spawned(self) -> None:
        """Did the process this kernel started fail? (Exit 0: idle, or another one delivers.)"""
        if self._process is None or self._process.poll() is None:
            return
        code, self._process = self._process.returncode, None
        if code > 0:
            self._failed(_last_line(log_path(self.project), self._log_offset) or f"exit code {code}")
        else:
            self.start_problem, self._grace = None, _RESPAWN_GRACE

    def _failed(self, reason: str) -> None:
        self.start_problem = (f"the delivery process exited with an error ({reason}); events are kept "
                              f"in the journal and delivered once it runs; see {log_path(self.project)}")
        self._grace = min(self._grace * 2, _RESPAWN_MAX)

    def poke(self) -> list[str]:
        self.ensure()
        new = self.problems()
        if self.start_problem is not None and self.start_problem not in self._shown:
            self._shown.add(self.start_problem)
            new.append(self.start_problem)
        return new

    def current_problems(self) -> list[str]:
        return ([self.start_problem] if self.start_problem else []) + super().current_problems()

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


def _last_line(path: Path, offset: int) -> str:
    """The last non-blank line written to ``path`` after ``offset`` (a traceback's last line says why)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(offset, f.seek(0, os.SEEK_END) - 8192))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def start_delivery(project: Project, session: str, config: Any) -> _Handle:
    if config.delivery == "thread" or env.DATABRICKS_RUNTIME.get():
        return ThreadDelivery(project, session)
    try:
        return ProcessDelivery(project, session)
    except OSError:
        return ThreadDelivery(project, session)
