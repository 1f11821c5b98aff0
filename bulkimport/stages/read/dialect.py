"""How a delimited file is written: DuckDB's sniffer, then the header line that names the most columns."""

from __future__ import annotations

import csv
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import duckdb

from bulkimport.datasets import Dataset
from bulkimport.stages.read.encoding import _BOM_OF, _check_encoding, detect_encoding
from bulkimport.stages.read.header import _known_names, normalise

MAX_LINE_CHARS = 1_000_000  # a longer line is rejected alone, as line-too-long
SAMPLE_BYTES = 2 << 20
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


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
    return Dialect(
        encoding=encoding,
        bom_bytes=bom,
        delimiter=_sniffed(delimiter) or ",",
        quote=quote,
        escape=None if escape == quote else escape,
        header_row=int(skip or 0) + 1,
    )


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
