"""Choose how a delimited file is written by weighing the readings it allows.

DuckDB's sniffer proposes a delimiter, quote, escape and preamble; the usual
alternatives are weighed next to it (delimiters , ; tab | and space; quotes " and ';
doubled quotes or backslash escapes; spaces after a delimiter kept or skipped).
Each reading is judged on the file's first lines: first by how many dataset columns
its header line names (the header says what we expect, where a preamble or broken
rows mislead the sniffer), then by how many sample rows it reads cleanly (parsed,
the header's number of cells, no stray quote). Ties keep the sniffer's delimiter,
doubled quotes, no escape and spaces kept: what changes fewest bytes. A file that
quotes nothing is never read that way unless asked (``quote`` "none"): its quotes
may be damage, so the reading is only offered. The readings weighed are kept, with
what was found in the header (a stray quote, a lost delimiter), for the preview.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, replace
from pathlib import Path

from bulkimport.datasets import Dataset
from bulkimport.stages.read.dialect import MAX_LINE_CHARS, Dialect, _skip_bom_character, sniff
from bulkimport.stages.read.encoding import _BOM_OF, _check_encoding, detect_encoding
from bulkimport.stages.read.header import _known_names, lost_delimiter_splits, normalise
from bulkimport.stages.read.quoting import stray_quote
from bulkimport.stages.read.records import RowShape, lenient_cells, sample_records, split_header

DELIMITERS = (",", ";", "\t", "|", " ")
QUOTES = ('"', "'")  # in this order, whatever the sniffer says: ties keep the usual quote
ESCAPES = (None, "\\")
HEADER_LINES = 30  # the header may be on any of the first 30 lines
SAMPLE_ROWS = 100  # rows after the header that judge a reading
SAMPLE_CHARS = 1 << 20
SHOWN_ALTERNATIVES = 5  # readings listed next to the chosen one
HEADER_RECORD_LINES = 5  # a header record longer than this is a broken one
NONE = "none"  # an override meaning "no quote character" or "no escape" or "no header split"


@dataclass(frozen=True)
class Reading:
    """One way to read the file, and how well it reads the first lines."""

    dialect: Dialect
    names: int  # dataset columns its header line names
    fits: int | None = None  # sample rows read cleanly (None: not judged, it names fewer columns)
    rows: int = 0  # sample rows

    def score(self) -> tuple[int, int]:
        return self.names, self.fits or 0

    def describe(self) -> str:
        d = self.dialect
        parts = [
            f"delimiter {_shown(d.delimiter)}",
            f"quote {_shown(d.quote)}",
            "backslash escapes" if d.escape == "\\" else f"escape {_shown(d.escape)}" if d.escape else "doubled quotes",
        ]
        if d.skip_initial_space:
            parts.append("spaces after a delimiter skipped")
        return ", ".join(parts)

    def to_dict(self, why: str, chosen: bool = False) -> dict:
        found = {
            "reading": self.describe(),
            "delimiter": self.dialect.delimiter,
            "quote": self.dialect.quote,
            "escape": self.dialect.escape,
            "skip_initial_space": self.dialect.skip_initial_space,
            "header_line": self.dialect.header_row,
            "header_names": self.names,
            "rows_read_cleanly": self.fits,
            "sample_rows": self.rows,
            "why": why,
        }
        return {"chosen": chosen, **found}


def _shown(value: str | None) -> str:
    return {None: "none", "": "none", "\t": "tab", " ": "space"}.get(value, repr(value))


@dataclass(frozen=True)
class Detection:
    """The dialect chosen, the readings weighed, and what was found on the way."""

    dialect: Dialect
    readings: list[dict]  # the chosen reading first, then the alternatives, each with why
    notes: list[str]  # findings a person should see (and may override)


def _sample(path: Path, dialect: Dialect) -> list[str]:
    """The file's first lines (whole lines, up to SAMPLE_CHARS in all)."""
    lines, size = [], 0
    with open(path, encoding=dialect.encoding, errors="replace", newline="") as stream:
        _skip_bom_character(stream, dialect)
        while len(lines) < HEADER_LINES + 2 * SAMPLE_ROWS and (line := stream.readline(MAX_LINE_CHARS)):
            lines.append(line)
            size += len(line)
            if size > SAMPLE_CHARS:
                break
    return lines


