"""Read a delimited text file into chunks of text cells, keeping line numbers.

DuckDB's sniffer detects the dialect; Python's csv module then streams the
records so every record keeps the physical lines it came from and its raw
text. Cells stay text: the dataset's schema coerces them later, so one bad
cell rejects one row, never the file.
"""

from __future__ import annotations

import csv
import difflib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pandas as pd

from bulkimport.datasets import Dataset
from bulkimport.errors import FileRefused

csv.field_size_limit(sys.maxsize)
MAX_LINE_CHARS = 1_000_000
# Bytes the encoding could not decode come through as lone surrogates.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Dialect:
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    skip_rows: int = 0
    encoding: str = "utf-8-sig"


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


def _sniffed(value) -> str | None:
    return None if value in (None, "", "(empty)") else value


def sniff(path: Path) -> Dialect:
    """Ask DuckDB's sniffer for the delimiter, quote, escape and preamble rows."""
    con = duckdb.connect()
    try:
        row = con.execute(
            "SELECT Delimiter, Quote, Escape, SkipRows FROM sniff_csv(?, all_varchar = true, sample_size = -1)",
            [str(path)],
        ).fetchone()
    except duckdb.Error as exc:
        raise FileRefused(f"{path.name}: cannot be read as delimited text ({exc})") from exc
    finally:
        con.close()
    delimiter, quote, escape, skip = row
    quote = _sniffed(quote) or '"'
    escape = _sniffed(escape)
    return Dialect(
        delimiter=_sniffed(delimiter) or ",",
        quote=quote,
        escape=None if escape == quote else escape,
        skip_rows=int(skip or 0),
    )


CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


def _matched_columns(header_line: str, delimiter: str, quote: str, dataset: Dataset) -> int:
    try:
        names = next(csv.reader([header_line], delimiter=delimiter, quotechar=quote))
    except (csv.Error, StopIteration):
        return 0
    wanted = {normalise(n) for c in dataset.columns for n in (c, *dataset.aliases.get(c, ()))}
    return sum(normalise(n) in wanted for n in names)


def choose_delimiter(path: Path, dialect: Dialect, dataset: Dataset, encoding: str) -> Dialect:
    """Keep the sniffed delimiter unless another one finds more of the dataset's columns in the header.

    The sniffer judges by consistency of the rows; a file with many broken rows
    can mislead it, while the header names what we expect.
    """
    with open(path, encoding=encoding, errors="replace", newline="") as stream:
        for _ in range(dialect.skip_rows):
            stream.readline()
        header_line = stream.readline(MAX_LINE_CHARS)
    scores = {d: _matched_columns(header_line, d, dialect.quote, dataset)
              for d in (dialect.delimiter, *CANDIDATE_DELIMITERS)}
    best = max(scores, key=lambda d: scores[d])  # ties keep the sniffed one (first)
    return dialect if best == dialect.delimiter else replace(dialect, delimiter=best)


