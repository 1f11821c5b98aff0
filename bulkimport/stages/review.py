"""What an operator reviews: counts, rejected rows, staged rows, the diff against production."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass

import duckdb
import pandas as pd

from bulkimport.datasets import Dataset
from bulkimport.registry import Job


@dataclass(frozen=True)
class Diff:
    rows_to_insert: int
    rows_to_update: int
    rows_unchanged: int

    def to_dict(self) -> dict:
        return asdict(self)


def _key_join(dataset: Dataset) -> str:
    return " AND ".join(["p.brand = s.brand"] + [f'p."{c}" = s."{c}"' for c in dataset.key])


def changed_condition(dataset: Dataset) -> str:
    """SQL that is true when a staged row `s` differs from production row `p`."""
    others = [c for c in dataset.columns if c not in dataset.key]
    return " OR ".join(f'p."{c}" IS DISTINCT FROM s."{c}"' for c in others) or "false"


def diff(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> Diff:
    """How many staged rows would be inserted, updated or left unchanged."""
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE p.brand IS NULL),"
        f"       count(*) FILTER (WHERE p.brand IS NOT NULL AND ({changed_condition(dataset)})),"
        f"       count(*) FILTER (WHERE p.brand IS NOT NULL AND NOT ({changed_condition(dataset)}))"
        f' FROM staging."{dataset.name}" s LEFT JOIN production."{dataset.name}" p ON {_key_join(dataset)}'
        " WHERE s.job_id = ?",
        [job.id],
    ).fetchone()
    return Diff(*row)


def staged_rows(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> duckdb.DuckDBPyRelation:
    columns = ", ".join(f'"{c}"' for c in dataset.columns)
    return con.sql(
        f'SELECT line, brand, {columns} FROM staging."{dataset.name}" WHERE job_id = $job ORDER BY line',
        params={"job": job.id},
    )


def rejected_rows(con: duckdb.DuckDBPyConnection, job: Job) -> duckdb.DuckDBPyRelation:
    return con.sql(
        'SELECT line, "column", reason, value, detail, "check", raw FROM staging.rejected_rows'
        " WHERE job_id = $job ORDER BY line, \"column\"",
        params={"job": job.id},
    )


# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Make a cell inert in a spreadsheet (a leading apostrophe), leave others alone."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _original_cells(raw: str | None, reason: str, job: Job) -> list[str] | dict | None:
    if raw is None:
        return None
    if reason == "duplicate-key":
        return json.loads(raw)  # {dataset column: staged value}
    dialect = job.dialect or {}
    if dialect.get("kind") == "xlsx":
        return json.loads(raw)
    try:
        return next(csv.reader([raw], delimiter=dialect.get("delimiter", ","), quotechar=dialect.get("quote", '"'),
                               escapechar=dialect.get("escape"), doublequote=dialect.get("escape") is None))
    except (csv.Error, StopIteration):
        return None


def rejected_for_fixing(con: duckdb.DuckDBPyConnection, job: Job) -> pd.DataFrame:
    """One row per rejected line: the file's own columns, then line, reason, column, detail.

    Ready to fix in a spreadsheet and upload again; formula-like cells are neutralised.
    """
    header = list((job.dialect or {}).get("header") or [])
    by_column = {column: name for name, column in (job.mapping or {}).items()}
    rows = con.execute(
        'SELECT line, string_agg(DISTINCT reason, \'; \'), string_agg("column", \'; \'), '
        "string_agg(detail, '; '), any_value(raw), any_value(reason) FROM staging.rejected_rows "
        "WHERE job_id = ? GROUP BY line ORDER BY line",
        [job.id],
    ).fetchall()
    out = []
    for line, reasons, columns, details, raw, reason in rows:
        cells = _original_cells(raw, reason, job)
        record = dict.fromkeys(header, None)
        if isinstance(cells, dict):
            for column, value in cells.items():
                record[by_column.get(column, column)] = None if value is None else str(value)
        elif cells is not None:
            if len(cells) == len(header):
                record.update(zip(header, cells, strict=True))
            else:
                record["raw"] = raw  # too many or too few cells: keep the line whole
        record.update(line=line, reason=reasons, column=columns, detail=details)
        out.append({k: neutralise(v) for k, v in record.items()})
    columns = [*header, *(["raw"] if any("raw" in r for r in out) else []), "line", "reason", "column", "detail"]
    return pd.DataFrame(out, columns=columns)