def _unique(values) -> list:
    return list(dict.fromkeys(values))


class _Judge:
    """Reads the sample under one dialect after another, remembering what it read."""

    def __init__(self, lines: list[str], known: dict[str, str]):
        self.lines, self.known = lines, known
        self.cache: dict[Dialect, list] = {}

    def records(self, dialect: Dialect, limit: int) -> list:
        key = replace(dialect, encoding="", bom_bytes=0)
        if key not in self.cache or len(self.cache[key]) < limit:
            start = dialect.header_row - 1
            self.cache[key] = sample_records(self.lines[start:], dialect, limit) if start < len(self.lines) else []
        return self.cache[key][:limit]

    def names(self, dialect: Dialect) -> int:
        """Dataset columns the header line names, read as a record (a quoted name may span a few lines)."""
        if dialect.columns is not None:
            return len(dialect.columns)
        start = dialect.header_row - 1
        lines = itertools.islice(self.lines, start, start + HEADER_RECORD_LINES)
        try:
            header = next(csv.reader(lines, strict=True, **dialect.csv_options()))
        except (csv.Error, StopIteration):
            return 0
        return sum(normalise(name) in self.known for name in split_header(header, dialect))

    def lenient_names(self, dialect: Dialect) -> int:
        start = dialect.header_row - 1
        if start >= len(self.lines):
            return 0
        header = split_header(lenient_cells(self.lines[start], dialect), dialect)
        return sum(normalise(name) in self.known for name in header)

    def fits(self, dialect: Dialect, header: list[str] | None = None, exact: int | None = None) -> tuple[int, int]:
        """(sample rows read cleanly, sample rows): parsed, as many cells as the header (exactly ``exact``
        if given), no stray quote."""
        records = self.records(dialect, SAMPLE_ROWS + 1)
        rows = records if dialect.columns is not None else records[1:]
        if header is None:
            header = list(dialect.columns) if dialect.columns is not None else (records[0].cells if records else None)
        if not header:
            return 0, len(rows)
        shape = RowShape.of(header)
        # A double quote in an unquoted cell is damage in a single-quoted reading too: without
        # this, inch marks or a lost delimiter would make such a reading look cleaner than the usual one.
        also = '"' if dialect.quote and dialect.quote != '"' else ""
        others = tuple(q for q in QUOTES if q != dialect.quote)
        clean = sum(
            1
            for r in rows
            if r.cells is not None
            and r.reason is None
            and "".join(r.cells).strip()
            and shape.problem(r.cells) is None
            and (exact is None or len(r.cells) == exact)
            and stray_quote(r.raw, dialect, also) is None
            and not _quoted_otherwise(r.cells, others)
        )
        return clean, len(rows)


def _quoted_otherwise(cells: list[str], quotes: tuple[str, ...]) -> bool:
    """A cell that opens a quote of another kind and does not close it: that quote spans a delimiter,
    so this reading splits a quoted value (`'Mug, large'` read with double quotes)."""
    for cell in cells:
        value = cell.strip(" \t")
        if len(value) > 0 and value[0] in quotes and not (len(value) > 1 and value[-1] == value[0]):
            return True
    return False


def _candidates(sniffed: Dialect, fixed: dict) -> tuple[list[Dialect], list[int]]:
    """Every reading to weigh, in order of preference (ties keep the first)."""

    def choices(name: str, options) -> list:
        return [fixed[name]] if name in fixed else _unique(options)

    rows = choices("header_row", [sniffed.header_row, *range(1, HEADER_LINES + 1)])
    out = []
    for delimiter, quote, escape, skip in itertools.product(
        choices("delimiter", [sniffed.delimiter, *DELIMITERS]),
        choices("quote", [*QUOTES, sniffed.quote]),
        choices("escape", [*ESCAPES, sniffed.escape]),
        choices("skip_initial_space", [False, True]),
    ):
        if delimiter in (quote, escape) or (escape and escape == quote):
            continue
        reading = {"delimiter": delimiter, "quote": quote, "escape": escape, "skip_initial_space": skip}
        out.append(replace(sniffed, **reading, header_row=rows[0]))
    return out, rows


