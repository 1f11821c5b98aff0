"""Read a file into chunks of text cells, keeping every record's line and raw text.

A chain of small steps: detect the encoding (whole file), sniff the dialect
(DuckDB's sniffer on a UTF-8 sample), split into records (Python's csv module,
fed line by line so each record knows the physical lines it came from), map the
header to the dataset's columns, and cut records into chunks. Cells stay text:
the dataset's schema coerces them later, so one bad cell rejects one row.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import difflib
import itertools
import json
import re
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import duckdb
import pandas as pd

from bulkimport.datasets import Dataset
from bulkimport.errors import FileRefused

csv.field_size_limit(sys.maxsize)
MAX_LINE_CHARS = 1_000_000
SAMPLE_BYTES = 2 << 20
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
# Bytes the encoding could not decode come through as lone surrogates.
_UNDECODABLE = re.compile("[\udc00-\udcff]")
BYTES = "bulkimport-bytes"  # the codec error handler below


def _keep_bad_bytes(error: UnicodeError):
    """Like surrogateescape (a bad byte b becomes U+DC00+b and back), for every codec.

    surrogateescape refuses bytes below 0x80, which a damaged UTF-16 file has.
    """
    if isinstance(error, UnicodeDecodeError):
        return "".join(chr(0xDC00 + b) for b in error.object[error.start:error.end]), error.end
    if isinstance(error, UnicodeEncodeError):
        text = error.object[error.start:error.end]
        if all(0xDC00 <= ord(c) <= 0xDCFF for c in text):
            return bytes(ord(c) - 0xDC00 for c in text), error.end
    raise error


codecs.register_error(BYTES, _keep_bad_bytes)


def byte_length(text: str, codec: str) -> int:
    """Bytes ``text`` took in the file: each kept bad byte is one byte (UTF-16's encoder
    will not write a lone byte back, so they are counted, not encoded)."""
    clean = _UNDECODABLE.sub("", text)
    return len(clean.encode(codec)) + len(text) - len(clean)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_BOM_OF = {"utf-8": codecs.BOM_UTF8, "utf-8-sig": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE,
           "utf-16-be": codecs.BOM_UTF16_BE}
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "cp1252", "latin-1")


@dataclass(frozen=True)
class Dialect:
    """How a delimited file is written. Stored on the job; any field can be overridden at submit."""

    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    header_row: int = 1  # 1-based line of the header; lines before it are a preamble
    bom_bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


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
class Record:
    line: int
    cells: list[str] | None
    raw: str
    byte_offset: int
    reason: str | None = None
    detail: str | None = None


@dataclass
class LineBlock:
    """Consecutive lines that are each a whole record with no quote, escape, NUL or bad byte:
    read_chunks splits them on the delimiter in bulk instead of one csv.reader call per line."""

    first_line: int
    lines: list[str]  # with their line endings
    byte_offset: int  # where the first line starts in the file
    byte_size: int


@dataclass
class Chunk:
    """Records of one chunk: text cells indexed by line, and structural rejects."""

    frame: pd.DataFrame
    raws: dict[int, str]
    rejects: list[Reject] = field(default_factory=list)
    bytes_read: int = 0


# ---------------------------------------------------------------- encoding


def detect_encoding(path: Path) -> tuple[str, int]:
    """The file's encoding and BOM length, judged on the whole file.

    A BOM decides. Otherwise UTF-8 if the bytes are UTF-8 (a few invalid
    sequences among many valid ones still count: those rows are rejected
    later); else Windows-1252, or Latin-1 for bytes 1252 leaves undefined.
    """
    with open(path, "rb") as stream:
        head = stream.read(4)
        for bom, name in _BOMS:
            if head.startswith(bom):
                return name, len(bom)
        stream.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        invalid = multibyte = 0
        cp1252_undefined = False
        while block := stream.read(1 << 20):
            if block.isascii():
                continue
            text = decoder.decode(block)
            bad = len(_UNDECODABLE.findall(text))
            invalid += bad
            multibyte += sum(1 for ch in text if ord(ch) > 127) - bad
            cp1252_undefined |= any(b in block for b in (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d"))
    if invalid == 0 or multibyte > invalid:
        return "utf-8", 0
    return ("latin-1" if cp1252_undefined else "cp1252"), 0


# C0 control bytes that text files do not hold (tab, LF, FF, CR, SUB and ESC excepted).
_BINARY_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0c\r\x1a\x1b")


def _looks_binary(path: Path, encoding: str) -> bool:
    if encoding.startswith("utf-16"):
        return False
    with open(path, "rb") as stream:
        head = stream.read(8192)
    # Count every control byte, not only NULs: compressed data (an image, an
    # archive) has ~0.4% NULs but ~10% control bytes; text has next to none.
    controls = len(head) - len(head.translate(None, _BINARY_BYTES))
    return controls > max(4, len(head) // 100)


def escape_undecodable(text: str) -> str:
    """Show bytes the encoding could not decode as \\xNN, so the text can be stored and displayed."""
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def is_xlsx(path: Path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(4) == b"PK\x03\x04" and zipfile.is_zipfile(path)


# ---------------------------------------------------------------- dialect


def _sniffed(value) -> str | None:
    return None if value in (None, "", "(empty)") else value


def _utf8_sample(path: Path, encoding: str, bom: int) -> Path:
    """The first ~2 MB as UTF-8 (whole lines), for DuckDB's sniffer."""
    with open(path, "rb") as stream:
        stream.seek(bom)
        data = stream.read(SAMPLE_BYTES)
    text = data.decode(encoding, errors="replace")
    if len(data) == SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    sample = Path(tempfile.mkstemp(suffix=".csv", prefix="bulkimport-sniff-")[1])
    sample.write_text(text, encoding="utf-8")
    return sample


