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
migration) live in the two small backends of backends.py; the functions are the same.

The package: backends.py (the tables, SQLite and PostgreSQL, connect and transaction), jobs.py
(states, jobs, events, transitions, claims) and fix_requests.py (fixes of rejected rows). Every
name is re-exported here: ``registry.get``, ``registry.STAGED``, ``registry.transaction`` ...
"""

from __future__ import annotations

from bulkimport.registry.backends import (
    _backend,  # noqa: F401 - tests ask which backend is in use
    connect,
    for_update,
    transaction,
)
from bulkimport.registry.fix_requests import (
    FIX_DONE,
    FIX_FAILED,
    FIX_PENDING,
    Fix,
    finish_fix,
    fixes,
    pending_fix,
    request_fix,
)
from bulkimport.registry.jobs import (
    APPEND,
    APPROVED,
    CANCELLED,
    COMMITTED,
    COMMITTING,
    FAILED,
    FINAL,
    FIXING,
    IN_FLIGHT,
    JOB_COLUMNS,
    MODES,
    PENDING,
    REJECTED,
    REPLACE,
    REVERTED,
    REVERTING,
    RUNNING,
    STAGED,
    STATUSES,
    UPSERT,
    VALIDATING,
    Event,
    Job,
    actor_label,
    claim,
    count_by_status,
    create,
    events,
    get,
    jobs_with_file,
    list_jobs,
    new_job_id,
    now,
    remember_mapping,
    remembered_mapping,
    set_message_id,
    transition,
)

__all__ = [
    "JOB_COLUMNS",
    "APPEND",
    "APPROVED",
    "CANCELLED",
    "COMMITTED",
    "COMMITTING",
    "Event",
    "FAILED",
    "FINAL",
    "FIXING",
    "FIX_DONE",
    "FIX_FAILED",
    "FIX_PENDING",
    "Fix",
    "IN_FLIGHT",
    "Job",
    "MODES",
    "PENDING",
    "REJECTED",
    "REPLACE",
    "REVERTED",
    "REVERTING",
    "RUNNING",
    "STAGED",
    "STATUSES",
    "UPSERT",
    "VALIDATING",
    "actor_label",
    "claim",
    "connect",
    "count_by_status",
    "create",
    "events",
    "finish_fix",
    "fixes",
    "for_update",
    "get",
    "jobs_with_file",
    "list_jobs",
    "new_job_id",
    "now",
    "pending_fix",
    "remember_mapping",
    "remembered_mapping",
    "request_fix",
    "set_message_id",
    "transaction",
    "transition",
]
