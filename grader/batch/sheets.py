"""CSV files an instructor opens in a spreadsheet: gradebook.csv and the LMS exports.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula
to Excel, LibreOffice and Google Sheets, and learner names, roster fields and reasons reach
these cells. Such cells get a leading ``'`` (OWASP's CSV injection advice), and reading a
file back takes it off again, so a file round-trips. ``excel=True`` starts a new file with
a UTF-8 byte order mark, without which Excel reads ``Zoë`` as ``ZoÃ«``.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from grader.batch.outputs import FORMULA_STARTS, replace_file

BOM = "\ufeff"


def neutralised(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def restored(text: str) -> str:
    """The value ``neutralised`` was given (a cell written by this module)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def csv_text(columns: list[str], rows: list[dict], *, header: bool = True) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\r\n")
    if header:
        writer.writerow({c: neutralised(c) for c in columns})
    for row in rows:
        writer.writerow({c: neutralised(row.get(c, "")) for c in columns})
    return buffer.getvalue()


def write_csv(path: Path, columns: list[str], rows: list[dict], *, excel: bool) -> None:
    """The whole file at once: a reader sees the old file or the new one, never half."""
    replace_file(path, (BOM if excel else "") + csv_text(columns, rows))


def append_csv(path: Path, columns: list[str], row: dict) -> None:
    with open(path, "a", encoding="utf-8", newline="") as handle:
        handle.write(csv_text(columns, [row], header=False))
        handle.flush()


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(the header, the rows), with neutralised cells restored; a BOM is skipped."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [{k: restored(v or "") for k, v in row.items() if k is not None} for row in reader]
        return [restored(c) for c in reader.fieldnames or []], rows


def has_bom(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(3) == BOM.encode()
