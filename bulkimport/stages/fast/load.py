"""DuckDB loads a file's lines as cells; Python parses the quoted lines and hands the careful reader the rest."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from bulkimport.sql import literal
from bulkimport.stages.compile import WHITESPACE, CompiledDataset
from bulkimport.stages.fast.scan import (
    _LINE_BREAK,
    LineScan,
    NotFast,
    check_source,
    first_data_line,
    scan_lines,
    utf8_copy,
)
from bulkimport.stages.read import Dialect, Record, RowShape, Source, stray_quote
from bulkimport.stages.read import records as careful_records


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
