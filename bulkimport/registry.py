"""Jobs and the job registry (the control plane).

A job moves through::

    pending -> validating -> staged -> approved -> committing -> committed
    staged -> fixing -> staged (fixed rejected rows checked again)
    and failed, rejected (operator said no), cancelled, reverted

Every change is a compare-and-set from an expected state that appends an
event (who, when, from, to), in one transaction.

The registry is a SQLite file in WAL mode by default, or PostgreSQL when
``BULKIMPORT_DB_URL`` is a ``postgresql://`` URL (workers on several hosts).
The differences (placeholders, locking, identity columns, the added-columns
migration) live in the two small backends below; the functions are the same.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from bulkimport.config import is_postgres, masked, settings
from bulkimport.errors import InvalidTransition, JobNotFound

PENDING, VALIDATING, STAGED, APPROVED = "pending", "validating", "staged", "approved"
COMMITTING, COMMITTED, FAILED, REJECTED = "committing", "committed", "failed", "rejected"
CANCELLED, REVERTING, REVERTED = "cancelled", "reverting", "reverted"
FIXING = "fixing"  # a staged job whose fixed rejected rows a worker checks again
STATUSES = (
    PENDING,
    VALIDATING,
    STAGED,
    FIXING,
    APPROVED,
    COMMITTING,
    COMMITTED,
    FAILED,
    REJECTED,
    CANCELLED,
    REVERTING,
    REVERTED,
)
FINAL = (COMMITTED, FAILED, REJECTED, CANCELLED, REVERTED)
# Jobs a worker still has to move: what the dashboard watches and a reaper re-sends.
IN_FLIGHT = (PENDING, VALIDATING, FIXING, APPROVED, COMMITTING, REVERTING)
# Jobs a worker holds right now (claimed, attempts counted).
RUNNING = (VALIDATING, FIXING, COMMITTING, REVERTING)
# How a job writes to production (see bulkimport.stages.modes).
UPSERT, APPEND, REPLACE = "upsert", "append", "replace"
MODES = (UPSERT, APPEND, REPLACE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    brand TEXT NOT NULL,
    status TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    file_bytes INTEGER NOT NULL DEFAULT 0,
    rows_total INTEGER,
    rows_valid INTEGER,
    rows_rejected INTEGER,
    rows_inserted INTEGER,
    rows_updated INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    approved_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    options TEXT,
    mapping TEXT,
    dialect TEXT,
    approval TEXT,
    claimed_by TEXT,
    mode TEXT,
    rows_deleted INTEGER,
    dataset_version TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_file ON jobs(file_sha256);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS events_job ON events(job_id);
CREATE TABLE IF NOT EXISTS header_mappings (
    dataset TEXT NOT NULL,
    header TEXT NOT NULL,
    mapping TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (dataset, header)
);
CREATE TABLE IF NOT EXISTS fixes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    rows TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS fixes_job ON fixes(job_id);
CREATE TABLE IF NOT EXISTS brand_mappings (
    dataset TEXT NOT NULL,
    brand TEXT NOT NULL,
    header TEXT NOT NULL,
    mapping TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (dataset, brand, header)
);
CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    client TEXT,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    ended_at TEXT
);
CREATE TABLE IF NOT EXISTS login_failures (
    subject TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure TEXT NOT NULL,
    locked_until TEXT
);
"""
# Columns added after the first release: (name, SQL type). Added on open when missing.
_ADDED_COLUMNS = (
    ("options", "TEXT"),
    ("mapping", "TEXT"),
    ("dialect", "TEXT"),
    ("approval", "TEXT"),
    ("claimed_by", "TEXT"),
    ("mode", "TEXT"),
    ("rows_deleted", "INTEGER"),
    ("message_id", "TEXT"),
    ("dataset_version", "TEXT"),
)


