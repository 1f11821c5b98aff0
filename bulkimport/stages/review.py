"""What an operator reviews: counts, rejected rows, staged rows, the diff against production."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb

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
