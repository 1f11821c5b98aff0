"""What an operator reviews: counts, rejected rows, staged rows, the diff against production."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field

import duckdb
import pandas as pd

from bulkimport import cells
from bulkimport.datasets import Dataset
from bulkimport.registry import APPEND, REPLACE, Job
from bulkimport.sql import ident, idents, literal
from bulkimport.stages.read.dialect import Dialect


@dataclass(frozen=True)
class Diff:
    rows_to_insert: int
    rows_to_update: int
    rows_unchanged: int
    changed_columns: dict[str, int] = field(default_factory=dict)  # column -> rows whose value changes
    rows_to_delete: int = 0  # replace: the brand's production rows whose key is not in the file
    rows_conflicting: int = 0  # append: staged rows whose key is already in production
    production_rows: int = 0  # replace: the brand's rows in production now (what the deletes are a share of)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Diff:
        """A Diff recorded earlier (an approval); fields it predates take their defaults."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def delete_share(self) -> float:
        return self.rows_to_delete / self.production_rows if self.production_rows else 0.0


def _key_join(dataset: Dataset) -> str:
    return " AND ".join(["p.brand = s.brand"] + [f"p.{ident(c)} = s.{ident(c)}" for c in dataset.key])


def changed_condition(dataset: Dataset) -> str:
    """SQL that is true when a staged row `s` differs from production row `p`."""
    others = [c for c in dataset.columns if c not in dataset.key]
    return " OR ".join(f"p.{ident(c)} IS DISTINCT FROM s.{ident(c)}" for c in others) or "false"


def _others(dataset: Dataset) -> list[str]:
    return [c for c in dataset.columns if c not in dataset.key]


def not_in_file(dataset: Dataset) -> str:
    """SQL true for a production row `p` of the job's brand whose key the job (``$job``) did not stage:
    what a replace commit deletes."""
    return f"NOT EXISTS (SELECT 1 FROM staging.{ident(dataset.name)} s WHERE s.job_id = $job AND {_key_join(dataset)})"


def diff(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> Diff:
    """What the commit would do: rows to insert, update or leave unchanged, which columns change,
    and by the job's mode, rows an append refuses (conflicting) or a replace deletes."""
    changed = changed_condition(dataset)
    per_column = ", ".join(
        f"count(*) FILTER (WHERE p.brand IS NOT NULL AND p.{ident(c)} IS DISTINCT FROM s.{ident(c)})"
        for c in _others(dataset)
    )
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE p.brand IS NULL),"
        f"       count(*) FILTER (WHERE p.brand IS NOT NULL AND ({changed})),"
        f"       count(*) FILTER (WHERE p.brand IS NOT NULL AND NOT ({changed}))"
        + (f", {per_column}" if per_column else "")
        + f" FROM staging.{ident(dataset.name)} s LEFT JOIN production.{ident(dataset.name)} p ON {_key_join(dataset)}"
        " WHERE s.job_id = ?",
        [job.id],
    ).fetchone()
    columns = {c: n for c, n in zip(_others(dataset), row[3:], strict=True) if n}
    if job.mode == APPEND:  # append never updates: a key already in production is a conflict
        return Diff(row[0], 0, 0, {}, rows_conflicting=row[1] + row[2])
    if job.mode == REPLACE:
        deleted, present = con.sql(
            f"SELECT count(*) FILTER (WHERE {not_in_file(dataset)}), count(*) "
            f"FROM production.{ident(dataset.name)} p WHERE p.brand = $brand",
            params={"job": job.id, "brand": job.brand},
        ).fetchone()
        return Diff(row[0], row[1], row[2], columns, rows_to_delete=deleted, production_rows=present)
    return Diff(row[0], row[1], row[2], columns)


def deletes(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, limit: int = 50) -> pd.DataFrame:
    """A sample of the production rows a replace commit of ``job`` would delete, by key."""
    columns = ", ".join(f"p.{ident(c)}" for c in dataset.columns)
    order = ", ".join(f"p.{ident(c)}" for c in dataset.key)
    return con.sql(
        f"SELECT {columns}, p.job_id AS written_by FROM production.{ident(dataset.name)} p "
        f"WHERE p.brand = $brand AND {not_in_file(dataset)} ORDER BY {order} LIMIT {int(limit)}",
        params={"job": job.id, "brand": job.brand},
    ).df()


