"""What a dataset expects, in words a person reads: columns, types, checks, and template files.

Used by the Datasets view and ``bulkimport datasets list / show / template``. Checks are
described from the pandera model (``one of EUR, USD, …``, ``0 or more``, ``matches
ACME-1001``); a custom check by its name (``at most 2 decimals``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass

from bulkimport.datasets import Dataset

ISIN_SHOWN = 8  # values of a list shown before "…"
_FORMAT_WORDS = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%y": "YY", "%H": "hh", "%M": "mm", "%S": "ss"}


@dataclass(frozen=True)
class ColumnDoc:
    """One column as a person needs to know it to fill in a file."""

    name: str
    sql_type: str
    kind: str  # the type in words: "text", "whole number", "date (YYYY-MM-DD or DD.MM.YYYY)"
    required: bool
    key: bool
    checks: list[str]
    aliases: list[str]
    description: str

    def to_dict(self) -> dict:
        return asdict(self)


def _number(value) -> str:
    """12 -> "12", 0.0 -> "0", 9999999999.99 -> "9,999,999,999.99"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        whole, _, fraction = repr(value).partition(".")
        return f"{int(whole):,}.{fraction}" if abs(value) >= 10_000 else repr(value)
    return str(value)


def _listed(values) -> str:
    values = [str(v) for v in values]
    shown = ", ".join(values[:ISIN_SHOWN])
    return shown + (f", … ({len(values)} in all)" if len(values) > ISIN_SHOWN else "")


def date_format_words(fmt: str) -> str:
    """``%d.%m.%Y`` -> ``DD.MM.YYYY``."""
    return re.sub(r"%[A-Za-z]", lambda m: _FORMAT_WORDS.get(m.group(), m.group()), fmt)


def type_in_words(sql_type: str, dataset: Dataset | None = None) -> str:
    kind = sql_type.upper()
    if kind.startswith(("VARCHAR", "TEXT", "STRING")):
        return "text"
    if kind.startswith(("TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UBIGINT", "UINTEGER")):
        return "whole number"
    if kind.startswith(("DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL")):
        scale = re.search(r",\s*(\d+)\)", kind)
        words = f"number, up to {scale.group(1)} decimals" if scale else "number"
        if dataset is not None and dataset.decimal_comma:
            words += " (1234.56 or 1.234,56)"
        return words
    if kind.startswith("DATE"):
        formats = dataset.date_formats if dataset is not None else ("%Y-%m-%d",)
        return "date (" + " or ".join(date_format_words(f) for f in formats) + ")"
    if kind.startswith("TIMESTAMP"):
        return "date and time"
    if kind.startswith("BOOL"):
        return "true or false"
    return sql_type.lower()


def pattern_example(pattern: str) -> str | None:
    """A value that matches a simple regular expression (``^[A-Z]{4}-[0-9]{4}$`` -> ``ABCD-1234``), or None."""
    try:
        from re import _parser as parser  # Python 3.11+
    except ImportError:  # pragma: no cover
        import sre_parse as parser

    letters, digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "1234567890"

    def from_class(items) -> str | None:
        for op, value in items:
            name = str(op)
            if name == "LITERAL":
                return chr(value)
            if name == "RANGE":
                low, high = value
                pool = letters if chr(low).isupper() else letters.lower() if chr(low).islower() else digits
                return next((c for c in pool if low <= ord(c) <= high), chr(low))
            if name == "CATEGORY":
                return {"CATEGORY_DIGIT": "1", "CATEGORY_WORD": "a", "CATEGORY_SPACE": " "}.get(str(value))
            if name == "NEGATE":
                return None
        return None

    def spell(items) -> str | None:
        out = []
        for op, value in items:
            name = str(op)
            if name == "AT":
                continue
            if name == "LITERAL":
                out.append(chr(value))
            elif name == "IN":
                one = from_class(value)
                if one is None:
                    return None
                out.append(one)
            elif name == "ANY":
                out.append("x")
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                low, high, inner = value
                count = low if high == low else min(high, max(low, 4))
                piece = [spell(inner) for _ in range(count)]
                if any(p is None for p in piece):
                    return None
                text = "".join(piece)
                if len(inner) == 1 and str(inner[0][0]) == "IN":  # vary a run: ABCD, 1234
                    text = _run(text[:1], count) if text else text
                out.append(text)
            elif name == "SUBPATTERN":
                inner = spell(value[-1])
                if inner is None:
                    return None
                out.append(inner)
            elif name == "BRANCH":
                inner = spell(value[1][0])
                if inner is None:
                    return None
                out.append(inner)
            else:
                return None
        return "".join(out)

    def _run(first: str, count: int) -> str:
        for pool in (letters, letters.lower(), digits):
            if first in pool:
                start = pool.index(first)
                return "".join(pool[(start + i) % len(pool)] for i in range(count))
        return first * count

    try:
        example = spell(parser.parse(pattern))
    except (re.error, TypeError, ValueError, IndexError):
        return None
    return example if example is not None and re.fullmatch(pattern, example) else None


