"""Write a job's staged rows to production, once, in one transaction, by its mode.

upsert: MERGE by (brand, key), inserting new keys and updating changed rows.
append: insert only; a key already in production stops the commit (the approval no longer holds).
replace: as upsert, then delete the brand's production rows whose key the file did not have.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from bulkimport import lake, schema_evolution
from bulkimport.datasets import Dataset
from bulkimport.errors import ApprovalOutdated, BulkImportError, RevertRefused
from bulkimport.registry import APPEND, REPLACE, Job
from bulkimport.sql import current_snapshot, ident, idents
from bulkimport.stages.review import (
    Diff,
    _key_join,
    changed_condition,
    diff,
    fingerprint,
    not_in_file,
)


@dataclass(frozen=True)
class CommitResult:
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int
    already_committed: bool = False
    rows_deleted: int = 0


def _ledger_entry(con: duckdb.DuckDBPyConnection, job: Job) -> CommitResult | None:
    row = con.execute(
        "SELECT rows_inserted, rows_updated, rows_unchanged, coalesce(rows_deleted, 0) FROM audit.ledger "
        "WHERE job_id = ?",
        [job.id],
    ).fetchone()
    return CommitResult(*row[:3], already_committed=True, rows_deleted=row[3]) if row else None


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
                f"WHERE {ident(column)} = ? LIMIT 1",
                [value],
            ).fetchone()
            if found:
                return True
    except duckdb.Error:  # a change DuckLake cannot list (a migration, say): hash to be sure
        return True
    return False


def commit_job(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, approved_by: str) -> CommitResult:
    """Write the staged rows by the job's mode and the ledger entry atomically.

    A job already in the ledger is not written again, so a redelivered message
    after a crash finishes the commit exactly once. If the job's approval
    recorded a fingerprint and the staged rows or the production rows they
    touch (for replace: all of the brand's) have changed since, nothing is
    written and ApprovalOutdated says why.
    """
    lake.ensure_tables(con, dataset)
    columns = dataset.columns
    updates = ", ".join(f"{ident(c)} = s.{ident(c)}" for c in columns if c not in dataset.key)
    insert_cols = ", ".join(["brand", *(ident(c) for c in columns), "job_id"])
    insert_vals = ", ".join(["s.brand", *(f"s.{ident(c)}" for c in columns), "s.job_id"])
    source = ", ".join(["brand", *(ident(c) for c in columns), "job_id"])
    # Append writes new keys only; the others may also update rows that changed.
    when_matched = (
        "" if job.mode == APPEND else f"WHEN MATCHED AND ({changed_condition(dataset)}) THEN UPDATE SET {updates}, "
    )
    when_matched += "job_id = s.job_id " if when_matched else ""

    def work(c: duckdb.DuckDBPyConnection) -> CommitResult:
        done = _ledger_entry(c, job)
        if done:
            return done
        approval = job.approval or {}
        approved = approval.get("fingerprint")
        seen = approval.get("snapshot")  # the lake as the approver saw it
        if approved and _touched_since(c, job, dataset, seen) and fingerprint(c, job, dataset) != approved:
            since = _committed_since(c, job, seen)
            raise ApprovalOutdated(
                "production changed since this job was approved"
                + (f" (job {', '.join(since)} committed since)" if since else "")
                + "; review the new diff and approve again",
                job.id,
            )
        reviewed = approval.get("diff")
        # Same fingerprint, same rows on both sides: the reviewed counts still hold.
        counts = Diff.from_dict(reviewed) if approved and reviewed else diff(c, job, dataset)
        if counts.rows_conflicting:
            raise ApprovalOutdated(
                f"{counts.rows_conflicting} staged row(s) have keys already in production, and an append "
                "never updates; reject the job, or import the file again in upsert mode",
                job.id,
            )
        snapshot = current_snapshot(c)
        c.execute(
            f"MERGE INTO production.{ident(dataset.name)} AS p "
            f"USING (SELECT {source} FROM staging.{ident(dataset.name)} WHERE job_id = ?) AS s "
            f"ON {_key_join(dataset)} "
            f"{when_matched}"
            f"WHEN NOT MATCHED THEN INSERT ({insert_cols}) VALUES ({insert_vals})",
            [job.id],
        )
        if job.mode == REPLACE:
            c.execute(
                f"DELETE FROM production.{ident(dataset.name)} p WHERE p.brand = $brand AND {not_in_file(dataset)}",
                {"job": job.id, "brand": job.brand},
            )
        c.execute(
            "INSERT INTO audit.ledger (job_id, dataset, brand, approved_by, committed_at, rows_inserted, "
            "rows_updated, rows_unchanged, snapshot_id, rows_deleted, mode) "
            "VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?)",
            [
                job.id,
                dataset.name,
                job.brand,
                approved_by,
                counts.rows_to_insert,
                counts.rows_to_update,
                counts.rows_unchanged,
                snapshot,
                counts.rows_to_delete,
                job.mode,
            ],
        )
        return CommitResult(
            counts.rows_to_insert, counts.rows_to_update, counts.rows_unchanged, rows_deleted=counts.rows_to_delete
        )

    return lake.write(con, work)


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
    table = f"production.{ident(dataset.name)}"
    key = ["brand", *dataset.key]
    key_match = " AND ".join(f"p.{ident(c)} = o.{ident(c)}" for c in key)
    all_columns = ["brand", *dataset.columns, "job_id"]

    def work(c: duckdb.DuckDBPyConnection) -> RevertResult:
        done = c.execute("SELECT rows_deleted, rows_restored FROM audit.reverts WHERE job_id = ?", [job.id]).fetchone()
        if done:
            return RevertResult(*done, already_reverted=True)
        entry = c.execute("SELECT snapshot_id FROM audit.ledger WHERE job_id = ?", [job.id]).fetchone()
        if entry is None:
            raise BulkImportError("it has no commit in the ledger; nothing to revert", job.id)
        before = int(entry[0])
        # Keys this job staged whose production row now belongs to a job committed after it.
        later = c.execute(
            f"SELECT DISTINCT p.job_id FROM {table} p JOIN staging.{ident(dataset.name)} s ON {_key_join(dataset)}"
            " JOIN audit.ledger l ON l.job_id = p.job_id"
            " WHERE s.job_id = ? AND p.job_id <> ? AND l.snapshot_id > ?",
            [job.id, job.id, before],
        ).fetchall()
        # Production before the commit, in today's columns: a migration may have changed them since.
        old = schema_evolution.as_of(c, dataset, "production", before)
        later = {r[0] for r in later} | _later_replacements(c, job, dataset, before)
        # A replace deleted the brand's rows that were not in its file: they come back, unless a later
        # import wrote the same key again.
        deleted = f"(SELECT p.* FROM {old} p WHERE p.brand = $brand AND {not_in_file(dataset)})"
        if job.mode == REPLACE:
            later |= {
                r[0]
                for r in c.sql(
                    f"SELECT DISTINCT p.job_id FROM {table} p WHERE EXISTS "
                    f"(SELECT 1 FROM {deleted} o WHERE {key_match})",
                    params={"job": job.id, "brand": job.brand},
                ).fetchall()
            }
        if later:
            raise RevertRefused(
                f"job {', '.join(sorted(later))} committed later and changed rows "
                f"that job {job.id} wrote; revert that job first",
                job.id,
            )
        written = f"(SELECT {idents(key)} FROM {table} WHERE job_id = $job)"
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
        c.execute(f"INSERT INTO {table} ({idents(all_columns)}) SELECT {idents(all_columns)} FROM revert_previous")
        c.execute("DROP TABLE revert_previous")
        brought_back = 0
        if job.mode == REPLACE:
            brought_back = c.execute(
                f"INSERT INTO {table} ({idents(all_columns)}) SELECT {idents(all_columns)} FROM {deleted}",
                {"job": job.id, "brand": job.brand},
            ).fetchone()[0]
        c.execute(
            "INSERT INTO audit.reverts VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?)",
            [
                job.id,
                dataset.name,
                job.brand,
                reverted_by,
                total - restored,
                restored + brought_back,
                current_snapshot(c),
            ],
        )
        return RevertResult(total - restored, restored + brought_back)

    return lake.write(con, work)


def _later_replacements(c: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, before: int) -> set[str]:
    """Replace imports of the brand, committed after ``job`` and not reverted, that deleted rows it wrote."""
    table = f"production.{ident(dataset.name)}"
    gone = c.execute(
        f"SELECT count(*) FROM staging.{ident(dataset.name)} s WHERE s.job_id = ? AND NOT EXISTS "
        f"(SELECT 1 FROM {table} p WHERE {_key_join(dataset)})",
        [job.id],
    ).fetchone()[0]
    if not gone:
        return set()
    return {
        r[0]
        for r in c.execute(
            "SELECT job_id FROM audit.ledger l WHERE dataset = ? AND brand = ? AND job_id <> ? AND snapshot_id > ? "
            "AND mode = 'replace' AND rows_deleted > 0 AND NOT EXISTS (SELECT 1 FROM audit.reverts r "
            "WHERE r.job_id = l.job_id)",
            [dataset.name, job.brand, job.id, before],
        ).fetchall()
    }
