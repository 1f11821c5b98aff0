"""Whether the fast path can take a file, and the numpy scan of its bytes: where lines start, what they hold."""

from __future__ import annotations

import codecs
import dataclasses
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bulkimport.config import settings
from bulkimport.stages.compile import CompiledDataset
from bulkimport.stages.read import Dialect, Record, Source, text_records
from bulkimport.stages.read import records as careful_records

BLOCK_BYTES = 16 << 20
# Dialect fields the fast path reads itself; any other field away from its default sends the file the careful way.
_KNOWN_DIALECT = {"encoding", "delimiter", "quote", "escape", "header_row", "bom_bytes"}
_UTF8 = ("utf-8", "utf-8-sig", "ascii")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