def sniff(path: Path, encoding: str, bom: int) -> Dialect:
    """Ask DuckDB's sniffer for the delimiter, quote, escape and preamble rows."""
    sample = _utf8_sample(path, encoding, bom)
    con = duckdb.connect()
    try:
        row = con.execute(
            "SELECT Delimiter, Quote, Escape, SkipRows FROM sniff_csv(?, all_varchar = true, sample_size = -1, "
            "null_padding = true, ignore_errors = true)",
            [str(sample)],
        ).fetchone()
    except duckdb.Error:
        row = (None, None, None, 0)  # fall back to the defaults; the header check decides
    finally:
        con.close()
        sample.unlink(missing_ok=True)
    delimiter, quote, escape, skip = row
    quote = _sniffed(quote) or '"'
    escape = _sniffed(escape)
    return Dialect(encoding=encoding, bom_bytes=bom, delimiter=_sniffed(delimiter) or ",", quote=quote,
                   escape=None if escape == quote else escape, header_row=int(skip or 0) + 1)


def normalise(name: str) -> str:
    """Compare headers ignoring case, spaces and punctuation."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def _known_names(dataset: Dataset) -> dict[str, str]:
    names = {}
    for column in dataset.columns:
        names[normalise(column)] = column
        for alias in dataset.aliases.get(column, ()):
            names[normalise(alias)] = column
    return names


def _skip_bom_character(stream, dialect: Dialect) -> None:
    # utf-8-sig drops the BOM itself; utf-16-le/-be hand it over as U+FEFF.
    if dialect.bom_bytes and dialect.encoding in ("utf-16-le", "utf-16-be"):
        stream.read(1)


def _header_lines(path: Path, dialect: Dialect, lines: int = 30) -> list[str]:
    with open(path, encoding=dialect.encoding, errors="replace", newline="") as stream:
        _skip_bom_character(stream, dialect)
        return [stream.readline(MAX_LINE_CHARS) for _ in range(lines)]


def _score(line: str, delimiter: str, quote: str, known: dict[str, str]) -> int:
    try:
        names = next(csv.reader([line], delimiter=delimiter, quotechar=quote))
    except (csv.Error, StopIteration):
        return 0
    return sum(normalise(n) in known for n in names)


def locate_header(path: Path, dialect: Dialect, dataset: Dataset, fixed: set[str] = frozenset()) -> Dialect:
    """Pick the delimiter and header line that name the most dataset columns.

    The sniffer judges by how consistent rows are; a file with many broken rows
    or a preamble can mislead it, while the header names what we expect.
    Fields the user set (``fixed``) are kept.
    """
    known = _known_names(dataset)
    lines = _header_lines(path, dialect)
    delimiters = [dialect.delimiter] if "delimiter" in fixed else [dialect.delimiter, *CANDIDATE_DELIMITERS]
    rows = [dialect.header_row] if "header_row" in fixed else [dialect.header_row, *range(1, len(lines) + 1)]
    best, best_score = (dialect.delimiter, dialect.header_row), -1
    for row in rows:
        if row > len(lines):
            continue
        for delimiter in delimiters:
            score = _score(lines[row - 1], delimiter, dialect.quote, known)
            if score > best_score:  # ties keep the sniffed choice (tried first)
                best, best_score = (delimiter, row), score
    return replace(dialect, delimiter=best[0], header_row=best[1])


def detect_dialect(path: Path, dataset: Dataset, overrides: dict | None = None) -> Dialect:
    """Encoding, delimiter, quote, escape and header line: detected, then the user's overrides."""
    overrides = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
    if "encoding" in overrides:
        encoding = _check_encoding(overrides["encoding"])
        with open(path, "rb") as stream:
            head = stream.read(4)
        bom = _BOM_OF.get(encoding, b"\xff\xff\xff\xff\xff")
        bom_bytes = len(bom) if head.startswith(bom) else 0
        if encoding == "utf-8" and bom_bytes:
            encoding = "utf-8-sig"
    else:
        encoding, bom_bytes = detect_encoding(path)
    overrides["encoding"] = encoding
    dialect = replace(sniff(path, encoding, bom_bytes), **overrides, bom_bytes=bom_bytes)
    return locate_header(path, dialect, dataset, fixed=set(overrides) - {"encoding"})


