"""Merge a job's staged rows into production, once, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from bulkimport import lake
from bulkimport.datasets import Dataset
from bulkimport.registry import Job
from bulkimport.stages.review import _key_join, changed_condition, diff


@dataclass(frozen=True)
class CommitResult:
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int
    already_committed: bool = False


def _ledger_entry(con: duckdb.DuckDBPyConnection, job: Job) -> CommitResult | None:
    row = con.execute(
        "SELECT rows_inserted, rows_updated, rows_unchanged FROM audit.ledger WHERE job_id = ?", [job.id]
    ).fetchone()
    return CommitResult(*row, already_committed=True) if row else None


def commit_job(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, approved_by: str) -> CommitResult:
    """MERGE the staged rows by (brand, key) and write the ledger entry atomically.

    A job already in the ledger is not merged again, so a redelivered message
    after a crash finishes the commit exactly once.
    """
    lake.ensure_tables(con, dataset)
    columns = dataset.columns
    updates = ", ".join(f'"{c}" = s."{c}"' for c in columns if c not in dataset.key)
    insert_cols = ", ".join(["brand", *(f'"{c}"' for c in columns), "job_id"])
    insert_vals = ", ".join(["s.brand", *(f's."{c}"' for c in columns), "s.job_id"])
    source = ", ".join(["brand", *(f'"{c}"' for c in columns), "job_id"])

    def work(c: duckdb.DuckDBPyConnection) -> CommitResult:
        done = _ledger_entry(c, job)
        if done:
            return done
        counts = diff(c, job, dataset)
        snapshot = c.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')").fetchone()[0]
        c.execute(
            f'MERGE INTO production."{dataset.name}" AS p '
            f'USING (SELECT {source} FROM staging."{dataset.name}" WHERE job_id = ?) AS s '
            f"ON {_key_join(dataset)} "
            f"WHEN MATCHED AND ({changed_condition(dataset)}) THEN UPDATE SET {updates}, job_id = s.job_id "
            f"WHEN NOT MATCHED THEN INSERT ({insert_cols}) VALUES ({insert_vals})",
            [job.id],
        )
        c.execute(
            "INSERT INTO audit.ledger VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?)",
            [job.id, dataset.name, job.brand, approved_by, counts.rows_to_insert, counts.rows_to_update,
             counts.rows_unchanged, snapshot],
        )
        return CommitResult(counts.rows_to_insert, counts.rows_to_update, counts.rows_unchanged)

    return lake.write(con, work)