@dataclass(frozen=True)
class Job:
    id: str
    dataset: str
    brand: str
    status: str
    file_name: str
    file_path: str
    file_sha256: str
    file_bytes: int
    rows_total: int | None
    rows_valid: int | None
    rows_rejected: int | None
    rows_inserted: int | None
    rows_updated: int | None
    error: str | None
    attempts: int
    created_by: str
    approved_by: str | None
    created_at: str
    updated_at: str
    options: dict | None = None  # what the user set at submit: dialect overrides, sheet
    mapping: dict | None = None  # file column -> dataset column, as chosen or matched
    dialect: dict | None = None  # what was detected and used to read the file
    approval: dict | None = None  # what the approver saw: diff counts, lake snapshot, fingerprint
    claimed_by: str | None = None  # host:pid:thread of the worker running it now
    mode: str = UPSERT  # how the commit writes: upsert, append or replace (bulkimport.stages.modes)
    rows_deleted: int | None = None  # production rows a replace commit deleted
    message_id: str | None = None  # the dramatiq message last sent for it: the only one whose dead letter counts
    dataset_version: str | None = None  # the version of the dataset's definition that validated it

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class Event:
    id: int
    job_id: str
    at: str
    actor: str
    from_status: str | None
    to_status: str
    note: str | None


