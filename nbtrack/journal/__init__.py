"""The append-only journal: capture writes it, delivery reads it.

One JSON-lines file per kernel session (``<session>.jsonl``) plus a folder of
blobs (figures and other files, ``<session>.blobs/``). A line is only complete
once its newline is written, so a reader never sees half an event.
"""

from nbtrack.journal.reader import JournalFile, list_journals, read_events
from nbtrack.journal.writer import JournalWriter

__all__ = ["JournalFile", "JournalWriter", "list_journals", "read_events"]
