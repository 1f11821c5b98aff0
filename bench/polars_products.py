"""The products dataset as a pandera.polars model, and how the polars_pandera contender uses it.

The model means what bulkimport/datasets/products.py means (pattern, length,
ranges, list, at most 2 decimals, EAN-13 check digit, date range), written the
way a polars user would: pandera's built-in checks, polars expressions for the
custom ones. Repeated SKUs fail pandera's own uniqueness check, which in
pandera.polars reports every copy (the first one too).

Every column is read as text and pandera coerces it, in two passes: pandera.polars
stops coercing at the first column that fails and reports that column's rows
only, and checks on a column it could not coerce report no row. So pass one
coerces each column alone (every failing row, every column), pass two checks the
rows that coerced.
"""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from bench.generate import FileKind
from bulkimport.datasets.products import CURRENCIES, SKU_PATTERN

ROW = "_row"  # the row's position in the file (0 = the first record after the header)
DECIMAL_COMMA = r"^[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+),[0-9]+$"  # what the products dataset accepts
POLARS_ENCODINGS = {"utf-8": "utf8", "cp1252": "windows-1252"}


class Products(pa.DataFrameModel):
    sku: str = pa.Field(str_matches=SKU_PATTERN)
    name: str = pa.Field(str_length={"min_value": 1, "max_value": 200})
    price: float = pa.Field(ge=0, le=9_999_999_999.99)
    currency: str = pa.Field(isin=CURRENCIES)
    stock: int = pa.Field(ge=0)
    ean: str = pa.Field(nullable=True)
    launch_date: dt.date = pa.Field(nullable=True)

    @pa.check("price", name="at_most_2_decimals")
    def price_has_two_decimals(cls, data: pa.PolarsData) -> pl.LazyFrame:
        cents = pl.col(data.key) * 100  # the same tolerance as the products dataset's check
        return data.lazyframe.select((cents - cents.round()).abs() <= 1e-6 + 1e-15 * cents.abs())

    @pa.check("ean", name="ean13_check_digit")
    def ean_is_valid(cls, data: pa.PolarsData) -> pl.LazyFrame:
        code = pl.col(data.key)
        digit = [code.str.slice(i, 1).cast(pl.Int32, strict=False) for i in range(13)]
        weighted = pl.sum_horizontal([d * (3 if i % 2 else 1) for i, d in enumerate(digit[:12])])
        ok = code.str.contains(r"^[0-9]{13}$") & ((10 - weighted % 10) % 10 == digit[12])
        return data.lazyframe.select(code.is_null() | ok.fill_null(False))

    @pa.check("launch_date", name="plausible_date")
    def launch_date_is_plausible(cls, data: pa.PolarsData) -> pl.LazyFrame:
        d = pl.col(data.key)
        return data.lazyframe.select(d.is_null() | d.is_between(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))

    class Config:
        coerce = True
        strict = False  # the row number column rides along
        unique = ["sku"]


def read(path, kind: FileKind) -> pl.DataFrame:
    """Every column as text, with the file's dialect given, not guessed."""
    frame = pl.read_csv(
        path,
        separator=kind.delimiter,
        quote_char='"',
        encoding=POLARS_ENCODINGS[kind.encoding],
        infer_schema=False,
    )
    return frame.with_row_index(ROW)


def normalised(frame: pl.DataFrame, kind: FileKind) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decimal commas and dates in the file's formats, read as the products dataset reads them.

    A price in no accepted shape is left as written, so coercion fails on it and reports its row.
    Dates are parsed here, by polars: pandera.polars 0.35 coerces text to a date with a cast that
    polars 2 removed. Returns the frame and, as failure cases, the rows whose date is in none of
    the file's formats.
    """
    changes = []
    if kind.decimal_comma:
        price = pl.col("price")
        point = price.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
        changes.append(pl.when(price.str.contains(DECIMAL_COMMA)).then(point).otherwise(price).alias("price"))
    text = pl.col("launch_date")
    changes.append(pl.coalesce([text.str.to_date(f, strict=False) for f in kind.date_formats]).alias("launch_date"))
    parsed = frame.with_columns(changes)
    unreadable = frame.filter(text.is_not_null() & parsed["launch_date"].is_null())
    cases = unreadable.select(
        pl.col("launch_date").alias("failure_case"),
        pl.lit("launch_date").alias("column"),
        pl.lit("date in " + " or ".join(kind.date_formats)).alias("check"),
        pl.col(ROW).alias("index"),
    )
    return parsed, cases


def _coercion_only(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    only = schema.update_columns({c: {"checks": [], "nullable": True} for c in schema.columns})
    only.checks, only.unique = [], None
    return only


def _rows(cases: pl.DataFrame, frame: pl.DataFrame) -> set[int]:
    """The file positions of failure cases (pandera's ``index`` is the position in the validated frame)."""
    return set(frame[ROW].gather(cases["index"].cast(pl.Int64)).to_list())


def validate(frame: pl.DataFrame, unreadable_dates: pl.DataFrame) -> tuple[pl.DataFrame, set[int], list[pl.DataFrame]]:
    """Coerce, then check (``normalised`` gives both arguments): the valid rows (typed), the positions
    of the failing rows, the failure cases."""
    schema = Products.to_schema()
    coerce_only = _coercion_only(schema)
    bad: set[int] = set(unreadable_dates["index"].to_list())
    failures: list[pl.DataFrame] = [unreadable_dates]
    for column in schema.columns:
        try:
            coerce_only.select_columns([column]).validate(frame.select(ROW, column), lazy=True)
        except SchemaErrors as error:
            cases = error.failure_cases.filter(pl.col("index").is_not_null())  # the rest say "not Float64"
            failures.append(cases)
            bad |= _rows(cases, frame)
    coerced = coerce_only.validate(frame.filter(~pl.col(ROW).is_in(sorted(bad))), lazy=True)
    try:
        schema.validate(coerced, lazy=True)
    except SchemaErrors as error:
        cases = error.failure_cases
        if cases["index"].null_count():
            unplaced = cases.filter(pl.col("index").is_null())
            raise RuntimeError(f"pandera.polars reported failures without a row:\n{unplaced}") from None
        failures.append(cases)
        bad |= _rows(cases, coerced)
    return coerced.filter(~pl.col(ROW).is_in(sorted(bad))), bad, failures
