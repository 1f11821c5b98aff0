"""The whole read: open a source (dialect or sheet, header, mapping) and cut its records into chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bulkimport.datasets import Dataset
from bulkimport.errors import FileRefused
from bulkimport.stages.read.dialect import Dialect
from bulkimport.stages.read.encoding import _UNDECODABLE, _looks_binary, _size_codec, byte_length, escape_undecodable
from bulkimport.stages.read.header import HeaderMatch, match_header, refuse_missing
from bulkimport.stages.read.headerless import looks_like_data, refuse_headerless
from bulkimport.stages.read.quoting import stray_quote
from bulkimport.stages.read.records import PADDING, LineBlock, Record, RowShape, text_items, text_records
from bulkimport.stages.read.weigh import weigh
from bulkimport.stages.read.xlsx import _xlsx_header, is_xlsx, xlsx_records


@dataclass
class Reject:
    line: int
    reason: str
    column: str | None = None
    check: str | None = None
    value: str | None = None
    detail: str | None = None
    raw: str | None = None


@dataclass
class Chunk:
    """Records of one chunk: text cells indexed by line, and structural rejects."""

    frame: pd.DataFrame
    raws: dict[int, str]
    rejects: list[Reject] = field(default_factory=list)
    bytes_read: int = 0


@dataclass(frozen=True)
class Source:
    """What was found in a file: its dialect (text) or sheet (xlsx), header and column mapping."""

    kind: str  # "text" or "xlsx"
    dialect: Dialect | None
    match: HeaderMatch
    header_line: int  # 0: the file has no header line (dialect.columns names its cells)
    remembered: bool = False  # the mapping is one a user chose earlier for this header
    notes: tuple[str, ...] = ()  # findings a person should see: a stray quote or lost delimiter in the header
    readings: tuple[dict, ...] = ()  # the readings weighed: the chosen one first, each with why
    headerless: bool = False  # the first line names no column but passes the checks as a row: offer --no-header


def records(path: Path, kind: str, dialect: Dialect | None, sheet: str | None) -> Iterator[Record]:
    return xlsx_records(path, sheet) if kind == "xlsx" else text_records(path, dialect)


def open_source(
    path: Path,
    dataset: Dataset,
    file_name: str,
    overrides: dict | None = None,
    mapping: dict[str, str] | None = None,
    remembered: Callable[[list[str]], dict[str, str] | None] | None = None,
    refuse: bool = True,
) -> Source:
    """Detect how the file is written and match its header; FileRefused if nothing can be read.

    ``mapping`` is the user's choice; else ``remembered(header)`` may offer the
    one chosen last time for the same header; else names and aliases decide.
    With ``refuse=False`` missing columns are reported in the match, not raised.
    """
    overrides = dict(overrides or {})
    sheet = overrides.pop("sheet", None)
    if path.stat().st_size == 0:
        raise FileRefused(f"{file_name}: the file is empty; expected a header with {', '.join(dataset.columns)}")
    notes: list[str] = []
    readings: list[dict] = []
    if is_xlsx(path):
        kind, dialect = "xlsx", None
        if overrides.get("no_header") or overrides.get("columns"):
            raise FileRefused(f"{file_name}: a workbook's sheet is read with its header row; no_header is for text")
    else:
        detection = weigh(path, dataset, overrides)
        kind, dialect, notes, readings = "text", detection.dialect, detection.notes, detection.readings
        if _looks_binary(path, dialect.encoding):
            raise FileRefused(
                f"{file_name}: this is not a text file (it holds binary data); "
                f"upload a CSV or an .xlsx workbook with columns {', '.join(dataset.columns)}"
            )
    found = {"notes": tuple(notes), "readings": tuple(readings)}
    if dialect is not None and dialect.columns is not None:
        header = [c.strip() for c in dialect.columns]
        match = match_header(header, dataset, mapping)
        if refuse:
            refuse_missing(match, dataset, file_name)
        return Source(kind, dialect, match, 0, **found)
    if kind == "xlsx":
        first = _xlsx_header(path, sheet, dataset, overrides.get("header_row"))
    else:
        first = next(records(path, kind, dialect, sheet), None)
    if first is None or not first.cells or not any(c.strip() for c in first.cells):
        raise FileRefused(f"{file_name}: no header row found; expected {', '.join(dataset.columns)}")
    header = [c.strip() for c in first.cells]
    earlier = None if mapping or remembered is None else remembered(header)
    match = match_header(header, dataset, mapping or earlier)
    headerless = kind == "text" and not match.mapping and looks_like_data(first.cells, dataset)
    if refuse:
        if headerless:
            refuse_headerless(file_name, dataset)
        refuse_missing(match, dataset, file_name)
    return Source(kind, dialect, match, first.line, remembered=bool(earlier), headerless=headerless, **found)


def read_chunks(
    path: Path,
    dataset: Dataset,
    chunk_rows: int,
    source: Source,
    sheet: str | None = None,
    blocks: bool = True,
    items: Iterable[Record] | None = None,
) -> Iterator[Chunk]:
    """Yield chunks of records after the header; structural problems become rejects.

    ``blocks=False`` reads one record at a time, never in bulk: the slower reference
    that the tests hold the bulk path to. ``items`` are records of the file's data
    read elsewhere (the staging fast path hands over the lines it leaves to this
    reader), judged here exactly as if this reader had read them.
    """
    header = source.match.header
    shape = RowShape.of(header)
    positions = [header.index(h) for h in source.match.mapping]
    column_at = dict(zip(positions, source.match.mapping.values(), strict=True))
    columns = list(source.match.mapping.values())
    width = len(header)
    values: list[list[str | None]] = [[] for _ in columns]  # the chunk's rows, column by column
    lines: list[int] = []
    raws: dict[int, str] = {}
    rejects: list[Reject] = []
    bytes_read = 0

    def flush() -> Chunk:
        frame = pd.DataFrame(dict(zip(columns, values, strict=True)), index=pd.Index(lines, name="line"), dtype=object)
        for column in dataset.columns:
            if column not in frame:
                frame[column] = None
        chunk = Chunk(frame[dataset.columns], dict(raws), list(rejects), bytes_read)
        for column_values in values:
            column_values.clear()
        lines.clear(), raws.clear(), rejects.clear()
        return chunk

    def add(record: Record) -> None:
        line, raw, cells = record.line, record.raw, record.cells
        if source.kind == "xlsx" and cells and len(cells) < width:
            cells = cells + [""] * (width - len(cells))  # a sheet stores no trailing empty cells: none is missing
        if record.reason:
            rejects.append(Reject(line, record.reason, detail=record.detail, raw=raw))
        elif source.dialect and not raw.isascii() and (bad := _UNDECODABLE.search(raw)):
            offset = record.byte_offset + byte_length(raw[: bad.start()], _size_codec(source.dialect.encoding))
            byte = ord(bad.group()) - 0xDC00
            rejects.append(
                Reject(
                    line,
                    "invalid-encoding",
                    value=f"\\x{byte:02x}",
                    detail=f"byte {offset} (0x{byte:02x}) is not valid {source.dialect.encoding}",
                    raw=escape_undecodable(raw),
                )
            )
        elif not cells or not "".join(cells).strip(PADDING):
            rejects.append(Reject(line, "blank-row", detail="the row has no values", raw=raw))
        elif source.dialect and (cell := stray_quote(raw, source.dialect, cells=cells)) is not None:
            rejects.append(
                Reject(
                    line,
                    "stray-quote",
                    column=column_at.get(cell),
                    value=cells[cell].strip(PADDING) if cell < len(cells) else None,
                    detail=f"a {source.dialect.quote} inside an unquoted cell (cell {cell + 1}): "
                    "a delimiter before it may be lost, or the cell was not quoted",
                    raw=raw,
                )
            )
        elif problem := shape.problem(cells):
            expected = shape.needed if problem == "missing-cell" else shape.width
            rejects.append(Reject(line, problem, detail=f"expected {expected} cells, found {len(cells)}", raw=raw))
        else:
            for column_values, i in zip(values, positions, strict=True):
                column_values.append(cells[i].strip(PADDING) or None)
            lines.append(line)
            raws[line] = raw

    def add_block(first: int, block_raws: list[str], offset: int) -> None:
        """Plain lines: split in bulk; the few that do not fit the header go through ``add``, in order."""
        rows = [raw.split(delimiter) for raw in block_raws]
        odd = [
            k
            for k, (raw, cells) in enumerate(zip(block_raws, rows, strict=True))
            if not shape.needed <= len(cells) <= width or raw.strip(blank) == ""
        ]
        start = 0
        for stop in [*odd, len(rows)]:
            for column_values, i in zip(values, positions, strict=True):
                column_values.extend([cells[i].strip(PADDING) or None for cells in rows[start:stop]])
            lines.extend(range(first + start, first + stop))
            raws.update(zip(range(first + start, first + stop), block_raws[start:stop], strict=True))
            if stop < len(rows):
                raw = block_raws[stop]
                add(Record(first + stop, raw.split(delimiter) if raw else [], raw, offset))
            start = stop + 1

    delimiter = source.dialect.delimiter if source.dialect else ","
    blank = delimiter + PADDING
    if items is not None:
        stream = iter(items)
    else:
        if source.kind == "text":
            stream = text_items(path, source.dialect) if blocks else text_records(path, source.dialect)
        else:
            stream = records(path, source.kind, None, sheet)
        for record in stream if source.header_line else ():  # up to the header (a sheet may have rows above it)
            if record.line >= source.header_line:
                break
    for item in stream:
        if isinstance(item, LineBlock):
            done = 0
            while done < len(item.lines):  # in pieces that fill the chunk exactly
                room = chunk_rows - len(lines) - len(rejects)
                piece = item.lines[done : done + room]
                add_block(item.first_line + done, [line.rstrip("\r\n") for line in piece], item.byte_offset)
                done += len(piece)
                if len(lines) + len(rejects) >= chunk_rows:
                    bytes_read = item.byte_offset + (item.byte_size if done == len(item.lines) else 0)
                    yield flush()
            bytes_read = item.byte_offset + item.byte_size
        else:
            add(item)
            bytes_read = item.byte_offset + len(item.raw)
            if len(lines) + len(rejects) >= chunk_rows:
                yield flush()
    if lines or rejects:
        yield flush()


def raw_lines(path: Path, source: Source, lines: set[int], sheet: str | None = None) -> dict[int, str]:
    """The raw text of the records that start on ``lines``, as read_chunks keeps it: for rows
    rejected only once the whole file is staged (a duplicate key)."""
    found: dict[int, str] = {}
    if not lines:
        return found
    last = max(lines)
    stream = text_items(path, source.dialect) if source.kind == "text" else records(path, source.kind, None, sheet)
    for item in stream:
        if isinstance(item, LineBlock):
            for line in lines.intersection(range(item.first_line, item.first_line + len(item.lines))):
                found[line] = item.lines[line - item.first_line].rstrip("\r\n")
            if item.first_line + len(item.lines) > last:
                break
        else:
            if item.line in lines:
                found[item.line] = item.raw
            if item.line >= last:
                break
    return found
