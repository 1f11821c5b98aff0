"""Rows of an .xlsx sheet as records; workbooks that would inflate like a zip bomb are refused."""

from __future__ import annotations

import itertools
import json
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from bulkimport.config import settings
from bulkimport.datasets import Dataset
from bulkimport.errors import FileRefused
from bulkimport.stages.read.header import _known_names, normalise
from bulkimport.stages.read.records import Record


def is_xlsx(path: Path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(4) == b"PK\x03\x04" and zipfile.is_zipfile(path)


MAX_XLSX_PART_BYTES = 512 << 20
MAX_XLSX_RATIO = 200


SHARED_STRINGS = "xl/sharedStrings.xml"


def _count_shared_strings(archive: zipfile.ZipFile, most: int) -> int:
    """How many strings the shared-strings part holds, counted while inflating it a block at a time
    (its declared count may lie); stops counting past ``most``."""
    count, tail = 0, b""
    with archive.open(SHARED_STRINGS) as stream:
        while block := stream.read(1 << 20):
            data = tail + block
            count += data.count(b"<si>") + data.count(b"<si ")
            tail = data[-3:]  # shorter than a tag: a tag cut by the block boundary is counted once, next round
            if count > most:
                break
    return count


def _refuse_zip_bomb(path: Path) -> None:
    """Refuse a workbook whose parts would inflate far beyond any real sheet, before reading it.

    Three limits: each part's size and ratio, all parts together (BULKIMPORT_XLSX_MAX_MB), and
    the number of shared strings (BULKIMPORT_XLSX_MAX_STRINGS), which openpyxl holds in memory.
    """
    s = settings()
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            total = sum(part.file_size for part in parts)
            if total > s.xlsx_max_mb << 20:
                raise FileRefused(
                    f"{path.name}: refused: its parts would inflate to {total / 2**20:,.0f} MB in all, more than "
                    f"{s.xlsx_max_mb} MB (BULKIMPORT_XLSX_MAX_MB). Export the sheet as CSV and upload that instead"
                )
            if SHARED_STRINGS in archive.namelist():
                strings = _count_shared_strings(archive, s.xlsx_max_strings)
                if strings > s.xlsx_max_strings:
                    raise FileRefused(
                        f"{path.name}: refused: it holds more than {s.xlsx_max_strings:,} shared strings "
                        "(BULKIMPORT_XLSX_MAX_STRINGS). Export the sheet as CSV and upload that instead"
                    )
    except (zipfile.BadZipFile, OSError, zlib.error, EOFError) as exc:
        raise FileRefused(f"{path.name}: not a readable .xlsx workbook ({exc})") from exc
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > MAX_XLSX_PART_BYTES or (part.file_size > (16 << 20) and ratio > MAX_XLSX_RATIO):
            raise FileRefused(
                f"{path.name}: refused: its part {part.filename} would inflate to {part.file_size / 2**20:,.0f} MB "
                f"(from {part.compress_size / 2**20:,.1f} MB); a real sheet is not like that. "
                "Export the sheet as CSV and upload that instead"
            )


# What a damaged workbook raises, from opening it or while its sheet is inflated and parsed
# (zlib.error: damaged compressed data; SyntaxError: XML parse errors).
_DAMAGED_WORKBOOK = (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, zlib.error, SyntaxError)


def xlsx_records(path: Path, sheet: str | None = None) -> Iterator[Record]:
    """Rows of the first (or the named) sheet; the line is the spreadsheet's row number."""
    import openpyxl

    _refuse_zip_bomb(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except _DAMAGED_WORKBOOK as exc:
        raise FileRefused(f"{path.name}: not a readable .xlsx workbook ({exc})") from exc
    try:
        if sheet and sheet not in book.sheetnames:
            raise FileRefused(f"{path.name}: no sheet {sheet!r}; sheets: {', '.join(book.sheetnames)}")
        ws = book[sheet] if sheet else book.worksheets[0]
        blanks: list[Record] = []  # held back: a sheet often ends in empty rows
        for number, values in enumerate(_sheet_rows(ws, path), start=1):
            cells = ["" if v is None else _cell_text(v) for v in values]
            while cells and cells[-1] == "":
                cells.pop()
            record = Record(number, cells, json.dumps(cells, ensure_ascii=False), 0)
            if not cells:
                blanks.append(record)
                continue
            yield from blanks
            blanks.clear()
            yield record
    finally:
        book.close()


def _sheet_rows(ws, path: Path) -> Iterator[tuple]:
    """The sheet's rows; a sheet damaged inside its compressed data is refused where it breaks.

    openpyxl inflates and parses the sheet lazily, so such damage shows only here, row by row.
    """
    rows = ws.iter_rows(values_only=True)
    number = 0
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except _DAMAGED_WORKBOOK as exc:
            raise FileRefused(
                f"{path.name}: not a readable .xlsx workbook: the sheet is damaged after row "
                f"{number} ({type(exc).__name__}: {exc})"
            ) from exc
        number += 1
        yield values


def _cell_text(value) -> str:
    if hasattr(value, "date") and hasattr(value, "hour"):
        return value.date().isoformat() if (value.hour, value.minute, value.second) == (0, 0, 0) else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_header(path: Path, sheet: str | None, dataset: Dataset, header_row: int | str | None) -> Record | None:
    """The sheet's header: the row the user named, else the top row naming the most dataset columns.

    Rows above it (a title, a blank row) are a preamble, as in a text file.
    """
    known = _known_names(dataset)
    best, best_score = None, 0
    for record in itertools.islice(xlsx_records(path, sheet), 30):
        if header_row:
            if record.line == int(header_row):
                return record
            continue
        score = sum(normalise(c) in known for c in record.cells)
        if best is None or not best.cells or score > best_score:
            best, best_score = record, score
    return best