def _check_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise FileRefused(f"unknown encoding {name!r}; try one of {', '.join(ENCODINGS)}") from None


# ---------------------------------------------------------------- records


def _size_codec(encoding: str) -> str:
    """The codec that measures text in the file's bytes: utf-8-sig would count a BOM for every line."""
    return "utf-8" if encoding == "utf-8-sig" else encoding


BLOCK_CHARS = 1 << 20
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")  # what readline() calls a line with newline=""


class _BufferedLines:
    """``readline(limit)`` over a text stream read in large blocks, and whole runs of plain lines.

    A plain line has none of ``special`` (quote, escape, NUL) and no undecodable byte, so
    it is one record by itself: ``plain_run`` hands such runs out in one piece.
    """

    def __init__(self, stream, special: str):
        self.stream = stream
        self.lines: list[str] = []
        self.next = 0  # index of the next line to hand out
        self.partial = ""  # text after the last complete line
        self.eof = False
        self.not_plain: list[int] | None = None  # indexes of the block's lines that are not plain
        self._special = re.compile("[" + re.escape(special) + "\udc00-\udcff]")

    def _refill(self, limit: int) -> bool:
        """Read until there is a complete line; False at the end or when the text runs past ``limit``."""
        self.lines, self.next, self.not_plain = [], 0, None
        while True:
            block = "" if self.eof else self.stream.read(BLOCK_CHARS)
            self.eof = not block
            text = self.partial + block
            # Up to the last line end only: on text with no line end, findall would rescan it from every position.
            end = max(text.rfind("\n"), text.rfind("\r")) + 1
            lines = _LINE.findall(text, 0, end) if end else []
            self.partial = text[end:]
            if lines and not self.eof and not self.partial and lines[-1].endswith("\r"):
                self.partial = lines.pop()  # the next block may start with the \n of this \r\n
            if lines:
                self.lines = lines
                return True
            if self.eof or len(self.partial) > limit:
                return False

    def readline(self, limit: int) -> str:
        if self.next >= len(self.lines) and not self._refill(limit):
            line, self.partial = self.partial[:limit], self.partial[limit:]
            return line
        line = self.lines[self.next]
        if len(line) > limit:  # hand out a long line in pieces, as TextIOWrapper.readline(limit) does
            self.lines[self.next] = line[limit:]
            if self.not_plain is not None:
                bisect.insort(self.not_plain, self.next)
            return line[:limit]
        self.next += 1
        return line

    def plain_run(self, max_chars: int) -> list[str]:
        """The plain lines from here up to the next line that is not (or the end of the block)."""
        if self.next >= len(self.lines):
            return []
        if self.not_plain is None:
            search = self._special.search
            self.not_plain = [k for k, line in enumerate(self.lines) if search(line) or len(line) > max_chars]
        stop = self.not_plain[bisect.bisect_left(self.not_plain, self.next)] \
            if self.not_plain and self.not_plain[-1] >= self.next else len(self.lines)
        run = self.lines[self.next:stop]
        self.next = stop
        return run


