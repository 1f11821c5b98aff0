"""Draft a dataset module from a sample file, for a person to edit.

``bulkimport datasets draft NAME --from sample.csv`` (and the Datasets view, for
admins) reads the sample the way a worker reads a file, asks DuckDB's sniffer for
the column types, and writes a module with a comment on every guess: the column
names (by the project's rules), types, checks (a pattern for code-like columns, a
list for columns with few values, ranges for numbers), which columns are required
and the key.

The draft is checked before it is returned: it must load and accept the sample
itself (every row staged, none rejected). A guess the sample contradicts is
relaxed, and its comment says so.
"""

from __future__ import annotations

import csv
import datetime as dt
import keyword
import re
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandera.pandas as pa

from bulkimport.dataset_docs import date_format_words
from bulkimport.dataset_source import literal, raw_pattern, render
from bulkimport.datasets import NAME_PATTERN, RESERVED_COLUMNS, Dataset, load_module
from bulkimport.errors import BulkImportError, FileRefused
from bulkimport.stages.read import detect_encoding, is_xlsx, sniff, text_records, xlsx_records

MAX_SAMPLE_ROWS = 100_000  # rows a draft learns from (the whole sample is checked against it)
FEW_VALUES = 12  # at most this many distinct values (and each seen twice on average): propose a list
CODE_MAX_CHARS = 40
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y")
_KEY_HINTS = ("id", "sku", "code", "key", "nr", "no", "number", "ref", "ean", "gtin")
# Names a pandera model uses itself (validate, to_schema, ...): a column may not shadow them.
_MODEL_NAMES = {name for name in dir(pa.DataFrameModel) if not name.startswith("_")}
_RESERVED_RENAMES = {"brand": "brand_name", "line": "line_no", "job_id": "source_job_id"}


@dataclass
class ColumnGuess:
    header: str  # as the sample has it
    name: str  # by the project's rules
    sql_type: str
    sniffed: str  # what DuckDB's sniffer said
    required: bool
    checks: dict[str, str] = field(default_factory=dict)  # pa.Field keyword -> Python source
    example: str | None = None
    notes: list[str] = field(default_factory=list)  # one comment per guess
    mostly_numbers: bool = False  # text because a few values are not numbers

    @property
    def python_type(self) -> str:
        kind = self.sql_type.upper()
        if kind.startswith(_INTEGER):
            return "int"
        if kind.startswith(("DECIMAL", "DOUBLE")):
            return "float"
        if kind.startswith(("DATE", "TIMESTAMP")):
            return "pd.Timestamp"
        return "str"


@dataclass
class Draft:
    name: str
    sample: str
    rows: int
    columns: list[ColumnGuess]
    key: list[str]
    key_note: str
    decimal_comma: bool
    date_formats: list[str]
    skipped: int  # records of the sample that were not whole rows (a broken quote, say)
    source: str = ""  # the module's text


# ---------------------------------------------------------------- reading the sample


def _records(path: Path) -> tuple[list[str], list[list[str | None]], int]:
    """The sample's header and rows as the reader sees them (cells stripped, blanks None); skipped records.

    The header is the first record as wide as most records are (a preamble line above it is narrower).
    """
    if is_xlsx(path):
        stream = xlsx_records(path, None)
    else:
        encoding, bom = detect_encoding(path)
        stream = text_records(path, sniff(path, encoding, bom))
    records, skipped = [], 0
    for record in stream:
        if record.reason:
            skipped += 1
        elif record.cells and any(c.strip() for c in record.cells):
            records.append([c.strip() for c in record.cells])
        if len(records) > MAX_SAMPLE_ROWS:
            break
    if not records:
        raise FileRefused(f"{path.name}: no header row found")
    width = Counter(len(cells) for cells in records).most_common(1)[0][0]
    start = next(i for i, cells in enumerate(records) if len(cells) == width)
    header, rows = records[start], []
    for cells in records[start + 1 :]:
        if len(cells) == width:
            rows.append([c or None for c in cells])
        else:
            skipped += 1
    if not rows:
        raise FileRefused(f"{path.name}: the sample has a header but no rows to learn from")
    return header, rows, skipped


