"""How a delimited file is written (the Dialect), and what DuckDB's sniffer proposes."""

from __future__ import annotations

import csv
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import duckdb

MAX_LINE_CHARS = 1_000_000  # a longer line is rejected alone, as line-too-long
SAMPLE_BYTES = 2 << 20


@dataclass(frozen=True)
class Dialect:
    """How a delimited file is written. Stored on the job; any field can be overridden at submit."""

    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'  # "" when the file quotes nothing: every quote character is part of its cell
    escape: str | None = None
    header_row: int = 1  # 1-based line of the header; lines before it are a preamble
    bom_bytes: int = 0
    skip_initial_space: bool = False  # `a, "b"`: spaces after a delimiter are not part of the next cell
    lenient_header: bool = False  # the header line holds a stray quote: its names are read with quotes ignored
    header_split: tuple[int, int] | None = None  # (cell, offset): a header cell that lost a delimiter, cut there
    columns: tuple[str, ...] | None = None  # no header line: the cells are these columns, rows start at header_row

    def __post_init__(self):
        # From a job's JSON the tuples come back as lists.
        if self.header_split is not None:
            object.__setattr__(self, "header_split", tuple(self.header_split))
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(self.columns))

    def to_dict(self) -> dict:
        found = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in found.items()}  # as JSON keeps them

    @classmethod
    def from_dict(cls, found: dict) -> Dialect:
        """The dialect recorded on a job (its `dialect`, which holds more than the dialect)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in found.items() if k in names})

    def csv_options(self) -> dict:
        """Keyword arguments for Python's csv.reader."""
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quote or None,
            "quoting": csv.QUOTE_MINIMAL if self.quote else csv.QUOTE_NONE,
            "escapechar": self.escape,
            "doublequote": self.escape is None,
            "skipinitialspace": self.skip_initial_space,
        }


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
