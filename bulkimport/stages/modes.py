"""Write modes: how a job's staged rows change production.

- ``upsert`` (the default): insert new keys, update rows that changed, leave the brand's other rows alone;
- ``append``: insert only; a row whose key is already in production is rejected as a ``conflict``;
- ``replace``: as upsert, and the brand's production rows whose key is not in the file are deleted.
  Approving a replace that deletes more than a set share of the brand's rows needs a confirmation.

The commit itself is in ``commit.py``; the counts an approver sees in ``review.diff``.
"""

from __future__ import annotations

import duckdb

from bulkimport import lake
from bulkimport.datasets import Dataset
from bulkimport.registry import APPEND, MODES, REPLACE, UPSERT, Job
from bulkimport.sql import ident, literal
from bulkimport.stages.review import Diff, _key_join

DESCRIPTIONS = {
    UPSERT: "insert new rows, update changed ones; other rows of the brand stay",
    APPEND: "insert new rows only; a row whose key is already in production is rejected as a conflict",
    REPLACE: "the file is the brand's whole table: rows of the brand not in the file are deleted",
}
assert set(DESCRIPTIONS) == set(MODES)
CONFLICT = "conflict"


def reject_conflicts(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> int:
    """Append mode: move staged rows whose key is already in production to the rejects, as ``conflict``.

    Returns how many rows moved. Safe to run again: moved rows are no longer staged.
    """
    if job.mode != APPEND:
        return 0
    table = f"staging.{ident(dataset.name)}"
    key_text = " || '/' || ".join(f"CAST(s.{ident(c)} AS VARCHAR)" for c in dataset.key)
    # The row as staged, for the grid and the "fix and re-upload" download (its raw line is not kept).
    cells = "CAST(json_object(" + ", ".join(f"{literal(c)}, s.{ident(c)}" for c in dataset.columns) + ") AS VARCHAR)"

    def work(c: duckdb.DuckDBPyConnection) -> int:
        moved = c.execute(
            'INSERT INTO staging.rejected_rows (job_id, line, "column", reason, "check", value, detail, raw) '
            f"SELECT s.job_id, s.line, $key_name, '{CONFLICT}', 'append_new_keys', {key_text}, "
            f"'{'/'.join(dataset.key)} ' || {key_text} || ' is already in production (written by job ' || p.job_id "
            f"|| '); an append only adds new keys', {cells} "
            f"FROM {table} s JOIN production.{ident(dataset.name)} p ON {_key_join(dataset)} WHERE s.job_id = $job",
            {"job": job.id, "key_name": "/".join(dataset.key)},
        ).fetchone()[0]
        if moved:
            c.execute(
                f"DELETE FROM {table} WHERE job_id = $job AND line IN (SELECT line FROM staging.rejected_rows "
                f"WHERE job_id = $job AND reason = '{CONFLICT}')",
                {"job": job.id},
            )
        return moved

    return lake.write(con, work)


def confirmation_needed(job: Job, diff: Diff, share: float) -> str | None:
    """Why approving ``job`` needs an explicit confirmation (a replace that deletes much), or None."""
    if job.mode != REPLACE or not diff.rows_to_delete:
        return None
    if diff.delete_share <= share and not job.rows_rejected:
        return None
    why = (
        f"approving deletes {diff.rows_to_delete:,} of the {diff.production_rows:,} rows of brand {job.brand} "
        f"in production.{job.dataset} ({diff.delete_share:.0%})"
    )
    if diff.delete_share > share:
        why += f", more than the {share:.0%} a replace may delete unconfirmed (BULKIMPORT_REPLACE_GUARD_PERCENT)"
    if job.rows_rejected:
        why += f"; {job.rows_rejected:,} line(s) of the file were rejected, so their rows may be among the deletes"
    return why
