"""The table rules of the command line (``nbtrack/cli/tables.py``) on a real rich console:
numbers, cutting, header wrapping, and which columns a narrow terminal keeps."""

from __future__ import annotations

import io

from rich.cells import cell_len
from rich.console import Console

from nbtrack.cli.tables import Column, cut, number, print_table, wrap_header


def test_numbers_keep_significant_digits_and_every_digit_when_full():
    assert number(4.4e-06) == "4.4e-06" and number(0.9626168224299065) == "0.9626"
    assert number(60.0) == "60" and number("nan") == "nan" and number(float("-inf")) == "-inf"
    assert number(0.9626168224299065, full=True) == "0.9626168224299065"


def test_text_is_cut_with_an_ellipsis_at_a_space_and_headers_wrap_after_underscores():
    assert cut("#4 max_depth=2, learning_rate=0.05", 20) == "#4 max_depth=2…"
    assert cut("abcdefghij", 5) == "abcd…" and cut("short", 5) == "short"
    assert wrap_header("learning_rate", 9) == "learning_\nrate"
    assert wrap_header("4a2ed0bb\n#4 max_depth=2", 9) == "4a2ed0bb\n#4 max_d…"


def test_a_table_wider_than_the_terminal_keeps_its_first_columns_whole():
    console = Console(width=40, force_terminal=True, record=True, file=io.StringIO())
    columns = [Column("run id", ["4a2ed0bbb70d4bee"], compact=["4a2ed0bb"], cut=False),
               Column("name", ["a name far longer than the terminal is wide"], rank=1),
               Column("status", ["FINISHED"], cut=False)]
    columns += [Column(f"metric_{i}", [number(0.123456)], rank=2, cut=False) for i in range(6)]
    fitted = print_table(console, columns)
    lines = console.export_text().splitlines()
    assert all(cell_len(line) <= 40 for line in lines)
    assert "4a2ed0bb" in lines[-1] and "FINISHED" in lines[-1] and "…" in lines[-1]
    assert "metric_0" in lines[0]
    assert [c.header for c in fitted.hidden] == [f"metric_{i}" for i in range(1, 6)]
