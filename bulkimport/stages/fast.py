"""The staging fast path: DuckDB parses the file and compiled checks split its rows, in a few statements.

Rows stay out of Python. What Python still does is cheap and exact: it scans the
file's bytes with numpy (where lines start, which hold a quote or escape
character, which are empty), and it hands every line the fast path cannot prove
it reads exactly as the careful reader does to the careful reader itself:

- DuckDB reads every line with quoting switched off, so each record is exactly
  one line and its cells are the line split on the delimiter, as the careful
  reader splits a line that holds no quote, escape or NUL character. Its rows
  are matched to line numbers by position (the empty lines and the lines DuckDB
  rejects are known), and the counts must add up, or the file goes the careful way.
- Lines that hold a quote or escape character are parsed by Python's csv module
  with the careful reader's settings, a line at a time; a line that is not a
  whole record by itself (a quoted value spanning lines, a broken quote) starts
  a stretch that the careful reader reads from that line on.
- The compiled checks (bulkimport.stages.compile) stage a row only when pandera
  would stage it with the same values. Every other row, and every line DuckDB
  rejected, is judged by the careful path (read_chunks and validate_chunk), so
  rejects, reasons and raw text are the careful path's own.

A file the fast path cannot take at all raises NotFast with the reason, before
anything is written; bulkimport.stages.stage then reads it the careful way.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import itertools
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from bulkimport.config import settings
from bulkimport.datasets import Dataset
from bulkimport.sql import ident, literal
from bulkimport.stages.compile import WHITESPACE, CompiledDataset, text_column, trimmed
from bulkimport.stages.compile import typed_column as typed_name
from bulkimport.stages.read import Dialect, Record, RowShape, Source, stray_quote, text_records
from bulkimport.stages.read import records as careful_records

BLOCK_BYTES = 16 << 20
# Dialect fields the fast path reads itself; any other field away from its default sends the file the careful way.
_KNOWN_DIALECT = {"encoding", "delimiter", "quote", "escape", "header_row", "bom_bytes"}
_UTF8 = ("utf-8", "utf-8-sig", "ascii")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
PYTHON_CHECK_BATCH = 200_000


class NotFast(Exception):
    """This file cannot take the fast path; the message says why (recorded on the job)."""


@dataclass
class LineScan:
    """Where each data line of a UTF-8 file starts and ends, how many cells it splits into, and
    which lines need more than a split on the delimiter."""

    path: Path  # the UTF-8 file the offsets refer to: the upload, or a transcoded copy
    first_line: int  # line number of the first data line
    starts: np.ndarray  # byte offset of each data line
    lengths: np.ndarray  # bytes of its text (without the line end), int32
    cells: np.ndarray  # how many cells each line splits into (delimiters + 1), int32
    special: np.ndarray  # indexes of the lines holding the quote or escape character
    padded: np.ndarray  # indexes of the lines where a cell may start or end with whitespace
    empty: np.ndarray  # indexes of the empty lines

    @property
    def count(self) -> int:
        return len(self.starts)

    def texts(self, indexes) -> list[str]:
        """The text of the given lines, in that order."""
        out = []
        with open(self.path, "rb") as stream:
            fd = stream.fileno()
            for i in indexes:
                out.append(os.pread(fd, int(self.lengths[i]), int(self.starts[i])).decode("utf-8"))
        return out

    def record(self, index: int, cells: list[str] | None, text: str) -> Record:
        return Record(self.first_line + index, cells, text, int(self.starts[index]))


@dataclass
class FastRead:
    """A file read the fast way: DuckDB's cells and where each row comes from; the rest as careful records."""

    cells_table: str  # c0..c{n}: every non-empty data line split on the delimiter, in file order
    line_map: pa.Table  # a row per row of cells_table: its line, its text bytes, keep (judge it), padded (trim it)
    quoted: pa.Table  # line, c0..c{width-1}: the lines with a quote that are whole, well-shaped records
    quoted_records: dict[int, Record]  # line -> record of those
    careful: list[Record]  # records for the careful path: damaged, empty, in a stretch of quoted values
    records_total: int  # records in the file after the header (the accounting's total)
    scan: LineScan
    dialect: Dialect
    width: int  # cells in the header
    columns: int = 0  # columns of cells_table: the most cells a line has, at least width
    copy: Path | None = None  # the UTF-8 copy of a file in another encoding, removed by close()

    def raw_lines(self, lines: set[int]) -> dict[int, str]:
        """The raw text of the records that start on ``lines``, as the careful reader keeps it."""
        found = {r.line: r.raw for r in (*self.quoted_records.values(), *self.careful) if r.line in lines}
        rest = np.array(sorted(set(lines) - set(found)), dtype=np.int64)
        found.update(zip(rest.tolist(), self.scan.texts(rest - self.scan.first_line), strict=True))
        return found

    def close(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"DROP TABLE IF EXISTS {self.cells_table}")
        if self.copy:
            self.copy.unlink(missing_ok=True)


