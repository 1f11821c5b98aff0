"""Compile a dataset's pandera model into SQL, for the staging fast path.

pandera stays the one declaration of a dataset. This module reads it (column
types, nullability, checks) and writes, per column, a DuckDB expression for the
typed value and one that is true only when the careful path (pandera on pandas,
bulkimport.stages.validate) would accept the value with that same typed value.

The expressions only ever claim "valid": a value of a shape they are not sure
of (a number written "1e3", a date pandas might read another way) is left for
the careful path, which then gives the row its verdict and reason. So the SQL
can be narrower than pandera, never wider. Checks are compiled where the SQL
means the same; a dataset can give a custom check's SQL next to it
(``Dataset.sql_checks``); any other check runs in Python on batches of the rows
the SQL accepted.
"""

from __future__ import annotations

import re
import re._constants as sre_constants  # Python's own regex parser, to judge patterns
import re._parser as sre_parse
import threading
from dataclasses import dataclass, field

import duckdb

from bulkimport.datasets import Dataset
from bulkimport.sql import ident, literal

# What the careful reader trims from cells (bulkimport.stages.read.records.PADDING): spaces and tabs.
WHITESPACE = " \t"

_STRING_TYPES = ("string", "str", "object")
_INTEGER_SQL = ("BIGINT", "INTEGER", "INT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER")
_FLOAT_SQL = ("DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC")
# Numbers and dates in shapes whose value both pandas and DuckDB read the same way.
_INTEGER_SHAPE = r"-?(0|[1-9][0-9]{0,17})"
_FLOAT_SHAPE = r"-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?"
_DECIMAL_COMMA = r"[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+),[0-9]+"
# pandas keeps datetimes in nanoseconds: years outside these bounds are not dates to it.
_DATE_BOUNDS = ("1678-01-01", "2261-12-31")
# strptime directives: (what DuckDB is trusted to read, what pandas might accept)
_DATE_PARTS = {"%Y": ("[0-9]{4}", "[0-9]{4}"), "%m": ("[0-9]{2}", "[0-9]{1,2}"), "%d": ("[0-9]{2}", "[0-9]{1,2}")}


@dataclass(frozen=True)
class CompiledColumn:
    """SQL over the column's trimmed text ``t_<name>`` (NULL where empty) and its typed value ``y_<name>``."""

    name: str
    sql_type: str
    typed: str  # the typed value, from t_<name>: kept as y_<name>
    ok: str  # true only when the careful path would stage the value as y_<name>


@dataclass(frozen=True)
class PythonCheck:
    """A check with no SQL form: run by pandera on batches of typed values the SQL accepted."""

    column: str
    check: object  # a pandera Check
    dtype: str  # the pandas dtype pandera coerces the column to


@dataclass(frozen=True)
class CompiledDataset:
    dataset: Dataset
    columns: dict[str, CompiledColumn] = field(default_factory=dict)
    python_checks: tuple[PythonCheck, ...] = ()
    blockers: tuple[str, ...] = ()  # why no file of this dataset can take the fast path

    @property
    def usable(self) -> bool:
        return not self.blockers

    def explain(self) -> list[str]:
        """In plain words: what runs where."""
        if self.blockers:
            return [f"stages on the careful path only: {b}" for b in self.blockers]
        return [
            f"column {c.column!r}: check {c.check.name!r} runs in Python on batches of rows, not in SQL "
            "(a custom check can give its SQL in Dataset.sql_checks)"
            for c in self.python_checks
        ]


def text_column(name: str) -> str:
    """The name under which the fast path keeps a dataset column's trimmed text."""
    return ident(f"t_{name}")


def typed_column(name: str) -> str:
    """The name under which the fast path keeps a dataset column's typed value."""
    return ident(f"y_{name}")


def trimmed(cell_sql: str) -> str:
    """A cell as the careful reader keeps it: stripped of whitespace, None when empty."""
    return f"nullif(trim({cell_sql}, {literal(WHITESPACE)}), '')"


class _NotCompiled(Exception):
    pass


