"""How every command prints a table: fitted to a terminal, in full anywhere else.

``nbtrack runs``, ``compare``, ``sweep``, ``rerun`` and ``lake show|sql`` build their
tables as :class:`Column` lists and print them with :func:`print_table`, so they all
follow the same rules:

- In a terminal no line is wider than the window. Columns of rank 0 always show;
  the others are added by rank while they fit. A cell is cut with an ellipsis on
  its one line (never wrapped, so never broken mid-word); headers may wrap at
  ``_`` or spaces. Numbers keep 4 significant digits (``0.9626``, ``4.4e-06``) and
  run ids their first 8 characters, which every command accepts as an id. The
  command ends with one dim line (:func:`print_footer`) saying what was left out
  and how to see it.
- Anywhere else (a pipe, a file), and with ``--wide``, every column is printed
  with full values at the table's natural width: what a script wants.
- ``--json`` and ``--csv`` print every row and column (:func:`write_csv`).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Console

#: Spaces between two columns.
GAP = 2
#: Characters of a run id shown in a terminal (``nbtrack compare``/``rerun`` accept them).
SHORT_ID = 8
ELLIPSIS = "…"
_HEADER_PARTS = re.compile(r"[^_\s]+[_\s]*|[_\s]+")


@dataclass
class Column:
    """One column: its header, each cell's full text, and how it may be fitted to a terminal."""

    header: str
    cells: list[str]
    #: The cells as a terminal shows them (short ids, 4 significant digits); default ``cells``.
    compact: list[str] | None = None
    #: 0: always shown; the others are added lowest rank first while they fit.
    rank: int = 0
    #: Text may be cut with an ellipsis; numbers, ids and status words never are.
    cut: bool = True
    justify: Literal["left", "right"] = "left"
    style: str = ""
    #: A rich style per cell (e.g. the best value in bold green), or None.
    styles: list[str] | None = None
    #: How the footer names this column when it is left out (default: the header).
    name: str = ""
    #: The narrowest a text column may be cut to, when wider than the terminal's default.
    min_width: int = 0

    def texts(self, full: bool) -> list[str]:
        """The cells as printed whole, or as a terminal shows them."""
        return self.cells if full or self.compact is None else self.compact


@dataclass
class Fitted:
    """What :func:`fit` decided: the columns shown with their widths, and what was given up."""

    shown: list[tuple[Column, int]] = field(default_factory=list)
    hidden: list[Column] = field(default_factory=list)
    shortened: list[Column] = field(default_factory=list)


def add_output_arguments(parser: argparse.ArgumentParser, *, json_help: str) -> None:
    """``--wide``, ``--json`` and ``--csv``: the same three ways out of a fitted table everywhere."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help=json_help)
    group.add_argument("--csv", action="store_true",
                       help="print every row and column as CSV instead of a table")
    group.add_argument("--wide", action="store_true",
                       help="print every column with full values, even wider than the terminal "
                       "(what a pipe or a file gets anyway)")


def number(value: Any, *, full: bool = False) -> str:
    """A number as a reader wants it: ``0.9626``, ``4.4e-06``, ``60``; every digit when ``full``."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):  # "nan" / "inf" from JSON-ready rows, or a value that is text
        text = value
        try:
            value = float(text)
        except ValueError:
            return text
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if full:
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def short_id(run_id: str) -> str:
    """The first 8 characters of a run id, as every table shows it and every command takes it."""
    return run_id[:SHORT_ID]


