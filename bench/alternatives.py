"""The floor and the tools people would use instead of bulkimport, each told the file's dialect.

Each is configured as someone who knows the file would configure it (delimiter,
encoding, decimal comma, date format given, not guessed). None of them knows the
line a row starts on, which differs from its position once a quoted value spans
lines: they report failing rows by position, and the benchmark turns positions
into lines afterwards, untimed (``record_lines``).
"""

from __future__ import annotations

import csv as csv_module
import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.generate import FileKind
from bench.measure import Outcome, Skipped, children_peak_mb, own_peak_mb, timed

DECIMAL_COMMA = r"[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+),[0-9]+"  # what the products dataset accepts


def record_lines(path: Path, kind: FileKind, positions) -> list[int]:
    """The line each record at ``positions`` (0 = first after the header) starts on, sorted."""
    positions = sorted({int(p) for p in positions})
    if not kind.spans_lines:
        return [p + 2 for p in positions]
    starts = []
    with open(path, encoding=kind.encoding, newline="") as stream:
        reader = csv_module.reader(stream, delimiter=kind.delimiter)
        next(reader)
        start = reader.line_num + 1
        for _ in reader:
            starts.append(start)
            start = reader.line_num + 1
    return [starts[p] for p in positions]


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------- the floor


def _utf8_copy(path: Path, kind: FileKind, work: Path) -> Path:
    """The file in UTF-8: DuckDB 1.5.5 reads cp1252 only through its encodings extension, which is not installed."""
    if kind.encoding == "utf-8":
        return path
    copy = work / f"{path.stem}.utf8.csv"
    with open(path, encoding=kind.encoding, newline="") as source, open(copy, "w", encoding="utf-8", newline="") as out:
        shutil.copyfileobj(source, out, 1 << 22)
    return copy


def baseline_duckdb(csv: Path, work: Path, kind: FileKind) -> Outcome:
    """Parse once, write once: DuckDB reads the CSV and writes Parquet. Checks nothing.

    The clean file is read as DuckDB guesses it (it guesses right); the messy one is first
    transcoded to UTF-8 (timed) and read with its dialect given, every column as text.
    """
    import duckdb

    target = work / "baseline.parquet"
    con = duckdb.connect()

    def work_():
        source = _sql_text(str(_utf8_copy(csv, kind, work)))
        if kind.name == "clean":
            reader = f"read_csv({source})"
        else:
            reader = (
                f"read_csv({source}, delim = {_sql_text(kind.delimiter)}, quote = '\"', escape = '\"', "
                "header = true, all_varchar = true)"
            )
        con.execute(f"COPY (SELECT * FROM {reader}) TO {_sql_text(str(target))} (FORMAT parquet)")

    _, seconds = timed(work_)
    peak = own_peak_mb()
    rows = con.execute(f"SELECT count(*) FROM {_sql_text(str(target))}").fetchone()[0]
    con.close()
    return Outcome(seconds, peak, None, {"rows_written": rows})


# ---------------------------------------------------------------- pandas + pandera


