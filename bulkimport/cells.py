"""Cells safe to open in a spreadsheet: every CSV the product writes goes through here.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a CR as a
formula, and one that splits on ``;`` (or a tab) runs every part of a cell that does.
``neutralise`` puts an apostrophe before each such start, in the cell and after every
``;``, ``,`` or tab in it; a number (``-5``, ``+1.5``) stays a number. The .xlsx writer
stores every cell as text, which no spreadsheet evaluates, so values stay as they are.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Where a part of a cell begins (the cell's start, or right after ; , or tab) with a formula character.
_PART_STARTS_FORMULA = re.compile(r"(?:^|(?<=[;,\t]))(?=[=+\-@\t\r])")
_RISKY_RE2 = r"(^|[;,\t])[=+\-@\t\r]"  # the same test for pyarrow (RE2: no look-around), to find cells to fix
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")
XLSX_MAX_ROWS = 1_048_576  # a sheet's limit, the header row included


def neutralise(value):
    """``value`` made inert in a spreadsheet; anything that is not risky text comes back unchanged.

    >>> neutralise("=HYPERLINK(\\"http://x\\")"), neutralise("x;=cmd|' /C calc'!A0"), neutralise("-5")
    ('\\'=HYPERLINK("http://x")', "x;'=cmd|' /C calc'!A0", '-5')
    """
    if not isinstance(value, str) or _NUMBER.fullmatch(value.strip()):
        return value
    return _PART_STARTS_FORMULA.sub("'", value)


_NEUTRALISED = re.compile(r"(?:^|(?<=[;,\t]))'(?=[=+\-@\t\r])")


def restore(value):
    """What ``neutralise`` was given, for a downloaded file that comes back fixed (`bulkimport fix --from`).

    >>> restore("'=HYPERLINK(1)"), restore("x;'=cmd"), restore("-5")
    ('=HYPERLINK(1)', 'x;=cmd', '-5')
    """
    if not isinstance(value, str):
        return value
    return _NEUTRALISED.sub("", value)


def _neutralise_column(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A text column with its risky cells neutralised (found by pyarrow, fixed by ``neutralise``)."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    risky = pc.match_substring_regex(column, _RISKY_RE2)
    if not pc.any(risky).as_py():
        return column
    return pa.array([neutralise(v) for v in column.to_pylist()], type=column.type)


def neutralise_table(table: pa.Table | pa.RecordBatch) -> pa.Table:
    names = [neutralise(str(n)) for n in table.schema.names]  # a header can hold a formula too
    return pa.table([_neutralise_column(c) for c in table.columns], names=names)


def write_csv(batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema, sink: BinaryIO) -> None:
    """Stream ``batches`` to ``sink`` as CSV with a header, every risky cell neutralised."""
    names = [neutralise(str(n)) for n in schema.names]
    safe_schema = pa.schema([f.with_name(n) for f, n in zip(schema, names, strict=True)])
    options = pa_csv.WriteOptions(include_header=True, quoting_style="needed")
    with pa_csv.CSVWriter(sink, safe_schema, write_options=options) as out:
        for batch in batches:
            table = neutralise_table(batch)
            out.write_table(table if table.schema == safe_schema else table.cast(safe_schema))


def write_xlsx(batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema, sink: BinaryIO, title: str) -> None:
    """Stream ``batches`` to ``sink`` as one .xlsx sheet whose every cell is text (never a formula, never a date)."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(title=re.sub(r"[\[\]:*?/\\]", "_", title)[:31] or "rows")

    def text_cell(value) -> WriteOnlyCell | None:
        if value is None:
            return None
        cell = WriteOnlyCell(sheet, value=str(value))
        cell.data_type = "s"  # openpyxl would store "=..." as a formula
        return cell

    sheet.append([text_cell(n) for n in schema.names])
    rows = 1
    for batch in batches:
        for row in (batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])).to_pylist():
            rows += 1
            if rows > XLSX_MAX_ROWS:
                raise ValueError(f"more than {XLSX_MAX_ROWS - 1:,} rows do not fit in one sheet; export as csv")
            sheet.append([text_cell(v) for v in row.values()])
    book.save(sink)


def frame_bytes(frame, fmt: str, title: str = "rows") -> bytes:
    """A pandas DataFrame as the bytes of a safe CSV or .xlsx file (the dashboard's downloads)."""
    table = pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None), preserve_index=False)
    out = io.BytesIO()
    if fmt == "xlsx":
        write_xlsx([table], table.schema, out, title)
    else:
        write_csv([table], table.schema, out)
    return out.getvalue()