def check_source(source: Source, compiled: CompiledDataset) -> Dialect:
    """The dialect, if the fast path can read this source; else NotFast with the reason."""
    if not compiled.usable:
        raise NotFast("; ".join(compiled.blockers))
    if source.kind != "text" or source.dialect is None:
        raise NotFast(f"a {source.kind} file")
    dialect = source.dialect
    for f in dataclasses.fields(Dialect):
        if f.name not in _KNOWN_DIALECT and getattr(dialect, f.name) != f.default:
            raise NotFast(f"dialect option {f.name}={getattr(dialect, f.name)!r}")
    for name in ("delimiter", "quote", "escape"):
        value = getattr(dialect, name)
        if value is None and name == "escape":
            continue
        if not value or len(value.encode()) != 1 or value in "\r\n\0":
            raise NotFast(f"{name} {value!r}")
    return dialect


def first_data_line(path: Path, source: Source) -> int:
    """The line after the header record (a quoted header name may span lines)."""
    header = next(text_records(path, source.dialect), None)
    if header is None:
        return source.header_line + 1
    return header.line + len(_LINE_BREAK.findall(header.raw)) + 1


def utf8_copy(path: Path, dialect: Dialect) -> Path | None:
    """A UTF-8 copy of a file in another encoding (None for a UTF-8 file); NotFast if it does not decode."""
    if dialect.encoding in _UTF8:
        return None
    copy = settings().home / "tmp" / f"fast-{uuid.uuid4().hex}.csv"
    copy.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, encoding=dialect.encoding, errors="strict", newline="") as source, open(copy, "wb") as out:
            if dialect.bom_bytes and dialect.encoding.startswith("utf-16"):
                source.read(1)  # the BOM, as a character
            while text := source.read(1 << 22):
                out.write(text.encode("utf-8", "strict"))
    except UnicodeError as exc:
        copy.unlink(missing_ok=True)
        raise NotFast(f"bytes that are not valid {dialect.encoding} ({exc})") from None
    return copy


# Kinds of bytes, as bit flags looked up per byte: what the scan needs to know of each line.
_DELIMITER, _SPECIAL, _SPACE, _WIDE, _BOUNDARY = 1, 2, 4, 8, 16
# Whitespace that marks a line for trimming: more than the careful reader trims (spaces and tabs), which is safe.
_ASCII_SPACE = (9, 11, 12, 28, 29, 30, 31, 32)
_WIDE_SPACE_LEADS = (0xC2, 0xE1, 0xE2, 0xE3)


def _byte_kinds(dialect: Dialect) -> np.ndarray:
    kinds = np.zeros(256, dtype=np.uint8)
    kinds[list(_ASCII_SPACE)] |= _SPACE
    kinds[list(_WIDE_SPACE_LEADS)] |= _WIDE
    kinds[[10, 13, ord(dialect.delimiter)]] |= _BOUNDARY  # what ends a cell
    kinds[ord(dialect.delimiter)] |= _DELIMITER
    for mark in (dialect.quote, dialect.escape):
        if mark:
            kinds[ord(mark)] |= _SPECIAL
    return kinds


