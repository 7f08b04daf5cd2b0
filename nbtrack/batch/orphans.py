"""Journals of a sweep's kernels whose runs were never created: removed when the sweep stops.

A local sweep starts its kernels before their MLflow runs exist (each kernel's
delivery waits for its run id in a file). When the sweep stops before writing
that file (the store failed, the user pressed Ctrl-C early), such a kernel's
journal describes a run that will never exist: left alone, delivery would
wait for the file, then make an orphan run of it, KILLED and empty. Those
journals (and their blobs and delivery state) are removed instead, also from
``done/``, where delivery archives the journal of a killed kernel that had no run,
and so are the session events delivery already put in the lake's bronze table.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from nbtrack.journal import list_journals, read_events
from nbtrack.project import Project

log = logging.getLogger(__name__)


#: The project's delivery process may be delivering one of those journals as they go (it
#: read it a moment before): a second look after this long removes what it wrote meanwhile.
SETTLE_S = 1.0


def forget_runless_kernels(project: Project, *, since: float, id_files: Iterable[Path],
                           killed: Iterable[int]) -> list[str]:
    """Remove what this attempt's kernels without a run left (journal, lake events); returns
    their sessions.

    A kernel's journal goes when its ``run_start`` waits on one of ``id_files`` that was
    never written, or when the kernel was killed (``killed`` pids) before any ``run_start``.
    Only journals begun on this host since ``since`` (unix time) are looked at.
    """
    sessions = _runless_sessions(project.journal_dir, since, {str(p) for p in id_files}, set(killed))
    for look in range(2 if sessions else 0):
        if look:
            time.sleep(SETTLE_S)
        for folder in (project.journal_dir, project.journal_dir / "done"):
            for session in sessions:
                for path in folder.glob(f"{session}.*"):
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
        _forget_in_lake(project, sessions)
    return sessions


def _runless_sessions(journal_dir: Path, since: float, promised: set[str],
                      pids: set[int]) -> list[str]:
    host = socket.gethostname()
    found = []
    for journal in [*list_journals(journal_dir), *list_journals(journal_dir / "done")]:
        try:
            if journal.path.stat().st_mtime < since:
                continue
        except OSError:
            continue
        header = journal.header() or {}
        if header.get("host") != host or float(header.get("t") or 0) < since:
            continue
        start = next((event for event, _ in read_events(journal.path)
                      if event.get("type") == "run_start"), None)
        if start is None:
            runless = header.get("pid") in pids
        else:
            waits_on = start.get("mlflow_run_id_file")
            runless = waits_on in promised and not Path(waits_on).exists()
        if runless:
            found.append(journal.session)
    return found


def _forget_in_lake(project: Project, sessions: list[str]) -> None:
    """Best effort: if the lake cannot be written, its bronze rows of these sessions stay
    (the log says why); the journals are gone, so no run is ever made of them."""
    from nbtrack.store import resolve

    ref = resolve(project=project)
    config = ref.config
    if config is not None and (not config.lake or config.spark_schema):
        return
    try:
        from nbtrack.lake.maintenance import forget_sessions

        forget_sessions(ref.lake_uri, sessions)
    except Exception as exc:  # noqa: BLE001 - never hide why the sweep stopped
        log.info("could not remove %d stray session(s) from the lake: %s", len(sessions), exc)
