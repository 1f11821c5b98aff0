"""Reading jobs: the list, one job, its events, its staged and rejected rows, its diff and changes, exports."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import pandas as pd

from bulkimport import exports, registry, schema_evolution, workflow
from bulkimport.api.session import _ensure, _lake, _who
from bulkimport.api.snapshots import _entry_snapshot, _previous_snapshot
from bulkimport.datasets import Dataset, get_dataset
from bulkimport.sql import ident, idents, literal
from bulkimport.stages import review

# ---------------------------------------------------------------- jobs


def jobs(status: str | None = None, dataset: str | None = None, brand: str | None = None) -> pd.DataFrame:
    """Jobs, newest first, as a pandas DataFrame (one row per job, the fields of ``bi.job``).

    ``created_at`` and ``updated_at`` are timezone-aware timestamps (UTC).

    >>> bi.jobs(status="staged", dataset="products", brand="acme")[["id", "file_name", "rows_rejected"]]
    """
    rows = [j.to_dict() for j in workflow.visible_jobs(_who(), status=status, dataset=dataset, brand=brand)]
    frame = pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(registry.Job)])
    for column in ("created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def job(job_id: str) -> registry.Job:
    """One job: status, counts, who submitted and approved it, the error if it failed.

    >>> j = bi.job("3f2a9c1b7d4e")
    >>> j.status, j.rows_valid, j.rows_rejected
    ('staged', 7, 9)
    """
    return workflow.visible_job(job_id, _who())


def events(job_id: str) -> pd.DataFrame:
    """The job's timeline: every status change with who made it, when, and a note.

    >>> bi.events("3f2a9c1b7d4e")[["at", "actor", "from_status", "to_status", "note"]]
    """
    rows = [dataclasses.asdict(e) for e in workflow.visible_events(job_id, _who())]
    frame = pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(registry.Event)])
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame


def _ready(job_id: str) -> tuple[duckdb.DuckDBPyConnection, registry.Job, Dataset]:
    job_ = workflow.visible_job(job_id, _who())
    dataset = get_dataset(job_.dataset)
    _ensure(dataset)
    con = _lake()
    return con, job_, dataset


# ---------------------------------------------------------------- one job's rows


def staged(job_id: str) -> duckdb.DuckDBPyRelation:
    """The job's valid rows as staged, with their line in the file, ordered by line.

    Columns: ``line``, ``brand`` and the dataset's columns.

    >>> bi.staged("3f2a9c1b7d4e").df()
    >>> bi.staged("3f2a9c1b7d4e").filter("price > 10").pl()
    """
    con, job_, dataset = _ready(job_id)
    return con.sql(
        f"SELECT line, brand, {idents(dataset.columns)} FROM staging.{ident(dataset.name)} "
        f"WHERE job_id = {literal(job_.id)} ORDER BY line"
    )


def rejected(job_id: str) -> duckdb.DuckDBPyRelation:
    """The job's rejected rows: ``line, column, reason, value, detail, check, raw``, by line.

    A row rejected for several reasons has one entry per reason.

    >>> r = bi.rejected("3f2a9c1b7d4e")
    >>> r.aggregate("reason, count(*) AS n", "reason").order("n DESC").df()
    """
    con, job_, _ = _ready(job_id)
    return con.sql(
        'SELECT line, "column", reason, value, detail, "check", raw FROM staging.rejected_rows'
        f' WHERE job_id = {literal(job_.id)} ORDER BY line, "column"'
    )


def diff(job_id: str) -> review.Diff:
    """Counts of rows approving the job would insert, update and leave unchanged.

    For a job already committed: what its commit did (compared with production
    just before it). ``bi.changes(id)`` has the rows behind the counts.

    >>> bi.diff("3f2a9c1b7d4e").to_dict()
    {'rows_to_insert': 7, 'rows_to_update': 0, 'rows_unchanged': 0, ...}
    """
    con, job_, dataset = _ready(job_id)
    if _entry_snapshot(con, "ledger", job_.id) is None:
        return review.diff(con, job_, dataset)
    rows = changes(job_id)
    counts = dict(rows.aggregate("change, count(*)", "change").fetchall())
    per_column = dict(rows.select("unnest(changed_columns) AS c").aggregate("c, count(*)", "c").fetchall())
    values = {
        "rows_to_insert": counts.get("insert", 0),
        "rows_to_update": counts.get("update", 0),
        "rows_unchanged": counts.get("unchanged", 0),
        "changed_columns": {c: per_column[c] for c in dataset.columns if c in per_column},
    }
    known = {f.name for f in dataclasses.fields(review.Diff)}
    return review.Diff(**{k: v for k, v in values.items() if k in known})


def changes(job_id: str) -> duckdb.DuckDBPyRelation:
    """Row by row, what approving the job would do to production (or, once committed, what it did).

    One row per staged row, by line: ``change`` (``insert``, ``update`` or ``unchanged``),
    ``changed_columns`` (the columns whose value differs; NULL for an insert),
    ``line``, ``brand``, the dataset's columns as staged, then ``<column>_before``
    for each non-key column: the production value before (NULL for an insert).
    A committed job is compared with production as it was just before its commit.

    >>> c = bi.changes("3f2a9c1b7d4e")
    >>> c.filter("change = 'update'").select("sku, price_before, price, changed_columns").df()
    """
    con, job_, dataset = _ready(job_id)
    committed_in = _entry_snapshot(con, "ledger", job_.id)
    production_at = f"production.{ident(dataset.name)} p"
    if committed_in is not None:  # in today's columns: a migration may have changed them since
        production_at = schema_evolution.as_of(con, dataset, "production", _previous_snapshot(con, committed_in)) + " p"
    others = [c for c in dataset.columns if c not in dataset.key]
    differs = ", ".join(f"""CASE WHEN p."{c}" IS DISTINCT FROM s."{c}" THEN '{c}' END""" for c in others)
    changed_list = f"list_filter([{differs}], x -> x IS NOT NULL)" if others else "[]::VARCHAR[]"
    staged_columns = ", ".join(f"s.{ident(c)}" for c in dataset.columns)
    before_columns = "".join(f", p.{ident(c)} AS {ident(c + '_before')}" for c in others)
    return con.sql(
        "SELECT CASE WHEN p.brand IS NULL THEN 'insert'"
        f" WHEN ({review.changed_condition(dataset)}) THEN 'update' ELSE 'unchanged' END AS change,"
        f" CASE WHEN p.brand IS NOT NULL THEN {changed_list} END AS changed_columns,"
        f" s.line, s.brand, {staged_columns}{before_columns}"
        f" FROM staging.{ident(dataset.name)} s LEFT JOIN {production_at} ON {review._key_join(dataset)}"
        f" WHERE s.job_id = {literal(job_.id)} ORDER BY s.line"
    )


# ---------------------------------------------------------------- files


def export(job_id: str, what: str, target: str | Path, fmt: str = "csv") -> None:
    """Write a job's ``staged`` or ``rejected`` rows to a file (``-`` for standard output), as the CLI does.

    Rejected rows come out one per line in the file's own columns, plus line,
    reason, column and detail: ready to fix and upload again. ``fmt`` is ``csv``
    (cells a spreadsheet would run as formulas get a leading ``'``), ``xlsx``
    (every cell text) or ``parquet``.

    >>> bi.export("3f2a9c1b7d4e", "rejected", "fix-me.csv")
    >>> bi.export("3f2a9c1b7d4e", "staged", "rows.xlsx", fmt="xlsx")
    """
    exports.export(job_id, what, target, fmt, user=_who())