def _line_facts(array: np.ndarray, starts: np.ndarray, kinds: np.ndarray):
    """Per line: cells (delimiters + 1), holds a quote or escape, may have whitespace at a cell's edge."""
    flags = kinds[array]
    # Delimiters per line by binary search over their positions: np.add.reduceat with a wider dtype is 8x slower.
    delimiters = np.flatnonzero(flags & _DELIMITER)
    cells = np.diff(np.searchsorted(delimiters, np.append(starts, len(array)))) + 1
    any_flag = np.bitwise_or.reduceat(flags, starts)
    boundary = (flags & _BOUNDARY) != 0
    edge = np.zeros(len(array), dtype=bool)  # next to a cell's start or end
    edge[0] = edge[-1] = True
    edge[1:] |= boundary[:-1]
    edge[:-1] |= boundary[1:]
    spaced = np.logical_or.reduceat(((flags & _SPACE) != 0) & edge, starts)
    return cells, (any_flag & _SPECIAL) != 0, spaced | ((any_flag & _WIDE) != 0)


def scan_lines(path: Path, first_line: int, dialect: Dialect, validate_utf8: bool) -> LineScan:
    """Find the data lines (from ``first_line``) of a UTF-8 file with numpy, block by block.

    NotFast for what the fast path does not read itself: NUL bytes, bytes that are not
    UTF-8, lines ending in a lone CR or in both CRLF and LF, lines over the size limit.
    """
    kinds = _byte_kinds(dialect)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("starts", "lengths", "cells", "special", "padded", "empty")}
    seen = 0  # lines before the current block
    offset = 0  # file offset of the current block
    crlf_seen = lf_seen = False
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    with open(path, "rb") as stream:
        carry = b""
        while True:
            block = stream.read(BLOCK_BYTES)
            data = carry + block
            cut = data.rfind(b"\n") + 1 if block else len(data)
            if block and cut == 0:
                carry = data
                continue
            data, carry = data[:cut], data[cut:]
            if not data:
                break
            if b"\0" in data:
                raise NotFast("NUL bytes")
            if validate_utf8 and not data.isascii():
                try:
                    decoder.decode(data)
                except UnicodeDecodeError:
                    raise NotFast("bytes that are not valid UTF-8") from None
            crs, crlfs = data.count(b"\r"), data.count(b"\r\n")
            if crs != crlfs:
                raise NotFast("lines ending in a lone CR")
            array = np.frombuffer(data, dtype=np.uint8)
            newlines = np.flatnonzero(array == 10)
            crlf_seen |= crlfs > 0
            lf_seen |= len(newlines) > crlfs
            if crlf_seen and lf_seen:
                raise NotFast("lines ending in both CRLF and LF")
            starts = np.concatenate(([0], newlines + 1))
            ends = np.concatenate((newlines - (1 if crlfs else 0), [len(data)]))
            if starts[-1] == len(data):  # the block ends with a line end: no partial last line
                starts, ends = starts[:-1], ends[:-1]
            lengths = ends - starts
            limit = careful_records.MAX_LINE_CHARS  # the careful reader's, read now: tests lower it
            if lengths.max() > limit:
                raise NotFast(f"a line over {limit:,} bytes")
            cells, special, padded = _line_facts(array, starts, kinds)
            skip = min(len(starts), max(0, first_line - 1 - seen))  # preamble and header lines
            base = seen - (first_line - 1)  # index of this block's first line among the data lines
            parts["starts"].append(starts[skip:] + offset)
            parts["lengths"].append(lengths[skip:].astype(np.int32))
            parts["cells"].append(cells[skip:].astype(np.int32))
            parts["special"].append(np.flatnonzero(special[skip:]) + skip + base)
            parts["padded"].append(np.flatnonzero(padded[skip:]) + skip + base)
            parts["empty"].append(np.flatnonzero(lengths[skip:] == 0) + skip + base)
            seen += len(starts)
            offset += cut
            if not block:
                break

    def joined(name: str) -> np.ndarray:
        dtype = np.int32 if name in ("lengths", "cells") else np.int64  # the per-line arrays stay small
        return np.concatenate(parts[name]).astype(dtype, copy=False) if parts[name] else np.zeros(0, dtype=dtype)

    names = ("starts", "lengths", "cells", "special", "padded", "empty")
    return LineScan(path, first_line, *(joined(k) for k in names))