_JOB_FIELDS = [f.name for f in fields(Job)]
# Columns a transition may set besides status.
_UPDATABLE = {
    "rows_total",
    "rows_valid",
    "rows_rejected",
    "rows_inserted",
    "rows_updated",
    "rows_deleted",
    "error",
    "approved_by",
    "attempts",
    "mapping",
    "dialect",
    "approval",
    "dataset_version",
}
_JSON_FIELDS = ("options", "mapping", "dialect", "approval")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class _SQLite:
    """A SQLite file in WAL mode with a busy timeout; ``BEGIN IMMEDIATE`` serialises writers."""

    begin = "BEGIN IMMEDIATE"
    for_update = ""  # the whole database is locked by BEGIN IMMEDIATE already
    _ready: set[tuple[str, int]] = set()  # (path, inode) of files whose schema this process has checked
    _lock = threading.Lock()

    def connect(self, path) -> sqlite3.Connection:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA synchronous=NORMAL")
        # The inode too: a registry file deleted and made again at the same path needs its tables again.
        key = (str(path.resolve()), path.stat().st_ino)
        if key not in self._ready:
            with self._lock:
                try:
                    self._create_schema(con)
                except BaseException:
                    con.close()
                    raise
                self._ready.add(key)
        return con

    @staticmethod
    def _create_schema(con: sqlite3.Connection) -> None:
        con.executescript(_SCHEMA)
        present = {row["name"] for row in con.execute("PRAGMA table_info(jobs)")}
        for name, sql_type in _ADDED_COLUMNS:
            if name not in present:
                try:
                    con.execute(f"ALTER TABLE jobs ADD COLUMN {name} {sql_type}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise


class _PgConnection:
    """A psycopg connection that takes the registry's ``?`` placeholders (the SQL has no ``%``)."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql: str, params=()):
        return self._con.execute(sql.replace("?", "%s"), params or None)

    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Postgres:
    """PostgreSQL (psycopg 3): ``BEGIN`` and ``SELECT ... FOR UPDATE`` lock the one job row."""

    begin = "BEGIN"
    for_update = " FOR UPDATE"
    _ready: set[str] = set()  # URLs whose schema this process has checked
    _lock = threading.Lock()

    def connect(self, url: str) -> _PgConnection:
        import psycopg  # only needed at scale
        from psycopg.rows import dict_row

        con = _PgConnection(psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=10))
        if url not in self._ready:
            with self._lock:
                try:
                    self._create_schema(con)
                except BaseException:
                    con.close()
                    raise
                self._ready.add(url)
        return con

    @staticmethod
    def _create_schema(con: _PgConnection) -> None:
        # CREATE ... IF NOT EXISTS races between processes in PostgreSQL: one at a time.
        con.execute("BEGIN")
        try:
            con.execute("SELECT pg_advisory_xact_lock(7240431)")
            for statement in _SCHEMA.split(";"):
                statement = statement.strip().replace(
                    "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
                )
                if statement:
                    con.execute(statement)
            present = {
                r["column_name"]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = 'jobs'"
                )
            }
            for name, sql_type in _ADDED_COLUMNS:
                if name not in present:
                    con.execute(f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {name} {sql_type}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _backend() -> _SQLite | _Postgres:
    return _Postgres() if is_postgres(settings().registry_path) else _SQLite()


def connect():
    """An open registry connection (sqlite3, or psycopg behind the same ``execute``); close it when done."""
    return _backend().connect(settings().registry_path)


@contextmanager
def transaction() -> Iterator:
    """One registry transaction (writers serialised); sessions and login throttling use it too."""
    backend = _backend()
    with closing(backend.connect(settings().registry_path)) as con:
        con.execute(backend.begin)
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def for_update() -> str:
    """`` FOR UPDATE`` on PostgreSQL (lock the row read), nothing on SQLite (BEGIN IMMEDIATE locked it all)."""
    return _backend().for_update


def _job(row: sqlite3.Row) -> Job:
    values = {k: row[k] for k in _JOB_FIELDS}
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name]) if values[name] else None
    values["mode"] = values["mode"] or UPSERT  # jobs from before write modes upserted
    return Job(**values)


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def create(
    *,
    job_id: str,
    dataset: str,
    brand: str,
    file_name: str,
    file_path: str,
    file_sha256: str,
    file_bytes: int,
    created_by: str,
    options: dict | None = None,
    mapping: dict | None = None,
    mode: str = UPSERT,
) -> Job:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    stamp = now()
    with transaction() as con:
        con.execute(
            "INSERT INTO jobs (id, dataset, brand, status, file_name, file_path, file_sha256, file_bytes,"
            " created_by, created_at, updated_at, options, mapping, mode) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                job_id,
                dataset,
                brand,
                PENDING,
                file_name,
                file_path,
                file_sha256,
                file_bytes,
                created_by,
                stamp,
                stamp,
                _json(options),
                _json(mapping),
                mode,
            ),
        )
        con.execute(
            "INSERT INTO events (job_id, at, actor, from_status, to_status, note) VALUES (?,?,?,?,?,?)",
            (job_id, stamp, created_by, None, PENDING, f"uploaded {file_name}"),
        )
    _notify(job_id, PENDING)
    return get(job_id)


def _notify(job_id: str, status: str) -> None:
    """Wake whoever waits on the job (workflow.wait, the dashboard) through Redis; the registry stays the truth."""
    from bulkimport import progress  # Redis is the notifier; the registry itself never needs it

    progress.notify_status(job_id, status)


def _json(value) -> str | None:
    return json.dumps(value) if value else None


def get(job_id: str) -> Job:
    with closing(connect()) as con:
        row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise JobNotFound(f"no job with id {job_id!r}; `bulkimport jobs` lists them")
    return _job(row)


def list_jobs(
    status: str | None = None,
    dataset: str | None = None,
    brand: str | None = None,
    limit: int = 500,
    brands: Iterable[str] | None = None,
) -> list[Job]:
    """Jobs newest first; ``brands`` limits them to those brands (None: all)."""
    where, args = [], []
    for column, value in (("status", status), ("dataset", dataset), ("brand", brand)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if brands is not None:
        brands = list(brands)
        where.append(f"brand IN ({', '.join('?' * len(brands))})" if brands else "FALSE")
        args.extend(brands)
    sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY created_at DESC LIMIT ?"
    with closing(connect()) as con:
        return [_job(r) for r in con.execute(sql, (*args, limit))]


def count_by_status(brands: Iterable[str] | None = None) -> dict[str, int]:
    """Jobs per status; ``brands`` limits the count to those brands (None: all)."""
    where, args = "", ()
    if brands is not None:
        args = tuple(brands)
        where = f" WHERE brand IN ({', '.join('?' * len(args))})" if args else " WHERE FALSE"
    with closing(connect()) as con:
        sql = f"SELECT status, count(*) AS n FROM jobs{where} GROUP BY status"
        return {r["status"]: r["n"] for r in con.execute(sql, args)}


def transition(
    job_id: str,
    from_status: str | Iterable[str],
    to_status: str,
    *,
    actor: str,
    note: str | None = None,
    count_attempt: bool = False,
    also: Callable | None = None,
    **updates,
) -> Job:
    """Move a job to ``to_status`` if it is in ``from_status`` (compare-and-set).

    Raises InvalidTransition (naming the current state) when it is not.
    ``also(con)`` runs in the same transaction (a row of another table that
    must change with the job, or not at all).
    """
    allowed = (from_status,) if isinstance(from_status, str) else tuple(from_status)
    unknown = set(updates) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot set {sorted(unknown)} on a job")
    if updates.get("error"):  # errors quote URLs (a broker, a database): never with their passwords
        updates["error"] = masked(updates["error"])
    note = masked(note) if note else note
    stamp = now()
    # A claim lasts one attempt: any transition ends it, so the next message
    # (a retry, a revert) may be taken by any thread.
    sets = ["status = ?", "updated_at = ?", "claimed_by = NULL"] + [f"{k} = ?" for k in updates]
    if count_attempt:
        sets.append("attempts = attempts + 1")
    with transaction() as con:
        row = con.execute("SELECT status FROM jobs WHERE id = ?" + for_update(), (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        current = row["status"]
        if current not in allowed:
            raise InvalidTransition(
                f"job {job_id} is {current}; it must be {' or '.join(allowed)} to become {to_status}"
            )
        values = [_json(v) if k in _JSON_FIELDS else v for k, v in updates.items()]
        con.execute(
            f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND status = ?",
            (to_status, stamp, *values, job_id, current),
        )
        con.execute(
            "INSERT INTO events (job_id, at, actor, from_status, to_status, note) VALUES (?,?,?,?,?,?)",
            (job_id, stamp, actor, current, to_status, note),
        )
        if also is not None:
            also(con)
    _notify(job_id, to_status)
    return get(job_id)


def claim(job_id: str, allowed: Iterable[str], running: str, *, worker: str, live_workers: set[str]) -> Job | None:
    """Claim a job for one worker thread, counting an attempt; None if it is not ours to run.

    A job already in ``running`` is taken over only when the worker that
    claimed it is no longer alive (its process is missing from
    ``live_workers``), so a redelivered or re-sent message never runs a job
    twice at the same time.
    """
    stamp = now()
    with transaction() as con:
        row = con.execute("SELECT status, claimed_by FROM jobs WHERE id = ?" + for_update(), (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        current, holder = row["status"], row["claimed_by"]
        if current not in allowed:
            return None
        if current == running and holder and holder != worker and holder.rsplit(":", 1)[0] in live_workers:
            return None
        con.execute(
            "UPDATE jobs SET status = ?, claimed_by = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?",
            (running, worker, stamp, job_id),
        )
        con.execute(
            "INSERT INTO events (job_id, at, actor, from_status, to_status, note) VALUES (?,?,?,?,?,?)",
            (
                job_id,
                stamp,
                worker,
                current,
                running,
                f"taken over from {holder}" if current == running and holder else None,
            ),
        )
    _notify(job_id, running)
    return get(job_id)


def set_message_id(job_id: str, message_id: str) -> None:
    """Record the message just sent for the job: a dead letter of any other message is not this job's."""
    with transaction() as con:
        con.execute("UPDATE jobs SET message_id = ? WHERE id = ?", (message_id, job_id))


def events(job_id: str) -> list[Event]:
    with closing(connect()) as con:
        rows = con.execute("SELECT * FROM events WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
    return [Event(**dict(r)) for r in rows]


def actor_label(actor: str) -> str:
    """Who made an event, for people: a worker's ``host:pid:thread`` id becomes "worker 28951 on vm"."""
    parts = actor.split(":")
    if len(parts) in (2, 3) and parts[1].isdigit():  # user names hold no ':'
        return f"worker {parts[1]} on {parts[0]}"
    return actor


def remember_mapping(dataset: str, brand: str, header: list[str], mapping: dict[str, str]) -> None:
    """Remember the mapping a brand chose for a header, to propose it (at preview only) for its next such file.

    Per brand: one brand's choice (columns it ignores, say) is never another's.
    """
    with transaction() as con:
        con.execute(
            "INSERT INTO brand_mappings (dataset, brand, header, mapping, updated_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT (dataset, brand, header) DO UPDATE SET mapping = excluded.mapping, "
            "updated_at = excluded.updated_at",
            (dataset, brand, json.dumps(header), json.dumps(mapping), now()),
        )


def remembered_mapping(dataset: str, brand: str, header: list[str]) -> dict[str, str] | None:
    with closing(connect()) as con:
        row = con.execute(
            "SELECT mapping FROM brand_mappings WHERE dataset = ? AND brand = ? AND header = ?",
            (dataset, brand, json.dumps(header)),
        ).fetchone()
    return json.loads(row["mapping"]) if row else None


def jobs_with_file(sha256: str, dataset: str, brand: str, statuses: Iterable[str]) -> list[Job]:
    """Jobs of the same file (by content) for the same dataset and brand in ``statuses``, newest first."""
    statuses = list(statuses)
    with closing(connect()) as con:
        rows = con.execute(
            "SELECT * FROM jobs WHERE file_sha256 = ? AND dataset = ? AND brand = ?"
            f" AND status IN ({', '.join('?' * len(statuses))}) ORDER BY created_at DESC",
            (sha256, dataset, brand, *statuses),
        ).fetchall()
    return [_job(r) for r in rows]


# ---------------------------------------------------------------- fixes of rejected rows

FIX_PENDING, FIX_DONE, FIX_FAILED = "pending", "done", "failed"


@dataclass(frozen=True)
class Fix:
    """Rejected rows a user changed, waiting for (or checked by) a worker.

    ``rows``: one entry per line: ``{"line", "cells": {column: text}, "changes": {column:
    [before, after]}, "suggestion": bool}``. ``result`` says which lines were staged.
    """

    id: int
    job_id: str
    requested_by: str
    requested_at: str
    rows: list[dict]
    status: str
    result: dict | None


def _fix(row) -> Fix:
    values = dict(row)
    values["rows"] = json.loads(values["rows"])
    values["result"] = json.loads(values["result"]) if values["result"] else None
    return Fix(**values)


def request_fix(job_id: str, rows: list[dict], *, requested_by: str, note: str) -> Job:
    """Record fixed rows and move the staged job to ``fixing``, in one transaction."""

    def record(con) -> None:
        con.execute(
            "INSERT INTO fixes (job_id, requested_by, requested_at, rows, status) VALUES (?,?,?,?,?)",
            (job_id, requested_by, now(), json.dumps(rows), FIX_PENDING),
        )

    return transition(job_id, STAGED, FIXING, actor=requested_by, note=note, also=record)


def pending_fix(job_id: str) -> Fix | None:
    """The oldest fix of the job a worker has not finished yet."""
    with closing(connect()) as con:
        row = con.execute(
            "SELECT * FROM fixes WHERE job_id = ? AND status = ? ORDER BY id LIMIT 1", (job_id, FIX_PENDING)
        ).fetchone()
    return _fix(row) if row else None


def fixes(job_id: str) -> list[Fix]:
    with closing(connect()) as con:
        rows = con.execute("SELECT * FROM fixes WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
    return [_fix(r) for r in rows]


def finish_fix(fix_id: int, job_id: str, status: str, result: dict, *, actor: str, note: str, **updates) -> Job:
    """Close a fix and return its job from ``fixing`` to ``staged``, in one transaction."""

    def close(con) -> None:
        con.execute("UPDATE fixes SET status = ?, result = ? WHERE id = ?", (status, json.dumps(result), fix_id))

    return transition(job_id, FIXING, STAGED, actor=actor, note=note, also=close, **updates)
