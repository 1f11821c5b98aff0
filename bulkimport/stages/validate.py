"""Check a chunk of text cells against the dataset's pandera schema.

Two passes, because pandera reports no row for a check on a column whose
coercion failed: first coerce (types and required values), then run the
checks on the rows that coerced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

from bulkimport.datasets import Dataset
from bulkimport.stages.read import Reject


@dataclass
class Validated:
    valid: pd.DataFrame
    rejects: list[Reject]


def _reason(check: str) -> str:
    if check == "not_nullable":
        return "missing-value"
    if check.startswith(("coerce_dtype", "dtype(")):
        return "type-error"
    return "constraint-error"


def _failures(
    error: pa.errors.SchemaErrors,
    original: pd.DataFrame,
    raws: dict[int, str],
    date_formats: tuple[str, ...] = ("%Y-%m-%d",),
) -> tuple[list[Reject], set[int]]:
    cases = error.failure_cases
    row_level = cases[cases["index"].notna()]
    if len(row_level) < len(cases):
        # A failure without a row (a missing column, say) is a bug in how we
        # built the frame, not bad input: let it surface.
        raise error
    rejects, lines = [], set()
    for case in row_level.itertuples(index=False):
        line = int(case.index)
        if case.check.startswith("dtype(") and line in lines:
            continue  # pandera repeats each coercion failure as a dtype failure
        # Show the cell as the file had it, not as pandera coerced it.
        value = original.at[line, case.column] if case.column in original else case.failure_case
        value = None if pd.isna(value) else str(value)
        rejects.append(
            Reject(
                line,
                _reason(case.check),
                column=case.column,
                check=case.check,
                value=value,
                detail=_detail(case.column, case.check, value, date_formats),
                raw=raws.get(line),
            )
        )
        lines.add(line)
    return rejects, lines


_TYPE_NAMES = {"int64": "a whole number", "float64": "a number", "datetime64[ns]": "a date"}
# strptime codes as people write dates: %d.%m.%Y -> DD.MM.YYYY
_FORMAT_WORDS = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%y": "YY", "%H": "hh", "%M": "mm", "%S": "ss"}


def _readable(fmt: str) -> str:
    return re.sub(r"%[A-Za-z]", lambda m: _FORMAT_WORDS.get(m.group(), m.group()), fmt)


def _detail(column: str, check: str, value: str | None, date_formats: tuple[str, ...] = ("%Y-%m-%d",)) -> str:
    reason = _reason(check)
    if reason == "missing-value":
        return f"{column} is required"
    if reason == "type-error":
        dtype = check.split("(", 1)[1].rstrip(")").strip("'")
        expected = _TYPE_NAMES.get(dtype, dtype)
        if dtype.startswith("datetime"):
            expected += f" ({' or '.join(_readable(f) for f in date_formats)})"
        return f"{column}: {value!r} is not {expected}"
    name, _, args = check.partition("(")
    args = args.rstrip(")")
    expected = {
        "greater_than_or_equal_to": f"must be >= {args}",
        "less_than_or_equal_to": f"must be <= {args}",
        "isin": "must be one of " + args.strip("()").replace("'", ""),
        "str_matches": f"must match the pattern {args}",
        "str_length": f"length must be within {args}",
    }
    if name in expected:
        return f"{column}: {value!r} {expected[name]}"
    return f"{column}: {value!r}: {check}"


_DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+$")
_NOT_A_DATE = "not-a-date"
_NS_MIN, _NS_MAX = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")


def normalise_values(dataset: Dataset, frame: pd.DataFrame) -> pd.DataFrame:
    """Read numbers and dates the ways the dataset allows, before pandera sees them.

    Decimal commas become points ("1.234,50" -> "1234.50"); dates in any listed
    format become ISO dates; a date in no listed format is marked so that the
    schema rejects it (pandas would otherwise guess, e.g. month-first).
    """
    frame = frame.copy()
    if dataset.decimal_comma:
        for column in dataset.columns_of_type("DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC"):
            values = frame[column]
            comma = values.str.contains(",", regex=False, na=False)  # the regex only where it can match
            if comma.any():
                comma[comma] = values[comma].str.match(_DECIMAL_COMMA, na=False)
            if comma.any():
                frame.loc[comma, column] = values[comma].str.replace(".", "", regex=False).str.replace(",", ".")
    for column in dataset.columns_of_type("DATE"):
        values = frame[column]
        present = values.notna()
        if not present.any():
            continue
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
        for fmt in dataset.date_formats:
            todo = present & parsed.isna()
            if not todo.any():
                break
            found = pd.to_datetime(values[todo], format=fmt, errors="coerce")
            # pandas 3 parses into the unit a date needs; a year outside nanosecond timestamps
            # (1677-2262) is not a date to the schema, which coerces to them: a reject, not a crash.
            found = found.where((found >= _NS_MIN) & (found <= _NS_MAX))
            parsed[todo] = found.astype("datetime64[ns]")
        iso = parsed.dt.strftime("%Y-%m-%d")
        frame[column] = values.where(~present, iso.where(parsed.notna(), _NOT_A_DATE))
    return frame


_INTEGER_TYPES = ("BIGINT", "INTEGER", "INT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER")
_FLOAT_TYPES = ("DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC")
_NAN_WORDS = {"nan", "+nan", "-nan"}


def _unreadable_numbers(
    dataset: Dataset, frame: pd.DataFrame, original: pd.DataFrame, raws: dict[int, str]
) -> tuple[list[Reject], set[int]]:
    """Type errors in numeric columns, found vectorised.

    pandera finds them too, but once a column fails coercion it tries every
    value one by one: a chunk with one bad number becomes many times slower.
    Whatever this lets through (e.g. "3.0" for a whole number) pandera still judges.
    """
    rejects, bad = [], set()
    for column, sql_type in dataset.sql_types.items():
        kind = sql_type.upper()
        dtype = "int64" if kind.startswith(_INTEGER_TYPES) else "float64" if kind.startswith(_FLOAT_TYPES) else None
        if dtype is None:
            continue
        values = frame[column]
        present = values.notna()
        numbers = pd.to_numeric(values.where(present), errors="coerce")
        wrong = present & numbers.isna()
        if wrong.any():  # "nan" is a number to pandera (a null, judged later), not a type error
            wrong[wrong] = ~values[wrong].str.lower().isin(_NAN_WORDS)
        if dtype == "int64":
            wrong |= present & numbers.notna() & (numbers % 1 != 0)
        check = f"coerce_dtype('{dtype}')"
        for line in wrong.index[wrong.to_numpy()]:
            value = original.at[line, column]
            rejects.append(
                Reject(
                    int(line),
                    "type-error",
                    column=column,
                    check=check,
                    value=value,
                    detail=_detail(column, check, value),
                    raw=raws.get(line),
                )
            )
            bad.add(line)
    return rejects, bad


def validate_chunk(dataset: Dataset, frame: pd.DataFrame, raws: dict[int, str]) -> Validated:
    """Split a chunk (indexed by line) into coerced valid rows and rejects."""
    original = frame
    frame = normalise_values(dataset, frame)
    early, unreadable = _unreadable_numbers(dataset, frame, original, raws)
    if unreadable:
        frame = frame.drop(index=list(unreadable))
    schema = dataset.schema
    # Nulls are checked in the second pass: a column where one cell fails coercion
    # reports its not-null failures without a row, which would fail the whole file;
    # on coerced values they carry the row, so only those rows are rejected.
    coerce_only = schema.update_columns({name: {"checks": [], "nullable": True} for name in schema.columns})
    coerce_only.checks = []
    rejects: list[Reject] = early
    try:
        coerced = coerce_only.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        found, bad = _failures(error, original, raws, dataset.date_formats)
        rejects += found
        coerced = coerce_only.validate(frame.drop(index=list(bad)), lazy=True)
    # The values are coerced already: check them without coercing again.
    checks_only = schema.update_columns({name: {"coerce": False} for name in schema.columns})
    checks_only.coerce = False
    try:
        checks_only.validate(coerced, lazy=True)
        valid = coerced
    except pa.errors.SchemaErrors as error:
        found, bad = _failures(error, original, raws, dataset.date_formats)
        rejects += found
        valid = coerced.drop(index=list(bad))
    return Validated(valid, rejects)