def check_in_words(check, example: str | None = None) -> str:
    """One pandera check as a person reads it."""
    stats = check.statistics or {}
    name = check.name
    if name == "greater_than_or_equal_to":
        return f"{_number(stats['min_value'])} or more"
    if name == "greater_than":
        return f"more than {_number(stats['min_value'])}"
    if name == "less_than_or_equal_to":
        return f"at most {_number(stats['max_value'])}"
    if name == "less_than":
        return f"less than {_number(stats['max_value'])}"
    if name == "in_range":
        return f"from {_number(stats['min_value'])} to {_number(stats['max_value'])}"
    if name == "equal_to":
        return f"always {stats.get('value')}"
    if name == "not_equal_to":
        return f"never {stats.get('value')}"
    if name == "isin":
        return "one of " + _listed(stats["allowed_values"])
    if name == "notin":
        return "none of " + _listed(stats["forbidden_values"])
    if name == "str_matches":
        pattern = stats["pattern"]
        example = example or pattern_example(str(pattern))
        return f"matches {example} ({pattern})" if example else f"matches the pattern {pattern}"
    if name == "str_startswith":
        return f"starts with {stats.get('string')}"
    if name == "str_endswith":
        return f"ends with {stats.get('string')}"
    if name == "str_contains":
        return f"contains {stats.get('pattern')}"
    if name == "str_length":
        low, high, exact = stats.get("min_value"), stats.get("max_value"), stats.get("exact_value")
        if exact is not None:
            return f"exactly {exact} characters"
        if low is not None and high is not None:
            return f"{low} to {high} characters"
        return f"at least {low} characters" if low is not None else f"at most {high} characters"
    return name.replace("_", " ")


def columns(dataset: Dataset) -> list[ColumnDoc]:
    """Every column of the dataset, in order, described."""
    schema = dataset.schema
    docs = []
    for name, sql_type in dataset.sql_types.items():
        column = schema.columns.get(name)
        example = ((column.metadata or {}).get("example") if column is not None else None) or None
        checks = [check_in_words(c, example) for c in (column.checks if column is not None else [])]
        if column is not None and column.unique:
            checks.append("unique")
        docs.append(
            ColumnDoc(
                name=name,
                sql_type=sql_type,
                kind=type_in_words(sql_type, dataset),
                required=name in dataset.required,
                key=name in dataset.key,
                checks=checks,
                aliases=list(dataset.aliases.get(name, ())),
                description=(column.description if column is not None else None) or "",
            )
        )
    return docs


def summary(dataset: Dataset) -> dict:
    """One line of ``datasets list``: name, version, description, key, columns."""
    return {
        "name": dataset.name,
        "version": dataset.version,
        "description": dataset.description,
        "key": list(dataset.key),
        "columns": dataset.columns,
        "required": list(dataset.required),
    }


# ---------------------------------------------------------------- templates


def template_csv(dataset: Dataset) -> bytes:
    """A CSV with the dataset's header and no rows."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(dataset.columns)
    return out.getvalue().encode("utf-8")


def template_xlsx(dataset: Dataset) -> bytes:
    """A workbook: the header on the first sheet, and a second sheet that explains each column."""
    import openpyxl
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = openpyxl.Workbook()
    data = book.active
    data.title = dataset.name[:31]
    data.append(dataset.columns)
    docs = columns(dataset)
    for i, doc in enumerate(docs, start=1):
        cell = data.cell(row=1, column=i)
        cell.font = Font(bold=doc.required)
        data.column_dimensions[get_column_letter(i)].width = max(12, len(doc.name) + 4)
    data.freeze_panes = "A2"

    about = book.create_sheet("Columns")
    about.append([f"{dataset.name}: {dataset.description}"])
    about.append(["Fill in the first sheet, one row per record. Bold columns are required."])
    about.append([])
    header = ["Column", "Type", "Required", "Key", "Checks", "Other header names accepted", "Description"]
    about.append(header)
    for doc in docs:
        about.append(
            [
                doc.name,
                doc.kind,
                "yes" if doc.required else "no",
                "yes" if doc.key else "",
                "; ".join(doc.checks),
                ", ".join(doc.aliases),
                doc.description,
            ]
        )
    for cell in about[4]:
        cell.font = Font(bold=True)
    about["A1"].font = Font(bold=True)
    for i, width in enumerate((18, 30, 10, 6, 60, 40, 50), start=1):
        about.column_dimensions[get_column_letter(i)].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
