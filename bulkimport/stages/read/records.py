"""Split a text file into records, each knowing its lines, raw text and byte offset."""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from bulkimport.stages.read.dialect import MAX_LINE_CHARS, Dialect, _skip_bom_character
from bulkimport.stages.read.encoding import BYTES, _size_codec, byte_length

csv.field_size_limit(sys.maxsize)
# Cells are trimmed of spaces and tabs only: other whitespace (a no-break space, say) is text.
PADDING = " \t"


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


BLOCK_CHARS = 1 << 20
STRETCH_BLOCK_CHARS = 4096
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")  # what readline() calls a line with newline=""


class _BufferedLines:
    """``readline(limit)`` over a text stream read in large blocks, and whole runs of plain lines.

    A plain line has none of ``special`` (quote, escape, NUL) and no undecodable byte, so
    it is one record by itself: ``plain_run`` hands such runs out in one piece.
    """

    def __init__(self, stream, special: str, block_chars: int | None = None):
        self.stream = stream
        self.block_chars = block_chars  # None: BLOCK_CHARS (read when used: tests lower it)
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
            block = "" if self.eof else self.stream.read(self.block_chars or BLOCK_CHARS)
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
        stop = (
            self.not_plain[bisect.bisect_left(self.not_plain, self.next)]
            if self.not_plain and self.not_plain[-1] >= self.next
            else len(self.lines)
        )
        run = self.lines[self.next : stop]
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
    return csv.reader(tap, strict=True, **dialect.csv_options())


def _not_plain(dialect: Dialect) -> str:
    """Characters that keep a line off the bulk path, which splits plain lines on the delimiter."""
    special = dialect.quote + (dialect.escape or "") + "\0"
    if dialect.skip_initial_space and dialect.delimiter == " ":
        special += " "  # a run of spaces is one delimiter there, not empty cells
    return special


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
        if len(cells) > self.width and any(c.strip() for c in cells[self.width :]):
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


def sample_records(lines: list[str], dialect: Dialect, limit: int) -> list[Record]:
    """Up to ``limit`` records of ``lines`` (the file's lines from its header on), read as the file would be."""
    dialect = replace(dialect, header_row=1, bom_bytes=0)
    tap = _LineTap(_BufferedLines(io.StringIO("".join(lines), newline=""), _not_plain(dialect)), dialect.encoding, 0)
    return list(itertools.islice(_from_header(tap, dialect, False), limit))


def records_from(
    path: Path, dialect: Dialect, byte_offset: int, line: int, shape: RowShape, stop_before: Callable[[int], bool]
) -> Iterator[Record]:
    """Records from the one starting at ``line`` (``byte_offset`` bytes into the file), as text_records
    reads them, until a record ends just before a line for which ``stop_before(line)`` is true.

    The staging fast path hands the lines around a quoted value that spans lines to this reader.
    """
    with open(path, "rb") as binary:
        binary.seek(byte_offset)
        stream = io.TextIOWrapper(binary, encoding=dialect.encoding, errors=BYTES, newline="")
        # Small blocks: a stretch is a few lines, and the fast path may read thousands of them.
        lines = _BufferedLines(stream, _not_plain(dialect), block_chars=STRETCH_BLOCK_CHARS)
        tap = _LineTap(lines, dialect.encoding, 0)
        tap.lines_read, tap.offset = line - 1, byte_offset
        yield from _records(tap, dialect, False, shape, stop_before)


def _text_items(path: Path, dialect: Dialect, blocks: bool) -> Iterator[Record | LineBlock]:
    with open(path, encoding=dialect.encoding, errors=BYTES, newline="") as stream:
        _skip_bom_character(stream, dialect)
        tap = _LineTap(_BufferedLines(stream, _not_plain(dialect)), dialect.encoding, dialect.bom_bytes)
        for _ in range(dialect.header_row - 1):
            next(tap, None)
        tap.take()
        yield from _from_header(tap, dialect, blocks)


def lenient_cells(line: str, dialect: Dialect) -> list[str]:
    """A header line with a stray quote in it: split on the delimiter with quotes ignored, and dropped."""
    options = dialect.csv_options() | {"quoting": csv.QUOTE_NONE, "quotechar": None}
    cells = next(csv.reader([line.rstrip("\r\n")], **options), [])
    return [cell.replace(dialect.quote, "") for cell in cells] if dialect.quote else cells


def split_header(cells: list[str], dialect: Dialect) -> list[str]:
    """The header with the cell that lost a delimiter (``dialect.header_split``) cut in two."""
    if dialect.header_split is None:
        return cells
    cell, at = dialect.header_split
    if cell >= len(cells) or not 0 < at < len(cells[cell]):
        return cells
    return [*cells[:cell], cells[cell][:at], cells[cell][at:], *cells[cell + 1 :]]


def _from_header(tap: _LineTap, dialect: Dialect, blocks: bool) -> Iterator[Record | LineBlock]:
    """The header record (read leniently, or none at all: ``dialect.columns``), then the records after it."""
    shape = None
    if dialect.columns is not None:  # no header line: rows start here
        shape = RowShape.of(list(dialect.columns))
    elif dialect.lenient_header:  # the header line alone, its quotes ignored
        if (header := next(tap, None)) is None:
            return
        line, _, offset = tap.take()
        cells = split_header(lenient_cells(header, dialect), dialect)
        shape = RowShape.of(cells)
        yield Record(line, cells, header.rstrip("\r\n"), offset)
    yield from _records(tap, dialect, blocks, shape)


def _records(
    tap: _LineTap,
    dialect: Dialect,
    blocks: bool,
    shape: RowShape | None = None,
    stop_before: Callable[[int], bool] | None = None,
) -> Iterator[Record | LineBlock]:
    reader = _reader(tap, dialect)
    while True:
        if stop_before and not tap.pending and not tap.lines and stop_before(tap.lines_read + 1):
            return
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
        # Judged as read_chunks judges rows, so a row ending in a delimiter (one nameless
        # cell more or less) is not broken here when read_chunks would accept it.
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
                yield Record(
                    line,
                    None,
                    raw,
                    offset,
                    "malformed-quote",
                    f"a quote opened on line {line} is not closed on that line; the line was not parsed",
                )
            continue
        span = set(range(line, line + len(lines)))
        if span & tap.oversize:
            tap.oversize -= span
            yield Record(line, None, raw, offset, "line-too-long", f"over {MAX_LINE_CHARS:,} characters")
            continue
        if error is not None:
            yield Record(line, None, raw, offset, "malformed-quote", f"cannot parse: {error}")
            continue
        if shape is None:  # the header
            cells = split_header(cells, dialect)
            shape = RowShape.of(cells)
        yield Record(line, cells, raw, offset)
