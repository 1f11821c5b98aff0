"""The lake's snapshots: which one a job, a time or a snapshot id means (time travel)."""

from __future__ import annotations

import datetime as dt
import numbers

import duckdb
import pandas as pd

from bulkimport import workflow
from bulkimport.api.session import _any_dataset, _ensure, _lake, _snapshot_cache, _tables, _where, _who
from bulkimport.errors import BulkImportError, JobNotFound
from bulkimport.sql import current_snapshot, literal

AsOf = int | str | dt.datetime | dt.date | pd.Timestamp


# ---------------------------------------------------------------- snapshots


def _previous_snapshot(con: duckdb.DuckDBPyConnection, snapshot_id: int) -> int:
    row = con.execute(
        "SELECT max(snapshot_id) FROM ducklake_snapshots('lake') WHERE snapshot_id < ?", [snapshot_id]
    ).fetchone()
    return int(row[0]) if row[0] is not None else -1


def _entry_snapshots(con: duckdb.DuckDBPyConnection, table: str, job_id: str | None = None) -> dict[str, int]:
    """job id -> the snapshot in which its entry in ``audit.<table>`` (ledger, reverts) appeared.

    Commit and revert each write their lake changes and that entry in one
    transaction, so this is the snapshot the commit (or revert) made. The entry's
    ``snapshot_id`` is the newest snapshot when the transaction began, so the
    search starts just after it and nearly always ends there. (DuckLake's
    ``ducklake_table_changes`` cannot answer this: the tables' own ``snapshot_id``
    column shadows the change feed's for inlined rows.) Answers never change,
    so they are cached.
    """
    if f"audit.{table}" not in _tables(con):
        return {}
    where, found, current = _where(), {}, None
    sql = f"SELECT job_id, snapshot_id FROM audit.{table}"
    if job_id is not None:
        sql += f" WHERE job_id = {literal(job_id)}"
    for job_, started in con.execute(sql).fetchall():
        key = (where, table, job_)
        if key not in _snapshot_cache:
            current = current if current is not None else current_snapshot(con)
            _snapshot_cache[key] = _first_snapshot_with(con, table, job_, int(started or 0) + 1, current)
        found[job_] = _snapshot_cache[key]
    return found


def _first_snapshot_with(con: duckdb.DuckDBPyConnection, table: str, job_id: str, start: int, current: int) -> int:
    for version in range(start, current + 1):
        try:
            present = con.execute(
                f"SELECT count(*) FROM audit.{table} AT (VERSION => {version}) WHERE job_id = ?", [job_id]
            ).fetchone()[0]
        except duckdb.InvalidInputException:  # that snapshot was expired
            continue
        if present:
            return version
    raise BulkImportError(f"job {job_id} is in audit.{table} but no snapshot from {start} to {current} holds it")


def _entry_snapshot(con: duckdb.DuckDBPyConnection, table: str, job_id: str) -> int | None:
    return _entry_snapshots(con, table, job_id).get(job_id)


def _job_snapshot(con: duckdb.DuckDBPyConnection, job_id: str) -> int:
    status = workflow.visible_job(job_id, _who()).status  # "not found or not yours" for another brand's job
    snapshot_id = _entry_snapshot(con, "ledger", job_id)
    if snapshot_id is not None:
        return snapshot_id
    raise BulkImportError(
        f"job {job_id} is {status}, not committed: production never held its rows. "
        f"Its rows are in bi.staged({job_id!r}); approve it to commit them."
    )


def _timestamp_snapshot(con: duckdb.DuckDBPyConnection, when: dt.datetime) -> int:
    row = con.execute(
        "SELECT max(snapshot_id) FROM ducklake_snapshots('lake') WHERE snapshot_time <= ?::TIMESTAMPTZ", [when]
    ).fetchone()
    return int(row[0]) if row[0] is not None else -1


def snapshot(as_of: AsOf | None = None, *, before_job: str | None = None) -> int:
    """The lake snapshot id that ``as_of`` (or ``before_job``) means; the newest one if neither is given.

    ``as_of`` is a job id (the state right after that job's commit), a snapshot id
    (``int``) or a time (``datetime``, ``pandas.Timestamp``, an ISO string, or a
    ``date`` meaning its midnight; a time without a zone is in the connection's
    zone, see ``SELECT current_setting('TimeZone')``). ``before_job`` is the state
    just before that job's commit. Returns -1 for a time before the lake's first
    snapshot. For raw SQL time travel::

        n = bi.snapshot(before_job="3f2a9c1b7d4e")
        bi.connect().sql(f"SELECT count(*) FROM production.products AT (VERSION => {n})").fetchone()
    """
    if as_of is not None and before_job is not None:
        raise ValueError("give as_of or before_job, not both")
    _ensure(_any_dataset())
    con = _lake()
    if before_job is not None:
        return _previous_snapshot(con, _job_snapshot(con, before_job))
    if as_of is None:
        return current_snapshot(con)
    if isinstance(as_of, bool):
        raise TypeError("as_of must be a job id, a snapshot id or a time, not a bool")
    if isinstance(as_of, numbers.Integral):
        current = current_snapshot(con)
        if not 0 <= int(as_of) <= current:
            raise BulkImportError(f"there is no lake snapshot {as_of}; snapshots run from 0 to {current}")
        return int(as_of)
    if isinstance(as_of, str):
        try:
            workflow.visible_job(as_of, _who())
        except JobNotFound:
            pass
        else:
            return _job_snapshot(con, as_of)
        try:
            as_of = pd.Timestamp(as_of)
        except ValueError:
            raise BulkImportError(f"as_of={as_of!r} is neither a job id nor a time") from None
    if isinstance(as_of, dt.date) and not isinstance(as_of, dt.datetime):
        as_of = dt.datetime.combine(as_of, dt.time())
    try:
        when = pd.Timestamp(as_of).to_pydatetime()
    except (TypeError, ValueError):
        raise TypeError(f"as_of must be a job id, a snapshot id or a time, not {type(as_of).__name__}") from None
    return _timestamp_snapshot(con, when)
