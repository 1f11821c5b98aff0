"""Merge a job's staged rows into production, once, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from bulkimport import lake, schema_evolution
from bulkimport.datasets import Dataset
from bulkimport.errors import BulkImportError
from bulkimport.registry import Job
from bulkimport.stages.review import Diff, _key_join, changed_condition, current_snapshot, diff, fingerprint


class ApprovalOutdated(BulkImportError):
    """What was approved is not what would be committed: review the new diff and approve again."""


class RevertRefused(BulkImportError):
    """A later import changed rows this job wrote; reverting would overwrite its work."""


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


def _committed_since(con: duckdb.DuckDBPyConnection, job: Job, snapshot: int | None) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT job_id FROM audit.ledger WHERE dataset = ? AND brand = ? AND job_id <> ? AND snapshot_id >= ?"
            " ORDER BY snapshot_id",
            [job.dataset, job.brand, job.id, snapshot or 0],
        ).fetchall()
    ]


def _touched_since(c: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, snapshot: int | None) -> bool:
    """Whether a snapshot after ``snapshot`` changed this job's staged rows or its brand's production rows.

    Only then can the approval's fingerprint differ, so only then is it worth hashing both sides again.
    """
    if snapshot is None:
        return True
    current = current_snapshot(c)
    if current == snapshot:
        return False
    name = str(duckdb.ConstantExpression(dataset.name))
    try:
        for schema, column, value in (("staging", "job_id", job.id), ("production", "brand", job.brand)):
            found = c.execute(
                f"SELECT 1 FROM ducklake_table_changes('lake', '{schema}', {name}, {int(snapshot) + 1}, {current}) "
                f'WHERE "{column}" = ? LIMIT 1',
                [value],
            ).fetchone()
            if found:
                return True
    except duckdb.Error:  # a change DuckLake cannot list (a migration, say): hash to be sure
        return True
    return False


def commit_job(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, approved_by: str) -> CommitResult:
    """MERGE the staged rows by (brand, key) and write the ledger entry atomically.

    A job already in the ledger is not merged again, so a redelivered message
    after a crash finishes the commit exactly once. If the job's approval
    recorded a fingerprint and the staged rows or the production rows they
    touch have changed since, nothing is written and ApprovalOutdated says why.
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
        approved = (job.approval or {}).get("fingerprint")
        seen = (job.approval or {}).get("snapshot")  # the lake as the approver saw it
        if approved and _touched_since(c, job, dataset, seen) and fingerprint(c, job, dataset) != approved:
            since = _committed_since(c, job, seen)
            raise ApprovalOutdated(
                "production changed since this job was approved"
                + (f" (job {', '.join(since)} committed since)" if since else "")
                + "; review the new diff and approve again"
            )
        reviewed = (job.approval or {}).get("diff")
        if approved and reviewed:
            # Same fingerprint, same rows on both sides: the reviewed counts still hold.
            counts = Diff(reviewed["rows_to_insert"], reviewed["rows_to_update"], reviewed["rows_unchanged"])
        else:
            counts = diff(c, job, dataset)
        snapshot = current_snapshot(c)
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
            [
                job.id,
                dataset.name,
                job.brand,
                approved_by,
                counts.rows_to_insert,
                counts.rows_to_update,
                counts.rows_unchanged,
                snapshot,
            ],
        )
        return CommitResult(counts.rows_to_insert, counts.rows_to_update, counts.rows_unchanged)

    return lake.write(con, work)


def _quoted(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


@dataclass(frozen=True)
class RevertResult:
    rows_deleted: int
    rows_restored: int
    already_reverted: bool = False


def revert_job(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, reverted_by: str) -> RevertResult:
    """Undo a committed job as a new snapshot: delete rows it inserted, restore rows it updated.

    Previous values come from DuckLake time travel to the snapshot before the
    job's commit. Refuses (RevertRefused, naming the job) if a later commit
    changed any row this job wrote.
    """
    lake.ensure_tables(con, dataset)
    table = f'production."{dataset.name}"'
    key = ["brand", *dataset.key]
    key_match = " AND ".join(f'p."{c}" = o."{c}"' for c in key)
    all_columns = ["brand", *dataset.columns, "job_id"]

    def work(c: duckdb.DuckDBPyConnection) -> RevertResult:
        done = c.execute("SELECT rows_deleted, rows_restored FROM audit.reverts WHERE job_id = ?", [job.id]).fetchone()
        if done:
            return RevertResult(*done, already_reverted=True)
        entry = c.execute("SELECT snapshot_id FROM audit.ledger WHERE job_id = ?", [job.id]).fetchone()
        if entry is None:
            raise BulkImportError(f"job {job.id} has no commit in the ledger; nothing to revert")
        before = int(entry[0])
        # Keys this job staged whose production row now belongs to a job committed after it.
        later = c.execute(
            f'SELECT DISTINCT p.job_id FROM {table} p JOIN staging."{dataset.name}" s ON {_key_join(dataset)}'
            " JOIN audit.ledger l ON l.job_id = p.job_id"
            " WHERE s.job_id = ? AND p.job_id <> ? AND l.snapshot_id > ?",
            [job.id, job.id, before],
        ).fetchall()
        if later:
            raise RevertRefused(
                f"job {', '.join(sorted(r[0] for r in later))} committed later and changed rows "
                f"that job {job.id} wrote; revert that job first"
            )
        # Production before the commit, in today's columns: a migration may have changed them since.
        old = schema_evolution.as_of(c, dataset, "production", before)
        written = f"(SELECT {_quoted(key)} FROM {table} WHERE job_id = $job)"
        restored = c.sql(
            f"SELECT count(*) FROM {written} p WHERE EXISTS (SELECT 1 FROM {old} o WHERE {key_match})",
            params={"job": job.id},
        ).fetchone()[0]
        total = c.sql(f"SELECT count(*) FROM {table} WHERE job_id = $job", params={"job": job.id}).fetchone()[0]
        c.execute(
            f"CREATE OR REPLACE TEMP TABLE revert_previous AS SELECT o.* FROM {old} o "
            f"WHERE EXISTS (SELECT 1 FROM {table} p WHERE p.job_id = ? AND {key_match})",
            [job.id],
        )
        c.execute(f"DELETE FROM {table} WHERE job_id = ?", [job.id])
        c.execute(f"INSERT INTO {table} ({_quoted(all_columns)}) SELECT {_quoted(all_columns)} FROM revert_previous")
        c.execute("DROP TABLE revert_previous")
        c.execute(
            "INSERT INTO audit.reverts VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?)",
            [job.id, dataset.name, job.brand, reverted_by, total - restored, restored, current_snapshot(c)],
        )
        return RevertResult(total - restored, restored)

    return lake.write(con, work)