class _LineTap:
    """Feeds csv.reader one physical line at a time; remembers lines, bytes and pushed-back lines."""

    def __init__(self, stream, encoding: str, start_offset: int):
        self.stream = stream
        self.codec = _size_codec(encoding)
        self.unit = 2 if encoding.startswith("utf-16") else 1
        self.lines: list[str] = []
        self.sizes: list[int] = []
        self.pending: list[tuple[str, int]] = []
        self.lines_read = 0
        self.offset = start_offset  # bytes consumed
        self.oversize: set[int] = set()  # numbers of the lines cut at MAX_LINE_CHARS

    def __iter__(self):
        return self

    def _size(self, line: str) -> int:
        return len(line) * self.unit if line.isascii() else byte_length(line, self.codec)

    def __next__(self) -> str:
        if self.pending:
            line, size = self.pending.pop()
        else:
            line = self.stream.readline(MAX_LINE_CHARS + 1)
            if not line:
                raise StopIteration
            size = self._size(line)
            if len(line) > MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
                while (more := self.stream.readline(MAX_LINE_CHARS)) and not more.endswith(("\n", "\r")):
                    size += self._size(more)
                size += self._size(more)
                self.oversize.add(self.lines_read + 1)
                line = line[:200] + f"... [line longer than {MAX_LINE_CHARS:,} characters]\n"
        self.lines.append(line)
        self.sizes.append(size)
        self.lines_read += 1
        self.offset += size
        return line

    def take(self) -> tuple[int, list[str], int]:
        """(first line number, the record's lines, byte offset of its start)."""
        lines, start_offset = self.lines, self.offset - sum(self.sizes)
        first = self.lines_read - len(lines) + 1
        self.lines, self.sizes = [], []
        return first, lines, start_offset

    def push_back(self, lines: list[str], sizes: list[int]) -> None:
        for line, size in reversed(list(zip(lines, sizes, strict=True))):
            self.pending.append((line, size))
            self.lines_read -= 1
            self.offset -= size

    def plain_block(self) -> LineBlock | None:
        """At a record boundary: the next run of plain lines as one block, if there is one."""
        if self.pending or self.lines:
            return None
        run = self.stream.plain_run(MAX_LINE_CHARS)
        if not run:
            return None
        text = "".join(run)
        size = len(text) * self.unit if text.isascii() else byte_length(text, self.codec)
        block = LineBlock(self.lines_read + 1, run, self.offset, size)
        self.lines_read += len(run)
        self.offset += size
        return block


def _reader(tap: _LineTap, dialect: Dialect):
    return csv.reader(tap, delimiter=dialect.delimiter, quotechar=dialect.quote, escapechar=dialect.escape,
                      doublequote=dialect.escape is None, strict=True)


def named_width(header: list[str]) -> int:
    """Cells a row must have: up to the header's last named column (a header may end in delimiters)."""
    return max((i + 1 for i, name in enumerate(header) if name.strip()), default=0)


@dataclass(frozen=True)
class RowShape:
    """How many cells a row must and may have, worked out once from the header."""

    needed: int  # up to the last named column
    width: int  # every header cell

    @classmethod
    def of(cls, header: list[str]) -> RowShape:
        return cls(named_width(header), len(header))

    def problem(self, cells: list[str]) -> str | None:
        """`missing-cell` when a row stops before the last named column, `extra-cell` when it
        has values beyond the header; None when it fits."""
        if len(cells) < self.needed:
            return "missing-cell"
        if len(cells) > self.width and any(c.strip() for c in cells[self.width:]):
            return "extra-cell"
        return None