def _sniffed_types(header: list[str], rows: list[list[str | None]]) -> tuple[list[str], str | None]:
    """DuckDB's sniffer on the cells as read (types per column, and the date format it found)."""
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([f"c{i}" for i in range(len(header))])
        writer.writerows([["" if v is None else v for v in row] for row in rows])
    con = duckdb.connect()
    try:
        columns, date_format = con.execute(
            "SELECT Columns, DateFormat FROM sniff_csv(?, sample_size = -1, header = true, delim = ',', quote = '\"')",
            [out.name],
        ).fetchone()
    except duckdb.Error:
        return ["VARCHAR"] * len(header), None  # every column starts as text; the values decide the rest
    finally:
        con.close()
        Path(out.name).unlink(missing_ok=True)
    return [c["type"] for c in columns], date_format


# ---------------------------------------------------------------- naming


def column_name(header: str, index: int) -> str:
    """A header as a column name by the project's rules: lower case ASCII letters, digits and ``_``."""
    text = unicodedata.normalize("NFKD", header.replace("ß", "ss")).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60].rstrip("_")
    if not name:
        return f"column_{index + 1}"
    if not name[0].isalpha():
        name = f"c_{name}"
    name = _RESERVED_RENAMES.get(name, name)
    if keyword.iskeyword(name) or name in _MODEL_NAMES:
        name += "_"
    return name


def _unique_names(headers: list[str]) -> list[str]:
    names: list[str] = []
    for i, header in enumerate(headers):
        name, n = column_name(header, i), 2
        base = name
        while name in names:
            name, n = f"{base[:58]}_{n}", n + 1
        names.append(name)
    return names


# ---------------------------------------------------------------- guessing


def _runs(value: str) -> list[tuple[str, str]]:
    """A code as runs of one kind: ("A", "ACME"), ("-", "-"), ("9", "1001")."""
    runs: list[tuple[str, str]] = []
    for char in value:
        kind = "A" if "A" <= char <= "Z" else "a" if "a" <= char <= "z" else "9" if char.isdigit() else char
        if runs and runs[-1][0] == kind and kind in "Aa9":
            runs[-1] = (kind, runs[-1][1] + char)
        else:
            runs.append((kind, char))
    return runs


def code_pattern(values: list[str]) -> str | None:
    """A pattern every value matches when they all look alike (``ACME-1001`` -> ``^ACME-[0-9]{4}$``), else None.

    Letters the same in every value (at least three) stay literal; digits are a class.
    """
    shapes = [_runs(v) for v in values]
    kinds = [tuple(k for k, _ in shape) for shape in shapes]
    if len(set(kinds)) != 1:
        return None
    parts = []
    for i, kind in enumerate(kinds[0]):
        texts = [shape[i][1] for shape in shapes]
        if kind not in "Aa9":
            parts.append(_escape(kind))
            continue
        if kind in "Aa" and len(set(texts)) == 1 and len(values) >= 3:
            parts.append(texts[0])
            continue
        low, high = min(map(len, texts)), max(map(len, texts))
        repeat = "" if low == high == 1 else f"{{{low}}}" if low == high else f"{{{low},{high}}}"
        parts.append({"A": "[A-Z]", "a": "[a-z]", "9": "[0-9]"}[kind] + repeat)
    return "^" + "".join(parts) + "$"


def _escape(char: str) -> str:
    """A literal character in a pattern: only regular-expression syntax is escaped (``-`` stays ``-``)."""
    return "\\" + char if char in ".^$*+?{}[]\\|()" else char


def _looks_like_code(values: list[str]) -> bool:
    return all(len(v) <= CODE_MAX_CHARS and not any(c.isspace() for c in v) for v in values) and any(
        any(c.isdigit() for c in v) for v in values
    )


def _bound(value: float) -> int:
    """A round upper bound with room: 45 -> 1000, 129.99 -> 10000."""
    return 10 ** (len(str(int(abs(value)))) + 1)