def updates(
    con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, limit: int = 50
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A sample of rows the commit would change: (before, after), aligned row by row."""
    key = [f"s.{ident(c)}" for c in dataset.key]
    before = ", ".join(f"p.{ident(c)} AS {ident(c)}" for c in dataset.columns)
    after = ", ".join(f"s.{ident(c)} AS {ident(c)}" for c in dataset.columns)
    sql = (
        f" FROM staging.{ident(dataset.name)} s JOIN production.{ident(dataset.name)} p ON {_key_join(dataset)}"
        f" WHERE s.job_id = $job AND ({changed_condition(dataset)}) ORDER BY {', '.join(key)} LIMIT {int(limit)}"
    )
    params = {"job": job.id}
    return (con.sql(f"SELECT {before}" + sql, params=params).df(), con.sql(f"SELECT {after}" + sql, params=params).df())


def fingerprint(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> str:
    """A hash of what an approval covers: the job's staged rows and the production rows they would touch.

    If either changes between approval and commit (a re-stage, another import
    committing the same keys), the fingerprint changes.
    """
    columns = ", ".join(f"s.{ident(c)}" for c in dataset.columns)
    production = ", ".join(["p.brand", *(f"p.{ident(c)}" for c in dataset.columns), "p.job_id"])
    # A replace touches every production row of the brand: those it keeps and those it deletes.
    touches = (
        "p.brand = $brand"
        if job.mode == REPLACE
        else f"EXISTS (SELECT 1 FROM staging.{ident(dataset.name)} s WHERE s.job_id = $job AND {_key_join(dataset)})"
    )
    params = {"job": job.id, **({"brand": job.brand} if job.mode == REPLACE else {})}
    staged, touched = con.execute(
        f"SELECT (SELECT bit_xor(hash(s.line, {columns})) FROM staging.{ident(dataset.name)} s WHERE s.job_id = $job),"
        f" (SELECT bit_xor(hash({production})) FROM production.{ident(dataset.name)} p WHERE {touches})",
        params,
    ).fetchone()
    return f"{staged or 0:x}-{touched or 0:x}"


def staged_rows(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> duckdb.DuckDBPyRelation:
    """The job's staged rows, lazily: ``.limit(200).df()`` reads 200 rows."""
    return con.sql(
        f"SELECT line, brand, {idents(dataset.columns)} FROM staging.{ident(dataset.name)} "
        f"WHERE job_id = {literal(job.id)} ORDER BY line"
    )


def rejected_rows(con: duckdb.DuckDBPyConnection, job: Job) -> duckdb.DuckDBPyRelation:
    """The job's rejected rows (one per failing cell), lazily."""
    return con.sql(
        'SELECT line, "column", reason, value, detail, "check", raw FROM staging.rejected_rows '
        f'WHERE job_id = {literal(job.id)} ORDER BY line, "column"'
    )


def _as_is(value):
    return value


# Rejects found after staging keep the row as staged, as JSON, for they have no raw line.
STAGED_ROW_REASONS = ("duplicate-key", "conflict")


def staged_row(raw: str | None, reason: str) -> dict | None:
    """The row as staged ({dataset column: value}) that a reject found after staging keeps, else None
    (a reject of a fixed row keeps its line as text)."""
    if reason not in STAGED_ROW_REASONS or not raw or not raw.startswith("{"):
        return None
    try:
        values = json.loads(raw)
    except ValueError:
        return None
    return values if isinstance(values, dict) else None


def _original_cells(raw: str | None, reason: str, job: Job) -> list[str] | dict | None:
    if raw is None:
        return None
    if (values := staged_row(raw, reason)) is not None:
        return values
    dialect = job.dialect or {}
    if dialect.get("kind") == "xlsx":
        return json.loads(raw)
    try:
        return next(csv.reader([raw], **Dialect.from_dict(dialect).csv_options()))
    except (csv.Error, StopIteration):
        return None


def rejected_for_fixing(con: duckdb.DuckDBPyConnection, job: Job, neutralised: bool = True) -> pd.DataFrame:
    """One row per rejected line: the file's own columns, then line, reason, column, detail.

    Ready to fix in a spreadsheet and upload again; formula-like cells are neutralised
    (``neutralised=False``: as written, for an .xlsx whose cells are text).
    """
    neutralise = cells.neutralise if neutralised else _as_is
    header = list((job.dialect or {}).get("header") or [])
    by_column = {column: name for name, column in (job.mapping or {}).items()}
    rows = con.execute(
        "SELECT line, string_agg(DISTINCT reason, '; '), string_agg(\"column\", '; '), "
        "string_agg(detail, '; '), any_value(raw), any_value(reason) FROM staging.rejected_rows "
        "WHERE job_id = ? GROUP BY line ORDER BY line",
        [job.id],
    ).fetchall()
    out = []
    for line, reasons, columns, details, raw, reason in rows:
        values = _original_cells(raw, reason, job)
        record = dict.fromkeys(header, None)
        if isinstance(values, dict):
            for column, value in values.items():
                record[by_column.get(column, column)] = None if value is None else str(value)
        elif values is not None:
            if (job.dialect or {}).get("kind") == "xlsx" and len(values) < len(header):
                values = values + [""] * (len(header) - len(values))  # a sheet stores no trailing empty cells
            if len(values) == len(header):
                record.update(zip(header, values, strict=True))
            else:
                record["raw"] = raw  # too many or too few cells: keep the line whole
        record.update(line=line, reason=reasons, column=columns, detail=details)
        out.append({k: neutralise(v) for k, v in record.items()})
    columns = [*header, *(["raw"] if any("raw" in r for r in out) else []), "line", "reason", "column", "detail"]
    frame = pd.DataFrame(out, columns=columns)
    # The file's own header names are cells too: a column named "=HYPERLINK(...)" must not run.
    frame.columns = [neutralise(c) for c in frame.columns]
    return frame