def weigh(path: Path, dataset: Dataset, overrides: dict | None = None) -> Detection:
    """Encoding, delimiter, quote, escape, header line and header repairs: detected, then the user's overrides."""
    fixed = _fixed(overrides)
    if "encoding" in fixed:
        encoding = _check_encoding(fixed["encoding"])
        with open(path, "rb") as stream:
            head = stream.read(4)
        bom = _BOM_OF.get(encoding, b"\xff\xff\xff\xff\xff")
        bom_bytes = len(bom) if head.startswith(bom) else 0
        if encoding == "utf-8" and bom_bytes:
            encoding = "utf-8-sig"
    else:
        encoding, bom_bytes = detect_encoding(path)
    fixed["encoding"] = encoding
    sniffed = replace(sniff(path, encoding, bom_bytes), encoding=encoding, bom_bytes=bom_bytes)
    if "columns" in fixed:  # no header line: rows from the first line (or the line given)
        sniffed = replace(sniffed, header_row=1, columns=tuple(fixed["columns"] or dataset.columns))
    judge = _Judge(_sample(path, sniffed), _known_names(dataset))
    candidates, rows = _candidates(sniffed, fixed)

    # The header line: for each delimiter and quote, the line naming the most dataset columns.
    readings: list[Reading] = []
    header_rows: dict[tuple[str, str], tuple[int, int, bool]] = {}
    for dialect in candidates:
        if (dialect.delimiter, dialect.quote) not in header_rows:
            best = (-1, dialect.header_row, False)
            for row in rows if dialect.columns is None else [dialect.header_row]:
                at = replace(dialect, header_row=row)
                strict, lenient = judge.names(at), judge.lenient_names(at)
                if max(strict, lenient) > best[0]:  # ties keep the sniffed line (tried first)
                    best = (max(strict, lenient), row, lenient > strict)
            header_rows[dialect.delimiter, dialect.quote] = best
        names, row, lenient = header_rows[dialect.delimiter, dialect.quote]
        readings.append(Reading(replace(dialect, header_row=row, lenient_header=lenient), names))

    # Then how cleanly each reading that names the most columns reads the rows.
    most = max(r.names for r in readings)
    judged = []
    for reading in readings:
        if reading.names == most:
            fits, sample = judge.fits(reading.dialect)
            reading = replace(reading, fits=fits, rows=sample)
        judged.append(reading)
    chosen = max(judged, key=Reading.score)  # max keeps the first of equals
    dialect, notes = _repair_header(chosen.dialect, judge, dataset, fixed)
    if dialect.header_split != chosen.dialect.header_split:  # the alternatives are shown with the same cut
        judged = [_judged(replace(r.dialect, header_split=dialect.header_split), judge) for r in judged]
        chosen = _judged(dialect, judge)
    if chosen.dialect.lenient_header:
        notes.insert(
            0,
            f"the header (line {chosen.dialect.header_row}) holds a stray quote: its names were read ignoring quotes",
        )
    return Detection(chosen.dialect, _explain(chosen, judged, judge, fixed), notes)


def _fixed(overrides: dict | None) -> dict:
    """The user's overrides, "none" read as no quote, no escape, no header split."""
    fixed = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
    if fixed.get("quote") == NONE:
        fixed["quote"] = ""
    if fixed.get("escape") == NONE:
        fixed["escape"] = None
    if fixed.get("header_split") == NONE:
        fixed["header_split"] = None
    if fixed.pop("no_header", False) or "columns" in fixed:
        fixed["columns"] = tuple(fixed.get("columns") or ())
    return fixed