def _decimals(values: list[str], comma: bool) -> int:
    separator = "," if comma else "."
    return max((len(v.rsplit(separator, 1)[1]) for v in values if separator in v), default=0)


def _guess_type(guess: ColumnGuess, values: list[str], date_format: str | None, formats: list[str]) -> bool:
    """Choose the column's type from the sniffer's and the values; True if it reads decimal commas."""
    sniffed = guess.sniffed.upper()
    said = f"DuckDB's sniffer says {guess.sniffed}"
    if sniffed.startswith(_INTEGER):
        same_width = len({len(v.lstrip("+-")) for v in values}) == 1 and len(values[0].lstrip("+-")) >= 6
        if any(len(v) > 1 and v.startswith("0") for v in values) or same_width:
            guess.sql_type = "VARCHAR"
            guess.notes.append(f"{said}, but these look like codes (leading zeros or one fixed width): kept as text")
            return False
        guess.sql_type = "BIGINT"
        guess.notes.append(f"{said}: whole numbers, stored as BIGINT")
        return False
    if sniffed in ("DOUBLE", "FLOAT") and all(_PLAIN_NUMBER.match(v) for v in values):
        scale = _decimals(values, comma=False)
        guess.sql_type = f"DECIMAL(18,{max(scale, 2)})" if scale <= 6 else "DOUBLE"
        guess.notes.append(f"{said}; up to {scale} decimals in the sample: {guess.sql_type}")
        return False
    if sniffed == "DATE":
        fmt = date_format or "%Y-%m-%d"
        if all(_parses(v, fmt) for v in values):
            guess.sql_type = "DATE"
            if fmt not in formats:
                formats.append(fmt)
            guess.notes.append(f"{said} (written {date_format_words(fmt)})")
            return False
    if sniffed.startswith("TIMESTAMP") and all(_iso_timestamp(v) for v in values):
        guess.sql_type = "TIMESTAMP"
        guess.notes.append(f"{said}: dates with a time")
        return False
    if all(_DECIMAL_COMMA.match(v) for v in values) and any("," in v for v in values):
        scale = _decimals(values, comma=True)
        guess.sql_type = f"DECIMAL(18,{max(scale, 2)})" if scale <= 6 else "DOUBLE"
        guess.notes.append(
            f"{said}, but the values are numbers with a decimal comma (like {next(v for v in values if ',' in v)}): "
            f"{guess.sql_type}, decimal_comma=True"
        )
        return True
    guess.sql_type = "VARCHAR"
    numbers = [v for v in values if _PLAIN_NUMBER.match(v)]
    dated = next((f for f in _DATE_FORMATS if sum(_parses(v, f) for v in values) >= len(values) * 0.8), None)
    if dated:
        odd = next(v for v in values if not _parses(v, dated))
        guess.notes.append(
            f"{said}: the values look like dates ({date_format_words(dated)}) but {odd!r} is not one; kept as text "
            "(make it a DATE if that value is a mistake)"
        )
    elif numbers and len(numbers) >= len(values) * 0.8 and len(numbers) < len(values):
        guess.mostly_numbers = True
        odd = next(v for v in values if not _PLAIN_NUMBER.match(v))
        guess.notes.append(
            f"{said}: {len(numbers)} of {len(values)} values are numbers but {odd!r} is not; "
            "kept as text (make it a number if that value is a mistake)"
        )
    else:
        guess.notes.append(f"{said}: text")
    return False


