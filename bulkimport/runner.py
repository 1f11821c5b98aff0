"""What a worker does with a job id: the status machine around the stages.

Both functions are idempotent: a redelivered message for a job that already
moved on does nothing, and a re-run replaces or skips what an earlier attempt
wrote. Attempts are counted in the registry, so a file that kills its worker
every time (the OOM killer, say) fails after a bounded number of tries.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from bulkimport import lake, progress, registry, schema_evolution
from bulkimport.config import masked, settings
from bulkimport.datasets import get_dataset
from bulkimport.errors import BulkImportError, DatasetChanged, LakeBusy
from bulkimport.registry import (
    APPROVED,
    CANCELLED,
    COMMITTED,
    COMMITTING,
    FAILED,
    PENDING,
    REVERTED,
    REVERTING,
    STAGED,
    VALIDATING,
)
from bulkimport.stages.commit import ApprovalOutdated, RevertRefused, commit_job, revert_job
from bulkimport.stages.stage import drop_job_rows, stage_file

log = logging.getLogger("bulkimport.worker")


class Cancelled(Exception):
    """The job was cancelled while it ran; its lake transaction is rolled back."""


def _progress_or_stop(job_id: str):
    """Publish progress per chunk, and stop if someone cancelled the job meanwhile."""

    def report(values: dict) -> None:
        progress.publish(job_id, values)
        if registry.get(job_id).status == CANCELLED:
            raise Cancelled(job_id)

    return report


class RetryLater(Exception):
    """An unexpected failure with attempts left: dramatiq retries the message."""


def _log(job: registry.Job, started: float, **extra) -> None:
    fields = {
        "job": job.id,
        "dataset": job.dataset,
        "brand": job.brand,
        "status": job.status,
        "rows_total": job.rows_total,
        "rows_valid": job.rows_valid,
        "rows_rejected": job.rows_rejected,
        "attempt": job.attempts,
        "seconds": round(time.monotonic() - started, 3),
        **extra,
    }
    log.info(masked(" ".join(f"{k}={v}" for k, v in fields.items() if v is not None)))


def _worker() -> str:
    return f"{progress.worker_id()}:{threading.get_ident()}"


class _EveryoneAlive:
    """Stands for the live workers while Redis cannot say: no claim is taken from anyone."""

    def __contains__(self, worker_id: object) -> bool:
        return True


def _live_workers():
    """Workers with a fresh heartbeat. With Redis unreachable (an outage, a restart) a message
    already delivered still runs: an unclaimed job is claimed, a claimed one is left alone;
    raising here instead lost the message in the outage test."""
    try:
        return {w["id"] for w in progress.live_workers()}
    except redis.RedisError as exc:
        log.warning("cannot read worker heartbeats (%s); treating every claim as live", exc)
        return _EveryoneAlive()


def _start(job_id: str, expected: tuple[str, ...], running: str) -> registry.Job | None:
    """Claim the job for this attempt; None if it has moved on or a live worker has it."""
    job = registry.claim(job_id, expected, running, worker=_worker(), live_workers=_live_workers())
    if job is None:
        log.info(
            "job=%s is %s (claimed by %s); nothing to do for this message",
            job_id,
            registry.get(job_id).status,
            registry.get(job_id).claimed_by,
        )
        return None
    limit = settings().max_attempts
    if job.attempts > limit:
        registry.transition(
            job_id,
            running,
            FAILED,
            actor=_worker(),
            error=f"gave up after {_attempts(limit)}: {job.error or 'the worker stopped mid-job'}",
        )
        return None
    return job


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _handle_failure(job: registry.Job, running: str, exc: Exception, started: float) -> None:
    """Fail the job for good (bad input, or no attempts left) or let dramatiq retry."""
    final = not isinstance(exc, LakeBusy) and isinstance(exc, BulkImportError)
    limit = settings().max_attempts
    if final or job.attempts >= limit:
        reason = str(exc) if final else f"gave up after {_attempts(job.attempts)}: {exc}"
        failed = registry.transition(job.id, running, FAILED, actor=_worker(), error=reason)
        _log(failed, started, error=repr(reason))
        return
    registry.transition(
        job.id, running, running, actor=_worker(), error=f"attempt {job.attempts} failed: {exc}", note="will retry"
    )
    raise RetryLater(masked(f"job {job.id}: attempt {job.attempts} failed: {exc}")) from exc


def validate_and_stage(job_id: str) -> None:
    job = _start(job_id, (PENDING, VALIDATING), VALIDATING)
    if job is None:
        return
    started = time.monotonic()
    _log(job, started)
    dataset = get_dataset(job.dataset)
    progress.publish(job.id, {"phase": "validating", "rows_read": 0, "bytes_total": job.file_bytes})
    try:
        # A dataset whose tables wait for a person's migration fails its jobs at once, saying so.
        schema_evolution.require_current(dataset, _worker())
        # An upload in object storage (workers on several hosts) is read from a local download.
        with lake.warm_session() as con, lake.local_copy(job.file_path) as path:
            # Exactly the mapping confirmed at submit (job.mapping), else header matching: a remembered
            # mapping is only ever proposed at preview, never applied here.
            counts = stage_file(con, job, dataset, path, settings().chunk_rows, on_progress=_progress_or_stop(job.id))
    except Cancelled:
        with lake.session() as con:
            drop_job_rows(con, job, dataset)
        progress.publish(job.id, {"phase": "cancelled"})
        _log(registry.get(job.id), started)
        return
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
        _handle_failure(job, VALIDATING, exc, started)
        return
    if job.mapping:  # set at submit only when the user chose it: propose it for the brand's next file like this one
        registry.remember_mapping(job.dataset, job.brand, counts.dialect["header"], job.mapping)
    job = registry.transition(
        job.id,
        VALIDATING,
        STAGED,
        actor=_worker(),
        error=None,
        attempts=0,
        rows_total=counts.rows_total,
        rows_valid=counts.rows_valid,
        rows_rejected=counts.rows_rejected,
        dialect=counts.dialect,
        mapping=counts.mapping,
        dataset_version=dataset.version,
    )
    progress.publish(
        job.id,
        {
            "phase": "staged",
            "rows_read": counts.rows_total,
            "rows_valid": counts.rows_valid,
            "rows_rejected": counts.rows_rejected,
            "bytes_read": job.file_bytes,
        },
    )
    _log(job, started)


def commit_to_production(job_id: str) -> None:
    job = _start(job_id, (APPROVED, COMMITTING), COMMITTING)
    if job is None:
        return
    started = time.monotonic()
    _log(job, started)
    progress.publish(job.id, {"phase": "committing"})
    try:
        dataset = get_dataset(job.dataset)
        dataset.require_version(job)
        schema_evolution.require_current(dataset, _worker())
        with lake.warm_session() as con:
            result = commit_job(con, job, dataset, job.approved_by or "unknown")
    except (ApprovalOutdated, DatasetChanged) as exc:
        job = registry.transition(
            job.id,
            COMMITTING,
            STAGED,
            actor=_worker(),
            error=str(exc),
            approved_by=None,
            approval={**(job.approval or {}), "outdated": True},
            attempts=0,
            note="dataset changed" if isinstance(exc, DatasetChanged) else "approval outdated",
        )
        progress.publish(job.id, {"phase": "staged"})
        _log(job, started, error=repr(str(exc)))
        return
    except Exception as exc:  # noqa: BLE001
        _handle_failure(job, COMMITTING, exc, started)
        return
    job = registry.transition(
        job.id,
        COMMITTING,
        COMMITTED,
        actor=_worker(),
        error=None,
        attempts=0,
        rows_inserted=result.rows_inserted,
        rows_updated=result.rows_updated,
        note="already in the ledger" if result.already_committed else None,
    )
    progress.publish(job.id, {"phase": "committed"})
    _log(job, started, inserted=result.rows_inserted, updated=result.rows_updated)


def revert_commit(job_id: str) -> None:
    job = _start(job_id, (REVERTING,), REVERTING)
    if job is None:
        return
    started = time.monotonic()
    try:
        dataset = get_dataset(job.dataset)
        schema_evolution.require_current(dataset, _worker())
        with lake.session() as con:
            result = revert_job(con, job, dataset, _reverted_by(job))
    except RevertRefused as exc:
        job = registry.transition(
            job.id, REVERTING, COMMITTED, actor=_worker(), error=str(exc), attempts=0, note="revert refused"
        )
        _log(job, started, error=repr(str(exc)))
        return
    except Exception as exc:  # noqa: BLE001
        _handle_failure(job, REVERTING, exc, started)
        return
    job = registry.transition(
        job.id,
        REVERTING,
        REVERTED,
        actor=_worker(),
        error=None,
        note=f"{result.rows_deleted} rows removed, {result.rows_restored} restored",
    )
    _log(job, started, deleted=result.rows_deleted, restored=result.rows_restored)


def _reverted_by(job: registry.Job) -> str:
    asked = [e.actor for e in registry.events(job.id) if e.to_status == REVERTING]
    return asked[-1] if asked else "unknown"