def _repair_header(dialect: Dialect, judge: _Judge, dataset: Dataset, fixed: dict) -> tuple[Dialect, list[str]]:
    """A header cell that lost a delimiter (`stockean`): cut in two when exactly one cut makes two
    known names and most sample rows have the cells that header then has."""
    if dialect.columns is not None:
        return dialect, []
    if "header_split" in fixed:
        return replace(dialect, header_split=fixed["header_split"]), []
    records = judge.records(dialect, 1)
    header = records[0].cells if records and records[0].cells is not None else None
    if header is None:
        return dialect, []
    splits = lost_delimiter_splits(header, dataset)
    if len(splits) != 1:
        return dialect, []
    repaired = replace(dialect, header_split=splits[0])
    cut = split_header(header, repaired)
    fits_split, sample = judge.fits(dialect, cut, exact=len(cut))
    if fits_split * 2 <= sample:
        return dialect, []
    cell, at = splits[0]
    name = header[cell]
    return repaired, [
        f"header cell {name.strip()!r} was read as {name[:at].strip()!r} and {name[at:].strip()!r}: a delimiter "
        f"seems lost there, and {fits_split} of {sample} sample rows have the cells that header then has "
        "(to read the header as written: --no-header-split, or 'Read the header as written' in the upload form)"
    ]


def _judged(dialect: Dialect, judge: _Judge) -> Reading:
    fits, sample = judge.fits(dialect)
    return Reading(dialect, judge.names(dialect), fits, sample)


def _explain(chosen: Reading, judged: list[Reading], judge: _Judge, fixed: dict) -> list[dict]:
    """The chosen reading and the closest alternatives, each with why it lost; plus the reading with
    no quote character when that reads more rows (quotes as inch marks): offered, never chosen."""

    def key(reading: Reading) -> tuple:
        d = reading.dialect
        return d.delimiter, d.quote, d.escape, d.skip_initial_space

    out = [chosen.to_dict(_why_chosen(chosen, fixed), chosen=True)]
    shown = {key(chosen)}
    for other in sorted(judged, key=Reading.score, reverse=True):
        if key(other) in shown or len(out) > SHOWN_ALTERNATIVES:
            continue
        shown.add(key(other))
        if other.names < chosen.names:
            why = f"its header names {other.names} dataset column(s), not {chosen.names}"
        elif (other.fits or 0) < (chosen.fits or 0):
            why = f"reads {other.fits} of {other.rows} sample rows cleanly, not {chosen.fits}"
        else:
            why = "reads as well; the reading that changes fewer characters is preferred"
        out.append(other.to_dict(why))
    if "quote" not in fixed and chosen.dialect.quote:
        unquoted = replace(chosen.dialect, quote="", escape=None)
        fits, sample = judge.fits(unquoted)
        if fits > (chosen.fits or 0):
            reading = Reading(unquoted, chosen.names, fits, sample)
            out.append(
                reading.to_dict(
                    f"reads {fits} of {sample} sample rows cleanly, but with no quote character every quote is "
                    "kept in its cell: right if they are inch marks, wrong if a delimiter was lost before them; "
                    "never chosen unless asked (quote 'none')"
                )
            )
    return out


def _why_chosen(chosen: Reading, fixed: dict) -> str:
    given = sorted(set(fixed) & {"delimiter", "quote", "escape", "skip_initial_space", "header_row"})
    found = (
        f"no header line: columns {', '.join(chosen.dialect.columns)}"
        if chosen.dialect.columns is not None
        else f"its header (line {chosen.dialect.header_row}) names {chosen.names} dataset column(s)"
    )
    why = f"{found}; it reads {chosen.fits} of {chosen.rows} sample rows cleanly"
    return why + (f" (set by you: {', '.join(given)})" if given else "")


def detect_dialect(path: Path, dataset: Dataset, overrides: dict | None = None) -> Dialect:
    """Encoding, delimiter, quote, escape and header line: detected, then the user's overrides."""
    return weigh(path, dataset, overrides).dialect