def _regex_is_safe(pattern: str) -> bool:
    """True when a regex means the same to RE2 (DuckDB, Arrow) as to Python wherever RE2 says "match".

    Positive classes (\\d, \\w, \\s) are ASCII in RE2 and Unicode in Python, so an
    RE2 match is a Python match; negated classes, lookarounds, backreferences,
    flags and \\Z are not allowed.
    """
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return False
    if parsed.state.flags & ~(re.UNICODE | re.ASCII):
        return False
    safe_at = {sre_constants.AT_BEGINNING, sre_constants.AT_END, sre_constants.AT_BEGINNING_STRING}
    positive = {sre_constants.CATEGORY_DIGIT, sre_constants.CATEGORY_WORD, sre_constants.CATEGORY_SPACE}

    def walk(items) -> bool:
        for op, arg in items:
            if op in (sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.ANY):
                continue
            if op == sre_constants.AT:
                if arg not in safe_at:
                    return False
            elif op == sre_constants.IN:
                negated = any(o == sre_constants.NEGATE for o, _ in arg)
                for o, a in arg:
                    if o == sre_constants.CATEGORY and (negated or a not in positive):
                        return False
                    if o not in (
                        sre_constants.LITERAL,
                        sre_constants.RANGE,
                        sre_constants.NEGATE,
                        sre_constants.CATEGORY,
                    ):
                        return False
            elif op == sre_constants.CATEGORY:
                if arg not in positive:
                    return False
            elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                low, high, sub = arg
                if high != sre_constants.MAXREPEAT and high > 1000 or not walk(sub):
                    return False
            elif op == sre_constants.SUBPATTERN:
                _, add_flags, del_flags, sub = arg
                if add_flags or del_flags or not walk(sub):
                    return False
            elif op == sre_constants.BRANCH:
                if not all(walk(branch) for branch in arg[1]):
                    return False
            else:
                return False
        return True

    if not walk(parsed):
        return False
    try:
        duckdb.sql(f"SELECT regexp_matches('', {literal(pattern)})").fetchall()
    except duckdb.Error:
        return False
    return True


def _compile_check(check, x: str, dataset: Dataset, kind: str) -> str:
    """SQL for one pandera check on the typed value ``x`` (never NULL here); _NotCompiled if none."""
    name, stats = check.name, dict(check.statistics or {})
    if name in dataset.sql_checks:
        return "(" + dataset.sql_checks[name].replace("{value}", x) + ")"
    if getattr(check, "element_wise", False) or getattr(check, "groupby", None) is not None:
        raise _NotCompiled(name)
    numeric = kind in ("int", "float")
    comparisons = {
        "greater_than_or_equal_to": ">=",
        "less_than_or_equal_to": "<=",
        "greater_than": ">",
        "less_than": "<",
        "equal_to": "=",
        "not_equal_to": "<>",
    }
    if name in comparisons and numeric:
        value = stats.get("min_value", stats.get("max_value", stats.get("value")))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _NotCompiled(name)
        return f"{x} {comparisons[name]} {literal(value)}"
    if name == "in_range" and numeric:
        low, high = stats["min_value"], stats["max_value"]
        lower = ">=" if stats.get("include_min", True) else ">"
        upper = "<=" if stats.get("include_max", True) else "<"
        return f"({x} {lower} {literal(low)} AND {x} {upper} {literal(high)})"
    if name in ("isin", "notin"):
        values = list(stats.get("allowed_values", stats.get("forbidden_values", ())))
        wanted = str if kind == "str" else (int, float)
        if (
            not values
            or isinstance(stats.get("allowed_values", stats.get("forbidden_values")), str)
            or not all(isinstance(v, wanted) and not isinstance(v, bool) for v in values)
        ):
            raise _NotCompiled(name)
        listed = ", ".join(literal(v) for v in values)
        return f"{x} {'IN' if name == 'isin' else 'NOT IN'} ({listed})"
    if kind == "str":
        if name == "str_matches" and _regex_is_safe(str(stats["pattern"])):
            return f"regexp_matches({x}, {literal('^(?:' + str(stats['pattern']) + ')')})"
        if name == "str_contains" and _regex_is_safe(str(stats["pattern"])):
            return f"regexp_matches({x}, {literal(str(stats['pattern']))})"
        if name == "str_startswith":
            return f"starts_with({x}, {literal(str(stats['string']))})"
        if name == "str_endswith":
            return f"ends_with({x}, {literal(str(stats['string']))})"
        if name == "str_length":
            if stats.get("exact_value") is not None:
                return f"length({x}) = {int(stats['exact_value'])}"
            parts = []
            if stats.get("min_value") is not None:
                parts.append(f"length({x}) >= {int(stats['min_value'])}")
            if stats.get("max_value") is not None:
                parts.append(f"length({x}) <= {int(stats['max_value'])}")
            return "(" + " AND ".join(parts or ["true"]) + ")"
    raise _NotCompiled(name)


def _date_shapes(fmt: str) -> tuple[str, str]:
    """(tight, loose) regexes of a strptime format; _NotCompiled for directives other than %Y %m %d."""
    tight, loose = [], []
    for token in re.findall(r"%.|[^%]", fmt):
        if token.startswith("%"):
            if token not in _DATE_PARTS:
                raise _NotCompiled(f"date format {fmt!r}")
            tight.append(_DATE_PARTS[token][0])
            loose.append(_DATE_PARTS[token][1])
        else:
            tight.append(re.escape(token))
            loose.append(re.escape(token))
    return "".join(tight), "".join(loose)