def normalise(name: str) -> str:
    """Compare headers ignoring case, spaces and punctuation."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def map_header(header: list[str], dataset: Dataset, file_name: str) -> dict[int, str]:
    """Position in the file -> dataset column, by normalised name or alias."""
    wanted = {}
    for column in dataset.columns:
        wanted[normalise(column)] = column
        for alias in dataset.aliases.get(column, ()):
            wanted[normalise(alias)] = column
    mapping: dict[int, str] = {}
    for position, name in enumerate(header):
        column = wanted.get(normalise(name))
        if column and column not in mapping.values():
            mapping[position] = column
    missing = [c for c in dataset.required if c not in mapping.values()]
    if missing:
        hints = []
        for column in missing:
            close = difflib.get_close_matches(column, header, n=2, cutoff=0.5)
            hints.append(f"{column}" + (f" (closest in file: {', '.join(map(repr, close))})" if close else ""))
        raise FileRefused(
            f"{file_name}: the header lacks required column(s) {', '.join(hints)}. "
            f"Found columns: {', '.join(map(repr, header)) or 'none'}. "
            f"Dataset {dataset.name!r} expects: {', '.join(dataset.columns)}."
        )
    return mapping


class _LineTap:
    """Feeds csv.reader line by line and remembers the raw text of each record."""

    def __init__(self, stream):
        self.stream = stream
        self.buffer: list[str] = []
        self.chars = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            raise StopIteration
        self.buffer.append(line)
        self.chars += len(line)
        return line

    def take(self) -> str:
        raw = "".join(self.buffer)
        self.buffer.clear()
        return raw


def read_chunks(path: Path, dataset: Dataset, chunk_rows: int, dialect: Dialect | None = None,
                file_name: str | None = None) -> Iterator[Chunk]:
    """Yield chunks of records; the first record after the preamble is the header.

    Lines are 1-based physical lines of the file; a record spanning several
    lines (a quoted newline) is numbered by its first line.
    """
    file_name = file_name or path.name
    if path.stat().st_size == 0:
        raise FileRefused(f"{file_name}: the file is empty; expected a header with {', '.join(dataset.columns)}")
    if dialect is None:
        dialect = choose_delimiter(path, sniff(path), dataset, "utf-8-sig")
    with open(path, encoding=dialect.encoding, errors="surrogateescape", newline="") as stream:
        for _ in range(dialect.skip_rows):
            stream.readline()
        tap = _LineTap(stream)
        reader = csv.reader(
            tap, delimiter=dialect.delimiter, quotechar=dialect.quote, escapechar=dialect.escape,
            doublequote=dialect.escape is None, strict=True,
        )
        line_base = dialect.skip_rows
        header = next(reader, None)
        tap.take()
        if not header or not any(h.strip() for h in header):
            raise FileRefused(f"{file_name}: no header row found; expected {', '.join(dataset.columns)}")
        mapping = map_header([h.strip() for h in header], dataset, file_name)
        width = len(header)
        line_done = line_base + reader.line_num

        rows: list[list[str | None]] = []
        lines: list[int] = []
        raws: dict[int, str] = {}
        rejects: list[Reject] = []

        def flush() -> Chunk:
            frame = pd.DataFrame(rows, columns=list(mapping.values()), index=pd.Index(lines, name="line"), dtype=object)
            for column in dataset.columns:
                if column not in frame:
                    frame[column] = None
            chunk = Chunk(frame[dataset.columns], dict(raws), list(rejects), tap.chars)
            rows.clear(), lines.clear(), raws.clear(), rejects.clear()
            return chunk

        while True:
            try:
                fields = next(reader)
                error = None
            except StopIteration:
                break
            except csv.Error as exc:
                fields, error = None, exc
            line = line_done + 1
            line_done = line_base + reader.line_num
            raw = tap.take().rstrip("\r\n")
            if error is not None:
                rejects.append(Reject(line, "malformed-quote", detail=f"cannot parse: {error}", raw=raw))
            elif not raw.isascii() and _UNDECODABLE.search(raw):
                detail = f"bytes that are not valid {dialect.encoding}"
                rejects.append(Reject(line, "invalid-encoding", detail=detail, raw=raw))
            elif not fields or all(not f.strip() for f in fields):
                rejects.append(Reject(line, "blank-row", detail="the row has no values", raw=raw))
            elif len(fields) < width:
                rejects.append(Reject(line, "missing-cell",
                                      detail=f"expected {width} cells, found {len(fields)}", raw=raw))
            elif len(fields) > width and any(f.strip() for f in fields[width:]):
                rejects.append(Reject(line, "extra-cell",
                                      detail=f"expected {width} cells, found {len(fields)}", raw=raw))
            else:
                rows.append([(fields[i].strip() or None) for i in mapping])
                lines.append(line)
                raws[line] = raw
            if len(rows) + len(rejects) >= chunk_rows:
                yield flush()
        if rows or rejects:
            yield flush()