def parse_alone(texts: list[str], dialect: Dialect) -> list[list[str] | None]:
    """Each line's cells when the line is a whole record by itself, parsed as the careful reader
    parses it (csv module, same settings); None when it is not (an open quote, a parse error)."""
    options = {
        "delimiter": dialect.delimiter,
        "quotechar": dialect.quote,
        "escapechar": dialect.escape,
        "doublequote": dialect.escape is None,
        "strict": True,
    }
    out: list[list[str] | None] = [None] * len(texts)
    start = 0
    while start < len(texts):
        reader = csv.reader((t + "\n" for t in texts[start:]), **options)
        done = 0
        try:
            for cells in reader:
                done += 1
                if reader.line_num != done:  # the record took more than its own line
                    break
                out[start + done - 1] = cells
            else:
                break
            start += done  # the record that began at line start + done - 1 is not whole
        except csv.Error:
            start += done + 1  # the record after the `done` whole ones failed on its first line
    return out


def _careful_stretches(scan: LineScan, dialect: Dialect, shape: RowShape, begins: list[int]):
    """Records of the stretches the careful reader reads, each from a line that is not a whole
    record by itself until a record ends before a line with no quote; and the lines they cover."""
    special = set(scan.special.tolist())
    records: list[Record] = []
    covered: set[int] = set()

    def stop_before(line: int) -> bool:
        return line - scan.first_line not in special

    for index in begins:
        if index in covered:
            continue
        start, line = int(scan.starts[index]), scan.first_line + index
        for record in careful_records.records_from(scan.path, dialect, start, line, shape, stop_before):
            records.append(record)
            span = len(_LINE_BREAK.findall(record.raw)) + 1 if record.cells is not None else 1
            covered.update(range(record.line - scan.first_line, record.line - scan.first_line + span))
    return records, covered


def read_fast(con: duckdb.DuckDBPyConnection, path: Path, source: Source, compiled: CompiledDataset) -> FastRead:
    """Read the file into a temporary table of cells by line; NotFast (nothing left behind) if it cannot."""
    dialect = check_source(source, compiled)
    data_line = first_data_line(path, source)
    if data_line == 1 and dialect.bom_bytes:
        raise NotFast("a byte order mark on the first data line")
    copy = utf8_copy(path, dialect)
    try:
        utf8_dialect = dataclasses.replace(dialect, encoding="utf-8", bom_bytes=0)
        scan = scan_lines(copy or path, data_line, utf8_dialect, validate_utf8=copy is None)
        read = _load(con, scan, utf8_dialect, RowShape.of(source.match.header), data_line)
    except BaseException:
        if copy:
            copy.unlink(missing_ok=True)
        raise
    read.copy = copy
    return read


