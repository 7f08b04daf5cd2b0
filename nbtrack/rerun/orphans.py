"""Journals of a sweep's kernels whose runs were never created: removed when the sweep stops.

A local sweep starts its kernels before their MLflow runs exist (each kernel's
delivery waits for its run id in a file). When the sweep stops before writing
that file (the store failed, the user pressed Ctrl-C early), such a kernel's
journal describes a run that will never exist: left alone, delivery would
wait for the file, then make an orphan run of it, KILLED and empty. Those
journals (and their blobs and delivery state) are removed instead, also from
``done/``, where delivery archives the journal of a killed kernel that had no run.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

from nbtrack.journal import list_journals, read_events


def forget_runless_kernels(journal_dir: Path, *, since: float, id_files: Iterable[Path],
                           killed: Iterable[int]) -> list[str]:
    """Remove the journals of this attempt's kernels that have no run; returns their sessions.

    A kernel's journal goes when its ``run_start`` waits on one of ``id_files`` that was
    never written, or when the kernel was killed (``killed`` pids) before any ``run_start``.
    Only journals begun on this host since ``since`` (unix time) are looked at.
    """
    promised = {str(path) for path in id_files}
    pids = set(killed)
    host = socket.gethostname()
    removed = []
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
            for path in journal.folder.glob(f"{journal.session}.*"):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            removed.append(journal.session)
    return removed