def _typed(kind: str, dataset: Dataset, v: str, y: str) -> tuple[str, str]:
    """(SQL of the typed value of text ``v``, SQL for "``y`` is what pandas would make of v") for a non-null v."""
    if kind == "str":
        return v, "true"
    if kind == "int":
        shape = f"regexp_full_match({v}, {literal(_INTEGER_SHAPE)})"
        return f"CASE WHEN {shape} THEN CAST({v} AS BIGINT) END", f"{y} IS NOT NULL"
    if kind == "float":
        text = v
        if dataset.decimal_comma:
            text = (
                f"CASE WHEN contains({v}, ',') AND regexp_full_match({v}, {literal(_DECIMAL_COMMA)}) "
                f"THEN replace(replace({v}, '.', ''), ',', '.') ELSE {v} END"
            )
        shape = f"regexp_full_match({text}, {literal(_FLOAT_SHAPE)})"
        return f"CASE WHEN {shape} THEN CAST({text} AS DOUBLE) END", f"{y} IS NOT NULL"
    # a date: the first of the dataset's formats that reads it, as the careful path tries them
    branches, earlier = [], []
    for fmt in dataset.date_formats:
        tight, loose = _date_shapes(fmt)
        unclaimed = "".join(f" AND NOT regexp_full_match({v}, {literal(e)})" for e in earlier)
        branches.append(
            f"WHEN regexp_full_match({v}, {literal(tight)}){unclaimed} THEN try_strptime({v}, {literal(fmt)})"
        )
        earlier.append(loose)
    low, high = _DATE_BOUNDS
    return (
        f"CASE {' '.join(branches)} END",
        f"{y} BETWEEN {literal(low)}::TIMESTAMP AND {literal(high)}::TIMESTAMP",
    )


def _kind(dtype: str, sql_type: str, column: str) -> str:
    """The value kind the fast path can read, from pandera's dtype and the column's SQL type."""
    sql = sql_type.upper()
    if dtype.startswith(_STRING_TYPES) and sql.startswith(("VARCHAR", "TEXT", "STRING")):
        return "str"
    if dtype == "int64" and sql.startswith(_INTEGER_SQL):
        return "int"
    if dtype == "float64" and sql.startswith(_FLOAT_SQL):
        return "float"
    if dtype.startswith("datetime64[ns") and sql == "DATE":
        return "date"
    raise _NotCompiled(f"column {column!r}: pandera type {dtype} stored as {sql_type}")


def _compile(dataset: Dataset) -> CompiledDataset:
    schema = dataset.schema
    blockers = []
    if schema.checks:
        blockers.append("the model has checks on whole rows (dataframe checks)")
    if schema.unique or getattr(schema, "ordered", False) or getattr(schema, "add_missing_columns", False):
        blockers.append("the model sets unique, ordered or add_missing_columns")
    columns, python_checks = {}, []
    for name, sql_type in dataset.sql_types.items():
        column = schema.columns.get(name)
        if column is None:
            blockers.append(f"column {name!r} is not in the pandera model")
            continue
        if (
            not (column.coerce or schema.coerce)
            or column.unique
            or getattr(column, "default", None) is not None
            or column.regex
        ):
            blockers.append(f"column {name!r}: coerce off, unique, default or regex column")
            continue
        try:
            kind = _kind(str(column.dtype), sql_type, name)
            v, y = text_column(name), typed_column(name)
            typed, exact = _typed(kind, dataset, v, y)
            checks = []
            for check in column.checks:
                try:
                    checks.append(_compile_check(check, y, dataset, kind))
                except _NotCompiled:
                    if not getattr(check, "ignore_na", True):
                        raise
                    python_checks.append(PythonCheck(name, check, str(column.dtype)))
        except (_NotCompiled, KeyError, TypeError, ValueError) as exc:
            blockers.append(str(exc) or f"column {name!r} cannot be compiled")
            continue
        valid = " AND ".join(f"({c})" for c in (exact, *checks))
        null_ok = "true" if column.nullable else "false"
        ok = f"CASE WHEN {v} IS NULL THEN {null_ok} ELSE coalesce({valid}, false) END"
        columns[name] = CompiledColumn(name, sql_type, typed, ok)
    return CompiledDataset(dataset, columns, tuple(python_checks), tuple(blockers))


_cache: dict[tuple[str, str], CompiledDataset] = {}
_cache_lock = threading.Lock()


def compile_dataset(dataset: Dataset) -> CompiledDataset:
    """The dataset's checks as SQL, compiled once per dataset version (a worker keeps them warm)."""
    key = (dataset.name, dataset.version)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    compiled = _compile(dataset)
    with _cache_lock:
        _cache[key] = compiled
    return compiled