def text_records(path: Path, dialect: Dialect) -> Iterator[Record]:
    """Every record after the preamble (the header first), each with its line and raw text.

    A record that spans lines and turns out broken (an unterminated or stray
    quote swallowing the lines after it) is cut back to its first line, which
    is rejected, and parsing resumes on the next line.
    """
    return _text_items(path, dialect, blocks=False)


def text_items(path: Path, dialect: Dialect) -> Iterator[Record | LineBlock]:
    """As text_records, but after the header runs of plain lines come as LineBlocks."""
    return _text_items(path, dialect, blocks=True)


def _text_items(path: Path, dialect: Dialect, blocks: bool) -> Iterator[Record | LineBlock]:
    with open(path, encoding=dialect.encoding, errors=BYTES, newline="") as stream:
        _skip_bom_character(stream, dialect)
        tap = _LineTap(_BufferedLines(stream, dialect.quote + (dialect.escape or "") + "\0"),
                       dialect.encoding, dialect.bom_bytes)
        for _ in range(dialect.header_row - 1):
            next(tap, None)
        tap.take()
        reader = _reader(tap, dialect)
        shape = None
        while True:
            if blocks and shape is not None and (block := tap.plain_block()):
                yield block
                continue
            sizes_before = None
            try:
                cells, error = next(reader), None
            except StopIteration:
                break
            except csv.Error as exc:
                cells, error = None, exc
            sizes_before = list(tap.sizes)
            line, lines, offset = tap.take()
            raw = "".join(lines).rstrip("\r\n")
            # Judged as read_chunks judges rows: a header or rows ending in a delimiter
            # (one nameless cell more or less) used to count as broken here.
            broken = error is not None or (shape is not None and shape.problem(cells) is not None)
            # A line cut at the size limit may have been cut inside a quoted value, which
            # then swallows the lines after it: reject that line alone, as too long.
            first_too_long = line in tap.oversize
            if (broken or first_too_long) and len(lines) > 1:
                tap.push_back(lines[1:], sizes_before[1:])
                tap.oversize.discard(line)
                reader = _reader(tap, dialect)
                raw = lines[0].rstrip("\r\n")
                if first_too_long:
                    yield Record(line, None, raw, offset, "line-too-long", f"over {MAX_LINE_CHARS:,} characters")
                else:
                    yield Record(line, None, raw, offset, "malformed-quote",
                                 f"a quote opened on line {line} is not closed on that line; the line was not parsed")
                continue
            span = set(range(line, line + len(lines)))
            if span & tap.oversize:
                tap.oversize -= span
                yield Record(line, None, raw, offset, "line-too-long", f"over {MAX_LINE_CHARS:,} characters")
                continue
            if error is not None:
                yield Record(line, None, raw, offset, "malformed-quote", f"cannot parse: {error}")
                continue
            if shape is None:
                shape = RowShape.of(cells)
            yield Record(line, cells, raw, offset)


MAX_XLSX_PART_BYTES = 512 << 20
MAX_XLSX_RATIO = 200


