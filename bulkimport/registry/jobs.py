"""Jobs and their events: the states, creating a job, compare-and-set transitions, claims, queries."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import asdict, dataclass, fields

from bulkimport.config import masked
from bulkimport.errors import InvalidTransition, JobNotFound
from bulkimport.registry.backends import connect, for_update, transaction

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


# The columns a list of jobs shows (the CLI's `jobs`, the dashboard's tables).
JOB_COLUMNS = (
    "id",
    "dataset",
    "brand",
    "mode",
    "status",
    "rows_total",
    "rows_valid",
    "rows_rejected",
    "created_by",
    "created_at",
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