def cut(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` cells: cut at a space when one is near, with ``…``."""
    from rich.cells import cell_len, set_cell_size

    text = " ".join(text.split()) if ("\n" in text or "\t" in text) else text
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = set_cell_size(text, width - 1)
    space = head.rfind(" ")
    if text[len(head)] != " " and space >= width // 2:  # else the head ends a word already
        head = head[:space]
    return head.rstrip(" ,;") + ELLIPSIS


def wrap_header(header: str, width: int) -> str:
    """A header on as many lines as it needs at ``width``, broken only after ``_`` or a space.

    Only its first line wraps; further lines (a run's name under its id) are cut to one line.
    """
    from rich.cells import cell_len

    first, *more = header.split("\n")
    lines: list[str] = []
    line = ""
    for part in _HEADER_PARTS.findall(first):
        if line and cell_len((line + part).rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += part
    lines.append(line.rstrip())
    return "\n".join(cut(piece, width) for piece in lines + more)


def text_width(width: int) -> int:
    """The narrowest a text column gets in a terminal ``width`` cells wide."""
    return max(8, width // 10)


def _widths(column: Column, text_min: int) -> tuple[int, int]:
    """The narrowest and the natural width of a fitted column."""
    from rich.cells import cell_len

    texts = [" ".join(t.split()) for t in column.texts(False)]
    cells = max((cell_len(t) for t in texts), default=0)
    lines = column.header.split("\n")
    header = max((cell_len(p.rstrip()) for p in _HEADER_PARTS.findall(lines[0])), default=0)
    natural = max(cells, *(cell_len(line) for line in lines))
    narrowest = cells if not column.cut else min(cells, max(text_min, column.min_width))
    return max(narrowest, min(header, natural), 1), max(natural, 1)


def _full_width(column: Column) -> int:
    """The widest line of a column printed whole (a pipe, ``--wide``)."""
    from rich.cells import cell_len

    lines = [line for text in [column.header, *column.cells] for line in text.splitlines()]
    return max((cell_len(line) for line in lines), default=0)


def fit(columns: Sequence[Column], width: int) -> Fitted:
    """Which columns fit in ``width`` cells, and how wide each one is.

    Rank 0 columns always show; the others are added by rank (then position) while
    their narrowest width fits. Spare room then widens the shown columns towards
    their natural width, one cell at a time in turn, so no one column takes it all.
    """
    from rich.cells import cell_len

    text_min = text_width(width)
    sizes = [_widths(c, text_min) for c in columns]
    chosen = [i for i, c in enumerate(columns) if c.rank == 0]
    used = sum(sizes[i][0] for i in chosen) + GAP * max(len(chosen) - 1, 0)
    optional = sorted((i for i, c in enumerate(columns) if c.rank > 0),
                      key=lambda i: (columns[i].rank, i))
    for i in optional:
        extra = sizes[i][0] + (GAP if chosen else 0)
        if used + extra <= width:
            chosen.append(i)
            used += extra
    chosen.sort()
    widths = {i: sizes[i][0] for i in chosen}
    spare = width - used
    while spare > 0:
        growing = [i for i in chosen if widths[i] < sizes[i][1]]
        if not growing:
            break
        for i in growing[:spare]:
            widths[i] += 1
        spare -= min(len(growing), spare)
    fitted = Fitted(shown=[(columns[i], widths[i]) for i in chosen],
                    hidden=[c for i, c in enumerate(columns) if i not in widths])
    fitted.shortened = [c for c, w in fitted.shown if c.cut
                        and any(cell_len(" ".join(t.split())) > w for t in c.texts(False))]
    return fitted


def print_table(console: Console, columns: Sequence[Column], *, title: str | None = None,
                full: bool | None = None, row_styles: Sequence[str] | None = None) -> Fitted:
    """Print ``columns`` fitted to the terminal, or in full (``full``, default: not a terminal).

    Returns what was left out or cut, for the command's footer.
    """
    from rich.table import Table
    from rich.text import Text

    if full is None:
        full = not console.is_terminal
    if full:
        fitted = Fitted(shown=[(c, 0) for c in columns])
        natural = sum(_full_width(c) for c in columns) + GAP * max(len(columns) - 1, 0)
        console.width = max(console.width, natural)
    else:
        fitted = fit(columns, console.width)
    if title:
        console.print(Text(title, style="bold"), no_wrap=not full, overflow="ellipsis", crop=not full)
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold",
                  show_edge=False, expand=False)
    for column, width in fitted.shown:
        header = column.header if full else wrap_header(column.header, width)
        sizes: dict[str, Any] = {} if full else {"width": width, "min_width": width,
                                                 "max_width": width}
        table.add_column(Text(header), justify=column.justify, style=column.style or None,
                         no_wrap=True, overflow="ellipsis", **sizes)
    rows = len(columns[0].cells) if columns else 0
    for r in range(rows):
        cells = []
        for column, width in fitted.shown:
            value = column.texts(full)[r]
            text = Text(value if full else cut(value, width))
            if column.styles and column.styles[r]:
                text.stylize(column.styles[r])
            cells.append(text)
        table.add_row(*cells, style=row_styles[r] if row_styles else None)
    console.print(table)
    return fitted


def print_footer(console: Console, left_out: Sequence[str], *hows: str) -> None:
    """The dim last line: what the table left out, and how to see it.

    Names are listed while the line fits the terminal, then counted (``+5 more``); ``hows``
    are ways of saying how to see them, longest first: the first that fits is used.
    """
    from rich.text import Text

    line = ""
    for how in hows:
        budget = console.width - len(how)
        if not left_out:
            line = how
        else:
            budget -= len("not shown: ; ")
            names = ", ".join(left_out)
            if len(names) > budget:
                names = f"{len(left_out)} columns"
                for n in range(len(left_out) - 1, 0, -1):
                    listed = ", ".join(left_out[:n]) + f", +{len(left_out) - n} more"
                    if len(listed) <= budget:
                        names = listed
                        break
            line = f"not shown: {names}; {how}"
        if len(line) <= console.width:
            break
    console.print(Text(line, style="dim"))


def pages(key: Column, columns: Sequence[Column], width: int) -> list[list[Column]]:
    """Split the run columns of a transposed table into groups that fit beside ``key``.

    Every group has at least one column, so each page is as readable as the terminal allows.
    """
    text_min = text_width(width)
    left = _widths(key, text_min)[0] + GAP
    groups: list[list[Column]] = [[]]
    used = left
    for column in columns:
        need = _widths(column, text_min)[0] + GAP
        if groups[-1] and used + need > width:
            groups.append([])
            used = left
        groups[-1].append(column)
        used += need
    return groups


def write_csv(rows: Iterable[Mapping[str, Any]], fields: Sequence[str] | None = None) -> None:
    """Every row and column as CSV on stdout; ``fields`` defaults to every key, in first-seen order."""
    from nbtrack.query.values import is_missing

    rows = list(rows)
    if fields is None:
        fields = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(sys.stdout, fieldnames=list(fields), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if is_missing(row.get(k)) else row.get(k) for k in fields})


def nested_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A flat row (``params.<key>``, ``metrics.<key>`` fields) as ``--json`` prints runs: params
    and metrics nested, NaN and infinities as "nan"/"inf", a missing value null (left out of
    params and metrics)."""
    from nbtrack.query.values import is_missing, json_safe

    out: dict[str, Any] = {"params": {}, "metrics": {}}
    for key, value in row.items():
        group, _, name = key.partition(".")
        if group in ("params", "metrics") and name:
            if not is_missing(value):
                out[group][name] = json_safe(value)
        else:
            out[key] = None if is_missing(value) else json_safe(value)
    return out