def pandas_pandera(csv: Path, work: Path, kind: FileKind) -> Outcome:
    """pandas.read_csv (text), then pandera (pandas backend, lazy) with the products schema and a unique SKU.

    Two passes, as pandera needs: coerce first (a column whose coercion fails
    reports its later checks with no row), then check the rows that coerced.
    Repeated SKUs: every copy after the first (``report_duplicates="exclude_first"``).
    Valid rows go to Parquet, failure cases to CSV.
    """
    import pandas as pd
    import pandera.pandas as pa

    from bulkimport.datasets.products import Products

    schema = Products.to_schema()
    schema.unique, schema.report_duplicates = ["sku"], "exclude_first"
    coerce_only = schema.update_columns({name: {"checks": [], "nullable": True} for name in schema.columns})
    coerce_only.checks, coerce_only.unique = [], None

    def normalised(frame: pd.DataFrame) -> tuple[pd.DataFrame, set[int]]:
        """Decimal commas and the file's date formats as pandera's coercion reads them; the rows whose
        date is in none of them (pandas would guess those, month first)."""
        if kind.decimal_comma:
            price = frame["price"]
            comma = price.str.fullmatch(DECIMAL_COMMA, na=False)
            frame.loc[comma, "price"] = price[comma].str.replace(".", "", regex=False).str.replace(",", ".")
        if kind.date_formats == ("%Y-%m-%d",):
            return frame, set()
        text = frame["launch_date"]
        parsed = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        for fmt in kind.date_formats:
            parsed = parsed.fillna(pd.to_datetime(text, format=fmt, errors="coerce"))
        frame["launch_date"] = parsed
        return frame, set(frame.index[text.notna() & parsed.isna()])

    def work_() -> tuple[set[int], int]:
        frame = pd.read_csv(
            csv,
            sep=kind.delimiter,
            quotechar='"',
            encoding=kind.encoding,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
        frame, bad = normalised(frame)
        failures = []
        try:
            coerced = coerce_only.validate(frame.drop(index=list(bad)), lazy=True)
        except pa.errors.SchemaErrors as error:
            failures.append(error.failure_cases)
            bad |= set(error.failure_cases["index"].dropna().astype(int))
            coerced = coerce_only.validate(frame.drop(index=list(bad)), lazy=True)
        try:
            schema.validate(coerced, lazy=True)
        except pa.errors.SchemaErrors as error:
            failures.append(error.failure_cases)
        cases = pd.concat(failures) if failures else pd.DataFrame(columns=["index"])
        if cases["index"].isna().any():
            raise RuntimeError("pandera reported failures without a row:\n" + cases[cases["index"].isna()].to_string())
        bad |= set(cases["index"].astype(int))
        valid = coerced[~coerced.index.isin(bad)]
        valid.to_parquet(work / "pandas_valid.parquet")
        cases.to_csv(work / "pandas_failures.csv", index=False)
        return bad, len(valid)

    (bad, valid), seconds = timed(work_)
    peak = own_peak_mb()
    return Outcome(seconds, peak, record_lines(csv, kind, bad), {"rows_valid": valid})


# ---------------------------------------------------------------- polars + pandera.polars


def polars_pandera(csv: Path, work: Path, kind: FileKind) -> Outcome:
    """polars.read_csv (text), then pandera.polars with the products model (bench/polars_products.py), eager, lazy=True.

    Repeated SKUs: pandera.polars's uniqueness check reports every copy, the first one too.
    Valid rows go to Parquet, failure cases to CSV.
    """
    import polars as pl

    from bench import polars_products

    def work_() -> tuple[set[int], int]:
        frame, unreadable_dates = polars_products.normalised(polars_products.read(csv, kind), kind)
        valid, bad, failures = polars_products.validate(frame, unreadable_dates)
        valid.drop(polars_products.ROW).write_parquet(work / "polars_valid.parquet")
        columns = ["index", "column", "check", "failure_case"]
        cases = [f.select(pl.col(c).cast(pl.String) for c in columns) for f in failures]
        pl.concat(cases).write_csv(work / "polars_failures.csv")
        return bad, valid.height

    (bad, valid), seconds = timed(work_)
    peak = own_peak_mb()
    return Outcome(seconds, peak, record_lines(csv, kind, bad), {"rows_valid": valid})


# ---------------------------------------------------------------- frictionless


def table_schema(kind: FileKind) -> dict:
    """The products dataset as a Frictionless Table Schema (what it can express of it), for this file.

    Not expressible there: price at most 2 decimals, the EAN-13 check digit and
    the plausible launch date range (the generated valid rows meet them all).
    """
    from bulkimport.datasets.products import CURRENCIES, SKU_PATTERN

    price = {"name": "price", "type": "number"}
    if kind.decimal_comma:
        price.update(decimalChar=",", groupChar=".")
    (date_format,) = kind.date_formats  # a Table Schema date field has one format
    return {
        "fields": [
            {
                "name": "sku",
                "type": "string",
                "constraints": {"required": True, "unique": True, "pattern": SKU_PATTERN.strip("^$")},
            },
            {"name": "name", "type": "string", "constraints": {"required": True, "minLength": 1, "maxLength": 200}},
            {**price, "constraints": {"required": True, "minimum": 0, "maximum": 9_999_999_999.99}},
            {"name": "currency", "type": "string", "constraints": {"required": True, "enum": list(CURRENCIES)}},
            {"name": "stock", "type": "integer", "constraints": {"required": True, "minimum": 0}},
            {"name": "ean", "type": "string", "constraints": {"pattern": "[0-9]{13}"}},
            {"name": "launch_date", "type": "date", "format": date_format},
        ]
    }


def frictionless_binary() -> str:
    found = shutil.which("frictionless", path=str(Path(sys.executable).parent)) or shutil.which("frictionless")
    if not found:
        raise Skipped("frictionless is not installed (pip install -r requirements.txt pins it)")
    return found


def frictionless(csv: Path, work: Path, kind: FileKind) -> Outcome:
    """`frictionless validate` (its command line, row by row in Python) with an equivalent Table Schema.

    Repeated SKUs: its `unique` constraint reports every copy after the first.
    """
    binary = frictionless_binary()
    schema = work / "products.schema.json"
    schema.write_text(json.dumps(table_schema(kind), indent=1))
    report = work / "frictionless-report.json"
    command = [binary, "validate", str(csv), "--schema", str(schema), "--json", "--trusted"]
    command += ["--limit-errors", "1000000000", "--encoding", kind.encoding]
    command += ["--dialect", json.dumps({"csv": {"delimiter": kind.delimiter}})]
    with open(report, "w") as out:
        done, seconds = timed(lambda: subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True))
    peak = children_peak_mb()
    text = report.read_text()
    if not text.strip():
        raise RuntimeError(f"frictionless printed no report (exit {done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(text)
    errors = [e for task in result.get("tasks", []) for e in task.get("errors", [])] + result.get("errors", [])
    unplaced = [e for e in errors if e.get("rowNumber") is None]
    if unplaced:
        raise RuntimeError("frictionless reported errors outside rows: " + json.dumps(unplaced[:3]))
    rows = sum(task.get("stats", {}).get("rows", 0) for task in result.get("tasks", []))
    # rowNumber counts records, the header being row 1.
    lines = record_lines(csv, kind, (e["rowNumber"] - 2 for e in errors))
    return Outcome(seconds, peak, lines, {"rows_read": rows, "errors": len(errors)})
