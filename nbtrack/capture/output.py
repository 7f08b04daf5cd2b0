"""Curves from printed progress: ``epoch 3: loss=0.25 acc=0.90`` becomes two metric points at step 3.

Only what a cell writes to stdout is read (never stderr, where tracebacks go),
one complete line at a time. A line gives metrics in the common forms
``name: value``, ``name=value`` and, on a line that names its step, ``name value``;
the step comes from ``epoch N``, ``iter N``/``iteration N`` or ``step N`` on the same
line (``Epoch [3/50]`` too), else it is the metric's next step. Only metric-like
names count (the same rule as variables), and lines aligned in columns (tables,
DataFrames, model summaries: runs of three spaces or more) are never read. More
forms can be added with the ``output_patterns`` option: regular expressions with
groups ``name`` and ``value`` (and optionally ``step``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbtrack.capture.session import TrackingSession

_NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
_STEP = re.compile(r"\b(?:epoch|iter|iteration|step)s?\b\s*[:=#]?\s*\[?\s*(\d+)(?:\s*/\s*\d+)?\s*\]?", re.I)
_PAIR = re.compile(rf"(?P<name>[A-Za-z][\w.]*(?: [A-Za-z][\w.]*)*)\s*[:=]\s*(?P<value>{_NUMBER})(?![\w./])")
_SPACED = re.compile(rf"(?P<name>[A-Za-z][\w.]*)\s+(?P<value>{_NUMBER})(?![\w./])")
_SEGMENTS = re.compile(r",|;|\t|\|| - ")
_COLUMNS = re.compile(r"\S   +\S")  # text aligned in columns
_TRACEBACK = re.compile(r"^\s*(?:Traceback \(most recent call last\)|File \"|\^|[\w.]*(?:Error|Exception|Warning)\b:)")
_MAX_LINE = 400
_MAX_PENDING = 10_000  # a line this long without a newline is not progress output


class OutputRecorder:
    """Reads the lines a cell prints and logs the metric values they show."""

    def __init__(self, session: TrackingSession) -> None:
        self.session = session
        self._stream: Any = None
        self._pending = ""
        self._patterns: list[re.Pattern[str]] = []
        self._configured: tuple[str, ...] = ()
        self._in_traceback = False  # inside a traceback printed to stdout: its lines are code, not progress

    def install(self) -> None:
        """Nothing to do now: the stream is wrapped at each cell's start (IPython 9 wraps and
        restores ``sys.stdout.write`` around every cell, dropping what it finds at the end)."""

    def cell_started(self) -> None:
        """Wrap ``sys.stdout.write`` for this cell (ipykernel's stream; a C-level one cannot be)."""
        stream = sys.stdout
        current = stream.write
        if getattr(current, "__nbtrack__", False):
            return
        recorder = self

        def write(text: Any, *args: Any, **kwargs: Any) -> Any:
            result = current(text, *args, **kwargs)
            if isinstance(text, str):
                recorder.feed(text)
            return result

        write.__nbtrack__ = True  # type: ignore[attr-defined]
        write.__wrapped__ = current  # type: ignore[attr-defined]
        try:
            stream.write = write  # type: ignore[method-assign]
        except (AttributeError, TypeError):
            return
        self._stream = stream

    def uninstall(self) -> None:
        stream = self._stream
        if stream is not None and getattr(stream.write, "__nbtrack__", False):
            stream.write = stream.write.__wrapped__
        self._stream = None

    def cell_finished(self) -> None:
        """A last line without a newline still belongs to the cell that printed it."""
        pending, self._pending = self._pending, ""
        if pending:
            self._line(pending)

    def feed(self, text: str) -> None:
        session = self.session
        if session.cell is None or not session.config.enabled or not session.config.output_metrics:
            return
        try:
            if "\n" not in text:
                self._pending = (self._pending + text)[-_MAX_PENDING:]
                return
            lines = (self._pending + text).split("\n")
            self._pending = lines.pop()[-_MAX_PENDING:]
            for line in lines:
                self._line(line)
        except Exception as exc:  # noqa: BLE001 - inside the user's print(): never raise
            session.safety.warn(f"reading printed metrics failed and was skipped ({type(exc).__name__}: {exc})",
                                key=f"output:{type(exc).__name__}")

    def _line(self, line: str) -> None:
        line = line.rsplit("\r", 1)[-1]  # a progress bar redrawn with \r: its last state
        if line.startswith("Traceback (most recent call last)"):
            self._in_traceback = True
            return
        if self._in_traceback:
            self._in_traceback = line[:1].isspace()  # its frames are indented; its last line is the error
            return
        if not line or len(line) > _MAX_LINE or not any(c.isdigit() for c in line):
            return
        if _COLUMNS.search(line) or _TRACEBACK.match(line):  # a table, a summary, a printed traceback
            return
        found = parse_line(line, self._custom_patterns())
        names = self.session.metrics.names
        for name, value, step in found:
            if name in names:
                self.session.metrics.log_one(name, value, step, None)

    def _custom_patterns(self) -> list[re.Pattern[str]]:
        configured = tuple(self.session.config.output_patterns)
        if configured != self._configured:
            self._configured = configured
            self._patterns = []
            for pattern in configured:
                try:
                    self._patterns.append(re.compile(pattern))
                except re.error as exc:
                    self.session.safety.warn(f"output_patterns: {pattern!r} is not a regular expression ({exc})")
        return self._patterns


def parse_line(line: str, patterns: Sequence[re.Pattern[str]] = ()) -> list[tuple[str, float, int | None]]:
    """``(name, value, step)`` for each metric-looking pair of a printed line (names normalised:
    ``Val Loss`` -> ``val_loss``); the caller keeps the metric-like ones."""
    found: list[tuple[str, float, int | None]] = []
    for pattern in patterns:
        for match in pattern.finditer(line):
            groups = match.groupdict()
            step = groups.get("step")
            value = _float(groups.get("value"))
            if groups.get("name") and value is not None:
                found.append((_name(groups["name"]), value, int(step) if step and step.isdigit() else None))
    if found:
        return found
    markers = list(_STEP.finditer(line))
    marker = markers[0] if markers else None
    step = int(marker.group(1)) if marker and len(markers) == 1 else None  # epoch AND step: ambiguous
    rest = _STEP.sub(" ", line)
    for segment in _SEGMENTS.split(rest):
        for match in _PAIR.finditer(segment):
            value = _float(match.group("value"))
            name = _name(match.group("name"))
            if value is not None and name:
                found.append((name, value, step))
    if not found and marker is not None:  # "epoch 3 loss 0.25 acc 0.9": only with a step on the line
        for match in _SPACED.finditer(rest):
            value = _float(match.group("value"))
            name = _name(match.group("name"))
            if value is not None and name:
                found.append((name, value, step))
    return found


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


_FILLER = {"after", "at", "of", "for", "on", "in", "is", "the", "a", "an", "=", "was"}


def _name(text: str) -> str:
    """``Average loss`` -> ``average_loss``; ``Loss after`` -> ``loss`` (trailing filler words dropped)."""
    words = [w for w in re.split(r"[^\w.]+", text.strip().lower()) if w]
    while words and words[-1] in _FILLER:
        words.pop()
    return "_".join(words[-4:])
