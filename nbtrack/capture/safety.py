"""Capture must never break a user's cell: failures become one-line warnings.

Like MLflow's autologging safety layer, errors inside nbtrack's own code are
turned into a warning (shown once per distinct problem) while the user's own
exceptions are never touched. ``strict`` mode (tests) re-raises instead.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Safety:
    def __init__(self, *, strict: bool = False, record: Callable[[str], Any] | None = None) -> None:
        self.strict = strict
        self.record = record  # also keep the warning in the journal
        self._seen: set[str] = set()
        self.errors: list[BaseException] = []  # every capture failure, for tests and %nbtrack status

    def warn(self, message: str, *, key: str | None = None) -> None:
        """Print ``nbtrack: message`` on stderr once per key (default: the message)."""
        key = key or message
        if key in self._seen:
            return
        self._seen.add(key)
        print(f"nbtrack: {message}", file=sys.stderr, flush=True)
        if self.record is not None:
            try:
                self.record(message)
            except Exception:  # noqa: BLE001 - recording a warning must not fail either
                pass

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Run a capture step; an error in it becomes a warning (or raises in strict mode)."""
        try:
            yield
        except Exception as exc:
            self.errors.append(exc)
            if self.strict:
                raise
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.warn(f"{what} failed and was skipped ({detail})", key=f"{what}:{type(exc).__name__}")