def _load(con: duckdb.DuckDBPyConnection, scan: LineScan, dialect: Dialect, shape: RowShape, data_line: int):
    """DuckDB splits every non-empty line on the delimiter (quoting off, short lines padded with NULLs)."""
    nonempty = np.flatnonzero(~_mask(scan.count, scan.empty))
    most = int(scan.cells[nonempty].max()) if len(nonempty) else 1
    if most > max(2 * shape.width, shape.width + 32):
        raise NotFast(f"a line of {most} cells (the header has {shape.width})")
    width = max(most, shape.width)
    tag = uuid.uuid4().hex[:8]
    cells, rejects, scans = f"fast_cells_{tag}", f"fast_rejects_{tag}", f"fast_scans_{tag}"
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    try:
        con.execute(
            f"CREATE TEMP TABLE {cells} AS SELECT * FROM read_csv({literal(str(scan.path))}, "
            f"columns = {columns}, header = false, skip = {data_line - 1}, auto_detect = false, "
            f"delim = {literal(dialect.delimiter)}, quote = '', escape = '', strict_mode = true, "
            f"null_padding = true, store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{scans}', "
            f"max_line_size = {careful_records.MAX_LINE_CHARS + 64}, encoding = 'utf-8')"
        )
        rejected = con.execute(f"SELECT count(DISTINCT line) FROM {rejects}").fetchone()[0]
        rows = con.execute(f"SELECT count(*) FROM {cells}").fetchone()[0]
    except duckdb.Error as exc:
        con.execute(f"DROP TABLE IF EXISTS {cells}")
        raise NotFast(f"DuckDB could not read it ({str(exc).splitlines()[0]})") from None
    finally:
        con.execute(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {scans}")
    if rejected or rows != len(nonempty):
        con.execute(f"DROP TABLE IF EXISTS {cells}")
        raise NotFast(f"DuckDB read {rows} rows and rejected {rejected} of {len(nonempty)} non-empty lines")
    try:
        read = _split_work(scan, dialect, shape, cells, nonempty)
        read.columns = width
        return read
    except BaseException:
        con.execute(f"DROP TABLE IF EXISTS {cells}")
        raise


def _split_work(scan: LineScan, dialect: Dialect, shape: RowShape, cells: str, nonempty: np.ndarray) -> FastRead:
    """Which of DuckDB's rows the checks judge; parse the quoted lines; collect what the careful path judges."""
    special_texts = scan.texts(scan.special)
    parsed = parse_alone(special_texts, dialect)
    begins = [int(i) for i, cells_ in zip(scan.special.tolist(), parsed, strict=True) if cells_ is None]
    stretches, covered = _careful_stretches(scan, dialect, shape, begins)
    covered_index = np.array(sorted(covered), dtype=np.int64)

    # Records read by Python (quoted lines, stretches): whole and well-shaped ones go to the checks with
    # DuckDB's rows, the others to the careful path, which says what is wrong with them.
    quoted: dict[int, Record] = {}
    careful: list[Record] = []
    alone = (
        scan.record(i, cells_, text)
        for i, text, cells_ in zip(scan.special.tolist(), special_texts, parsed, strict=True)
        if cells_ is not None and i not in covered
    )
    for record in itertools.chain(alone, stretches):
        # A quote inside an unquoted cell is the careful reader's stray-quote reject.
        if (
            record.cells is not None
            and shape.problem(record.cells) is None
            and "".join(record.cells).strip(WHITESPACE)
            and stray_quote(record.raw, dialect, cells=record.cells) is None
        ):
            quoted[record.line] = record
        else:
            careful.append(record)  # damaged, blank, or too few or too many cells
    # Empty lines, and lines with another number of cells than the header (no quote in them: split them).
    covered_mask = _mask(scan.count, covered_index)
    plain = ~(covered_mask | _mask(scan.count, scan.special))
    odd = np.flatnonzero((plain & (scan.cells != shape.width)) | (_mask(scan.count, scan.empty) & ~covered_mask))
    for i, text in zip(odd.tolist(), scan.texts(odd), strict=True):
        careful.append(scan.record(i, text.split(dialect.delimiter) if text else [], text))

    keep = plain[nonempty] & (scan.cells[nonempty] == shape.width)
    line_map = pa.table(
        {
            "line": nonempty + scan.first_line,
            "text_bytes": scan.lengths[nonempty] - (scan.cells[nonempty] - 1),  # the line less its delimiters
            "keep": keep,
            "padded": _mask(scan.count, scan.padded)[nonempty],
        }
    )
    quoted_table = {"line": pa.array(list(quoted), type=pa.int64())}
    for c in range(shape.width):
        quoted_table[f"c{c}"] = pa.array(
            [r.cells[c] if c < len(r.cells) else "" for r in quoted.values()], type=pa.string()
        )
    total = scan.count - len(covered) + len(stretches)
    return FastRead(cells, line_map, pa.table(quoted_table), quoted, careful, total, scan, dialect, shape.width)


def _mask(count: int, indexes: np.ndarray) -> np.ndarray:
    """Line indexes as a mask over all lines: set operations at the cost of one pass, no sorting."""
    mask = np.zeros(count, dtype=bool)
    mask[indexes] = True
    return mask


def _trim_when(cell: str, padded: str) -> str:
    """A cell trimmed as the careful reader trims it: only where the scan saw whitespace at an edge."""
    return f"CASE WHEN {padded} THEN {trimmed(cell)} ELSE {cell} END"


def check_rows(con: duckdb.DuckDBPyConnection, read: FastRead, compiled: CompiledDataset, source: Source) -> str:
    """Run the compiled checks over DuckDB's rows and the quoted rows: a temporary table of line, typed values,
    ``ok`` (stage it) and ``judged`` (a row the checks looked at). NotFast if a row and its line disagree."""
    dataset = compiled.dataset
    header = source.match.header
    position = {column: header.index(name) for name, column in source.match.mapping.items()}
    width = read.width
    tag = read.cells_table.removeprefix("fast_cells_")
    lines, quoted, checked = f"fast_lines_{tag}", f"fast_quoted_{tag}", f"fast_checked_{tag}"

    def texts(prefix: str, padded: str) -> str:
        cells = [_trim_when(f"{prefix}c{i}", padded) for i in range(width)]
        by_column = [
            f"{cells[position[c]] if c in position else 'NULL::VARCHAR'} AS {text_column(c)}" for c in dataset.columns
        ]
        blank = " AND ".join(f"({cell}) IS NULL" for cell in cells)
        return ", ".join([*by_column, f"{blank} AS blank"])

    lengths = " + ".join(f"coalesce(strlen(c.c{i}), 0)" for i in range(read.columns))
    typed = ", ".join(f"{compiled.columns[c].typed} AS {typed_name(c)}" for c in dataset.columns)
    ok = " AND ".join(f"({compiled.columns[c].ok})" for c in dataset.columns)
    con.register(lines, read.line_map)
    con.register(quoted, read.quoted)
    try:
        con.execute(
            f"CREATE TEMP TABLE {checked} AS SELECT line, aligned, judged, "
            f"{', '.join(typed_name(c) for c in dataset.columns)}, judged AND NOT blank AND {ok} AS ok "
            f"FROM (SELECT *, {typed} FROM ("
            f"SELECT m.line, {lengths} = m.text_bytes AS aligned, m.keep AS judged, "
            f"{texts('c.', 'm.padded')} FROM {read.cells_table} c POSITIONAL JOIN {lines} m "
            f"UNION ALL SELECT line, true, true, {texts('', 'true')} FROM {quoted}))"
        )
    finally:
        con.unregister(lines)
        con.unregister(quoted)
        con.execute(f"DROP TABLE IF EXISTS {read.cells_table}")
    misaligned = con.execute(f"SELECT count(*) FILTER (WHERE NOT aligned OR line IS NULL) FROM {checked}").fetchone()
    if misaligned[0]:
        con.execute(f"DROP TABLE {checked}")
        raise NotFast(f"{misaligned[0]} of DuckDB's rows did not match their line")
    for python_check in compiled.python_checks:
        _run_python_check(con, checked, python_check)
    return checked


def _run_python_check(con: duckdb.DuckDBPyConnection, checked: str, python_check) -> None:
    """A check with no SQL form, run by pandera on batches of the values the SQL accepted."""
    column = typed_name(python_check.column)
    failing: list[int] = []
    result = con.execute(f"SELECT line, {column} AS value FROM {checked} WHERE ok AND {column} IS NOT NULL")
    for batch in result.to_arrow_reader(PYTHON_CHECK_BATCH):
        frame = batch.to_pandas()
        values = frame["value"].astype(python_check.dtype)
        passed = python_check.check(values).check_output
        failing.extend(frame["line"][~passed.to_numpy(dtype=bool)].tolist())
    if failing:
        con.register("fast_failing", pa.table({"line": pa.array(failing, type=pa.int64())}))
        try:
            con.execute(f"UPDATE {checked} SET ok = false WHERE line IN (SELECT line FROM fast_failing)")
        finally:
            con.unregister("fast_failing")


def insert_checked(con: duckdb.DuckDBPyConnection, checked: str, dataset: Dataset, job_id: str, brand: str) -> None:
    """Write the rows the checks accepted to the job's staging table (inside the caller's transaction)."""
    casts = ", ".join(f"CAST({typed_name(c)} AS {t})" for c, t in dataset.sql_types.items())
    columns = ", ".join(ident(c) for c in dataset.columns)
    con.execute(
        f"INSERT INTO staging.{ident(dataset.name)} (job_id, line, brand, {columns}) "
        f"SELECT ?, line, ?, {casts} FROM {checked} WHERE ok",
        [job_id, brand],
    )


def rejected_by_checks(con: duckdb.DuckDBPyConnection, checked: str, read: FastRead) -> list[Record]:
    """The rows the checks did not accept, as records for the careful path to judge."""
    lines = np.array(
        [r[0] for r in con.execute(f"SELECT line FROM {checked} WHERE judged AND NOT ok").fetchall()], dtype=np.int64
    )
    records = [read.quoted_records[line] for line in lines.tolist() if line in read.quoted_records]
    plain = lines[~np.isin(lines, np.array(list(read.quoted_records), dtype=np.int64))] - read.scan.first_line
    for i, text in zip(plain.tolist(), read.scan.texts(plain), strict=True):
        records.append(read.scan.record(i, text.split(read.dialect.delimiter), text))
    return records
