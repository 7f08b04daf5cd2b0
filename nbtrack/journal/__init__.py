"""The append-only journal: capture writes it, delivery reads it.

One JSON-lines file per kernel session (``<session>.jsonl``) plus a folder of
blobs (figures and other files, ``<session>.blobs/``). A line is only complete
once its newline is written, so a reader never sees half an event. Beside each
journal, :mod:`nbtrack.journal.state` keeps how far delivery got (cursors, the
run index, the status the kernel shows).
"""

from nbtrack.journal.reader import (
    JournalFile,
    RunStarts,
    find_events,
    last_event,
    list_journals,
    read_events,
    torn_tail,
)
from nbtrack.journal.writer import JournalWriter

__all__ = ["JournalFile", "JournalWriter", "RunStarts", "find_events", "last_event", "list_journals", "read_events",
           "torn_tail"]