def _parses(value: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _iso_timestamp(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _guess_checks(guess: ColumnGuess, values: list[str], comma: bool, date_formats: list[str]) -> None:
    distinct = sorted(set(values))
    kind = guess.python_type
    if kind == "str":
        coded = [v for v in values if _looks_like_code([v])]
        if len(distinct) <= FEW_VALUES and len(distinct) * 2 <= len(values):
            guess.checks["isin"] = literal(distinct)
            guess.notes.append(f"{len(distinct)} distinct values in {len(values)}: proposed as the only ones allowed")
        elif guess.mostly_numbers:
            pass  # said so with the type
        elif len(coded) == len(values) and (pattern := code_pattern(values)):
            guess.checks["str_matches"] = raw_pattern(pattern)
            guess.example = values[0]
            guess.notes.append(f"code-like values (like {values[0]}): every one matches {pattern}")
        elif len(coded) >= len(values) * 0.8 and (pattern := code_pattern(coded)):
            odd = next(v for v in values if v not in coded or not re.fullmatch(pattern, v))
            guess.notes.append(
                f"{len(coded)} of {len(values)} values look like {coded[0]} ({pattern}) but {odd!r} does not: "
                "no pattern proposed (add str_matches if that value is a mistake)"
            )
        else:
            guess.notes.append(f"free text, up to {max(map(len, values))} characters in the sample")
    elif kind in ("int", "float"):
        numbers = [float(v.replace(".", "").replace(",", ".") if comma and "," in v else v) for v in values]
        low, high = min(numbers), max(numbers)
        if low >= 0:
            guess.checks["ge"] = "0"
        if high > 0 and not _key_like(guess.name):  # an id has no natural upper bound
            guess.checks["le"] = f"{_bound(high):_}"
        said = f"from {_plain(low)} to {_plain(high)} in the sample: "
        said += "no negative values" if low >= 0 else "negative values occur, so no lower bound"
        if "le" in guess.checks:
            said += f"; le={guess.checks['le']} leaves room (raise it if larger values are real)"
        guess.notes.append(said)
    elif guess.sql_type == "DATE":
        fmt = next(f for f in date_formats if all(_parses(v, f) for v in values))
        dates = sorted(dt.datetime.strptime(v, fmt).date() for v in values)
        guess.notes.append(f"from {dates[0]} to {dates[-1]} in the sample")


def _plain(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)


def _key_like(name: str) -> bool:
    return any(hint in name.split("_") for hint in _KEY_HINTS)


def _guess_key(columns: list[ColumnGuess], rows: list[list[str | None]]) -> tuple[list[str], str]:
    """The first column unique in the sample (one named like a key first), else the first unique pair."""

    def unique(indexes: list[int]) -> bool:
        keys = [tuple(row[i] for i in indexes) for row in rows]
        return all(None not in key for key in keys) and len(set(keys)) == len(keys)

    candidates = [i for i in range(len(columns)) if unique([i])]
    repeated = [
        f"{c.name} is not ({value!r} appears twice)"
        for i, c in enumerate(columns)
        if _key_like(c.name) and i not in candidates and (value := _repeated(rows, i))
    ]
    if candidates:
        best = next((i for i in candidates if _key_like(columns[i].name)), candidates[0])
        others = [columns[i].name for i in candidates if i != best]
        note = f"unique in the sample ({len(rows)} rows, no blanks)"
        note += f"; also unique: {', '.join(others)}" if others else ""
        return [columns[best].name], "; ".join([note, *repeated])
    required = [i for i, c in enumerate(columns) if c.required]
    for first, second in zip(required, required[1:], strict=False):
        if unique([first, second]):
            note = "no single column is unique in the sample; these two together are"
            return [columns[first].name, columns[second].name], "; ".join([note, *repeated])
    fallback = [columns[i].name for i in required] or [columns[0].name]
    return fallback, "no column or pair of columns is unique in the sample: all required ones, until you pick a key"


def _repeated(rows: list[list[str | None]], index: int) -> str | None:
    """A value that appears more than once in the column, if any."""
    seen: set[str] = set()
    for row in rows:
        value = row[index]
        if value is not None and value in seen:
            return value
        seen.add(value)
    return None


# ---------------------------------------------------------------- checking the draft against its sample

_CHECK_KEYWORDS = {
    "isin": "isin",
    "str_matches": "str_matches",
    "greater_than_or_equal_to": "ge",
    "less_than_or_equal_to": "le",
}


def load_draft(source: str, name: str) -> Dataset:
    """The draft's DATASET, from its text (written to a temporary file and imported)."""
    with tempfile.TemporaryDirectory(prefix="bulkimport-draft-") as folder:
        path = Path(folder) / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        return load_module(path).DATASET


def sample_problems(dataset: Dataset, sample: Path) -> list[tuple[str, str, str]]:
    """(column, reason, check) of every cell of the sample the dataset rejects, and duplicate keys."""
    import pandas as pd

    from bulkimport.stages.read import open_source, read_chunks
    from bulkimport.stages.validate import validate_chunk

    source = open_source(sample, dataset, sample.name)
    problems, keys = [], []
    for chunk in read_chunks(sample, dataset, 50_000, source):
        checked = validate_chunk(dataset, chunk.frame, chunk.raws)
        problems += [(r.column or "", r.reason, r.check or "") for r in checked.rejects]
        keys.append(checked.valid.reset_index()[list(dataset.key)].astype(str))
    if keys and pd.concat(keys).duplicated().any():
        problems.append(("/".join(dataset.key), "duplicate-key", "unique_key"))
    return problems


def _relax(draft: Draft, problems: list[tuple[str, str, str]], rows: list[list[str | None]]) -> None:
    """Give up each guess the sample contradicts, saying so in its comment."""
    by_name = {c.name: c for c in draft.columns}
    for column_name_, reason, check in sorted(set(problems)):
        column = by_name.get(column_name_)
        if reason == "duplicate-key":
            draft.key, note = _guess_key([c for c in draft.columns], rows)
            draft.key_note = f"{note} (the first guess left duplicates)"
        elif column is None:
            continue
        elif reason == "missing-value":
            column.required = False
            column.notes.append("made optional: the sample has a value the reader sees as blank")
        elif reason == "type-error":
            column.notes.append(f"kept as text: the sample has values that are not {column.sql_type}")
            column.sql_type, column.checks = "VARCHAR", {}
        else:
            keyword_ = _CHECK_KEYWORDS.get(check.split("(", 1)[0])
            if keyword_ and column.checks.pop(keyword_, None) is not None:
                column.notes.append(f"{keyword_} dropped: the sample has values it refuses")
                if keyword_ == "str_matches":
                    column.example = None


def draft(name: str, sample: Path, sample_name: str | None = None) -> Draft:
    """A dataset module drafted from ``sample``; it loads and accepts the sample (every row, no reject)."""
    if not NAME_PATTERN.match(name) or name in RESERVED_COLUMNS:
        raise BulkImportError(f"dataset name {name!r} must match {NAME_PATTERN.pattern}")
    header, rows, skipped = _records(sample)
    names = _unique_names(header)
    sniffed, date_format = _sniffed_types(header, rows)
    columns, formats, decimal_comma = [], [], False
    for i, (heading, name_, sniffed_type) in enumerate(zip(header, names, sniffed, strict=True)):
        values = [row[i] for row in rows if row[i] is not None]
        blanks = len(rows) - len(values)
        guess = ColumnGuess(heading, name_, "VARCHAR", sniffed_type, required=not blanks)
        guess.notes.append(f"optional: {blanks} of {len(rows)} blank" if blanks else "required: never blank")
        if values:
            comma = _guess_type(guess, values, date_format, formats)
            decimal_comma |= comma
            _guess_checks(guess, values, comma, formats)
        else:
            guess.notes.append("text: every value is blank in the sample")
        columns.append(guess)
    key, key_note = _guess_key(columns, rows)
    if formats and "%Y-%m-%d" not in formats:
        formats.append("%Y-%m-%d")  # ISO dates are never ambiguous: accept them too
    # The name goes into the module's docstring: only characters that cannot end it or start code.
    shown_name = re.sub(r"[^\w. -]", "_", sample_name or sample.name)
    result = Draft(name, shown_name, len(rows), columns, key, key_note, decimal_comma, formats, skipped)
    for _ in range(4):
        result.source = render(result)
        problems = sample_problems(load_draft(result.source, name), sample)
        if not problems:
            return result
        _relax(result, problems, rows)
    raise BulkImportError(f"could not draft a dataset that accepts {result.sample}: {sorted(set(problems))[:5]}")