def _refuse_zip_bomb(path: Path) -> None:
    """Refuse a workbook whose parts would inflate far beyond any real sheet, before reading it."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileRefused(f"{path.name}: not a readable .xlsx workbook ({exc})") from exc
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > MAX_XLSX_PART_BYTES or (part.file_size > (16 << 20) and ratio > MAX_XLSX_RATIO):
            raise FileRefused(
                f"{path.name}: refused: its part {part.filename} would inflate to {part.file_size / 2**20:,.0f} MB "
                f"(from {part.compress_size / 2**20:,.1f} MB); a real sheet is not like that. "
                "Export the sheet as CSV and upload that instead")


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
            raise FileRefused(f"{path.name}: not a readable .xlsx workbook: the sheet is damaged after row "
                              f"{number} ({type(exc).__name__}: {exc})") from exc
        number += 1
        yield values


def _cell_text(value) -> str:
    if hasattr(value, "date") and hasattr(value, "hour"):
        return value.date().isoformat() if (value.hour, value.minute, value.second) == (0, 0, 0) else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------- header mapping


@dataclass(frozen=True)
class HeaderMatch:
    """How a file's header lines up with a dataset's columns."""

    header: list[str]
    mapping: dict[str, str]  # file column -> dataset column
    suggestions: dict[str, str]  # unmatched file column -> a close dataset column (offered, not applied)
    missing: list[str]  # required dataset columns nobody maps to
    extra: list[str]  # file columns that are ignored


def match_header(header: list[str], dataset: Dataset, chosen: dict[str, str | None] | None = None) -> HeaderMatch:
    """Match by normalised name and aliases, then apply the user's ``chosen`` entries on top.

    A chosen entry maps a file column to a dataset column (taking that column
    from any other file column) or, with an empty value, ignores it.
    """
    known = _known_names(dataset)
    mapping: dict[str, str] = {}
    for name in header:
        column = known.get(normalise(name))
        if column and column not in mapping.values() and name not in mapping:
            mapping[name] = column
    for name, column in (chosen or {}).items():
        if name not in header:
            continue
        if column:
            mapping = {h: c for h, c in mapping.items() if c != column}
            mapping[name] = column
        else:
            mapping.pop(name, None)
    mapping = {h: mapping[h] for h in header if h in mapping}  # file order
    unmatched = [h for h in header if h not in mapping and h.strip()]
    free = [c for c in dataset.columns if c not in mapping.values()]
    suggestions = {}
    for name in unmatched:
        close = difflib.get_close_matches(normalise(name), [normalise(c) for c in free], n=1, cutoff=0.6)
        if close:
            suggestions[name] = next(c for c in free if normalise(c) == close[0])
    missing = [c for c in dataset.required if c not in mapping.values()]
    return HeaderMatch(header, mapping, suggestions, missing, unmatched)


def refuse_missing(match: HeaderMatch, dataset: Dataset, file_name: str) -> None:
    if not match.missing:
        return
    hints = []
    for column in match.missing:
        close = difflib.get_close_matches(column, match.header, n=2, cutoff=0.5)
        close += [h for h, c in match.suggestions.items() if c == column and h not in close]
        hints.append(column + (f" (closest in file: {', '.join(map(repr, close))})" if close else ""))
    raise FileRefused(
        f"{file_name}: the header lacks required column(s) {', '.join(hints)}. "
        f"Found columns: {', '.join(map(repr, match.header)) or 'none'}. "
        f"Dataset {dataset.name!r} expects: {', '.join(dataset.columns)}."
    )


# ---------------------------------------------------------------- the whole read


@dataclass(frozen=True)
class Source:
    """What was found in a file: its dialect (text) or sheet (xlsx), header and column mapping."""

    kind: str  # "text" or "xlsx"
    dialect: Dialect | None
    match: HeaderMatch
    header_line: int
    remembered: bool = False  # the mapping is one a user chose earlier for this header


def records(path: Path, kind: str, dialect: Dialect | None, sheet: str | None) -> Iterator[Record]:
    return xlsx_records(path, sheet) if kind == "xlsx" else text_records(path, dialect)


def open_source(path: Path, dataset: Dataset, file_name: str, overrides: dict | None = None,
                mapping: dict[str, str] | None = None,
                remembered: Callable[[list[str]], dict[str, str] | None] | None = None,
                refuse: bool = True) -> Source:
    """Detect how the file is written and match its header; FileRefused if nothing can be read.

    ``mapping`` is the user's choice; else ``remembered(header)`` may offer the
    one chosen last time for the same header; else names and aliases decide.
    With ``refuse=False`` missing columns are reported in the match, not raised.
    """
    overrides = dict(overrides or {})
    sheet = overrides.pop("sheet", None)
    if path.stat().st_size == 0:
        raise FileRefused(f"{file_name}: the file is empty; expected a header with {', '.join(dataset.columns)}")
    if is_xlsx(path):
        kind, dialect = "xlsx", None
    else:
        kind, dialect = "text", detect_dialect(path, dataset, overrides)
        if _looks_binary(path, dialect.encoding):
            raise FileRefused(f"{file_name}: this is not a text file (it holds binary data); "
                              f"upload a CSV or an .xlsx workbook with columns {', '.join(dataset.columns)}")
    if kind == "xlsx":
        first = _xlsx_header(path, sheet, dataset, overrides.get("header_row"))
    else:
        first = next(records(path, kind, dialect, sheet), None)
    if first is None or not first.cells or not any(c.strip() for c in first.cells):
        raise FileRefused(f"{file_name}: no header row found; expected {', '.join(dataset.columns)}")
    header = [c.strip() for c in first.cells]
    earlier = None if mapping or remembered is None else remembered(header)
    match = match_header(header, dataset, mapping or earlier)
    if refuse:
        refuse_missing(match, dataset, file_name)
    return Source(kind, dialect, match, first.line, remembered=bool(earlier))


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


def read_chunks(path: Path, dataset: Dataset, chunk_rows: int, source: Source, sheet: str | None = None,
                blocks: bool = True) -> Iterator[Chunk]:
    """Yield chunks of records after the header; structural problems become rejects.

    ``blocks=False`` reads one record at a time, never in bulk: the slower reference
    that the tests hold the bulk path to.
    """
    header = source.match.header
    shape = RowShape.of(header)
    positions = [header.index(h) for h in source.match.mapping]
    columns = list(source.match.mapping.values())
    width = len(header)
    values: list[list[str | None]] = [[] for _ in columns]  # the chunk's rows, column by column
    lines: list[int] = []
    raws: dict[int, str] = {}
    rejects: list[Reject] = []
    bytes_read = 0

    def flush() -> Chunk:
        frame = pd.DataFrame(dict(zip(columns, values, strict=True)), index=pd.Index(lines, name="line"),
                             dtype=object)
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
            rejects.append(Reject(line, "invalid-encoding", value=f"\\x{byte:02x}",
                                  detail=f"byte {offset} (0x{byte:02x}) is not valid {source.dialect.encoding}",
                                  raw=escape_undecodable(raw)))
        elif not cells or not "".join(cells).strip():
            rejects.append(Reject(line, "blank-row", detail="the row has no values", raw=raw))
        elif problem := shape.problem(cells):
            expected = shape.needed if problem == "missing-cell" else shape.width
            rejects.append(Reject(line, problem, detail=f"expected {expected} cells, found {len(cells)}", raw=raw))
        else:
            for column_values, i in zip(values, positions, strict=True):
                column_values.append(cells[i].strip() or None)
            lines.append(line)
            raws[line] = raw

    def add_block(first: int, block_raws: list[str], offset: int) -> None:
        """Plain lines: split in bulk; the few that do not fit the header go through ``add``, in order."""
        rows = [raw.split(delimiter) for raw in block_raws]
        odd = [k for k, (raw, cells) in enumerate(zip(block_raws, rows, strict=True))
               if not shape.needed <= len(cells) <= width or raw.strip(blank) == ""]
        start = 0
        for stop in [*odd, len(rows)]:
            for column_values, i in zip(values, positions, strict=True):
                column_values.extend([cells[i].strip() or None for cells in rows[start:stop]])
            lines.extend(range(first + start, first + stop))
            raws.update(zip(range(first + start, first + stop), block_raws[start:stop], strict=True))
            if stop < len(rows):
                raw = block_raws[stop]
                add(Record(first + stop, raw.split(delimiter) if raw else [], raw, offset))
            start = stop + 1

    delimiter = source.dialect.delimiter if source.dialect else ","
    blank = delimiter + " \t"
    if source.kind == "text":
        stream = text_items(path, source.dialect) if blocks else text_records(path, source.dialect)
    else:
        stream = records(path, source.kind, None, sheet)
    for record in stream:  # up to the header (a sheet may have rows above it)
        if record.line >= source.header_line:
            break
    for item in stream:
        if isinstance(item, LineBlock):
            done = 0
            while done < len(item.lines):  # in pieces that fill the chunk exactly
                room = chunk_rows - len(lines) - len(rejects)
                piece = item.lines[done:done + room]
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
