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
from dataclasses import replace

import redis
from dramatiq import Retry

from bulkimport import lake, progress, registry, schema_evolution
from bulkimport.config import masked, settings
from bulkimport.datasets import get_dataset
from bulkimport.errors import (
    ApprovalOutdated,
    BulkImportError,
    DatasetChanged,
    RevertRefused,
    TransientError,
)
from bulkimport.registry import (
    APPROVED,
    CANCELLED,
    COMMITTED,
    COMMITTING,
    FAILED,
    FIX_DONE,
    FIX_FAILED,
    FIXING,
    PENDING,
    REPLACE,
    REVERTED,
    REVERTING,
    STAGED,
    VALIDATING,
)
from bulkimport.stages import fix, modes, repair
from bulkimport.stages.commit import commit_job, revert_job
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
    already delivered still runs: an unclaimed job is claimed, a claimed one is left alone.
    Raising instead would drop a message that was already delivered."""
    try:
        return {w["id"] for w in progress.live_workers()}
    except redis.RedisError as exc:
        log.warning("cannot read worker heartbeats (%s); treating every claim as live", exc)
        return _EveryoneAlive()


def _start(job_id: str, expected: tuple[str, ...], running: str, give_up=None) -> registry.Job | None:
    """Claim the job for this attempt; None if it has moved on or a live worker has it.

    After too many attempts the job fails, or ``give_up(job, reason)`` decides what becomes of it.
    """
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
        reason = f"gave up after {_attempts(limit)}: {job.error or 'the worker stopped mid-job'}"
        if give_up is not None:
            give_up(job, reason)
        else:
            registry.transition(job_id, running, FAILED, actor=_worker(), error=reason)
        return None
    return job


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _terminal(exc: Exception) -> bool:
    """Bad input fails the job at once; a busy lake and the unexpected (a crash, a lost connection) retry."""
    return isinstance(exc, BulkImportError) and not isinstance(exc, TransientError)


def _reason(exc: Exception) -> str:
    """The error as recorded on its own job: without the job's id."""
    return exc.reason if isinstance(exc, BulkImportError) else str(exc)


def _retry(job: registry.Job, exc: Exception) -> Retry:
    """Ask dramatiq for a retry (its backoff, its retry count): one log line, no traceback."""
    message = masked(f"job={job.id} attempt {job.attempts} failed, will retry: {_reason(exc)}")
    log.warning(message)
    return Retry(message)


def _handle_failure(job: registry.Job, running: str, exc: Exception, started: float) -> None:
    """Fail the job for good (bad input, or no attempts left) or let dramatiq retry."""
    final = _terminal(exc)
    if final or job.attempts >= settings().max_attempts:
        reason = _reason(exc) if final else f"gave up after {_attempts(job.attempts)}: {_reason(exc)}"
        failed = registry.transition(job.id, running, FAILED, actor=_worker(), error=reason)
        _log(failed, started, error=repr(reason))
        return
    registry.transition(
        job.id,
        running,
        running,
        actor=_worker(),
        error=f"attempt {job.attempts} failed: {_reason(exc)}",
        note="will retry",
    )
    raise _retry(job, exc) from exc


def validate_and_stage(job_id: str) -> None:
    job = _start(job_id, (PENDING, VALIDATING), VALIDATING)
    if job is None:
        return
    started = time.monotonic()
    _log(job, started)
    progress.publish(job.id, {"phase": "validating", "rows_read": 0, "bytes_total": job.file_bytes})
    try:
        dataset = get_dataset(job.dataset)  # in the try: a broken dataset module fails the job, saying why
        # A dataset whose tables wait for a person's migration fails its jobs at once, saying so.
        schema_evolution.require_current(dataset, _worker())
        # An upload in object storage (workers on several hosts) is read from a local download.
        with lake.warm_session() as con, lake.local_copy(job.file_path) as path:
            # Exactly the mapping confirmed at submit (job.mapping), else header matching: a remembered
            # mapping is only ever proposed at preview, never applied here.
            counts = stage_file(con, job, dataset, path, settings().chunk_rows, on_progress=_progress_or_stop(job.id))
            conflicts = modes.reject_conflicts(con, job, dataset)
            _suggest(con, registry.get(job.id), dataset, counts.dialect, counts.mapping)
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
        rows_valid=counts.rows_valid - conflicts,
        rows_rejected=counts.rows_rejected + conflicts,
        dialect=counts.dialect,
        mapping=counts.mapping,
        note=f"{conflicts} row(s) already in production rejected as conflicts (append)" if conflicts else None,
        dataset_version=dataset.version,
    )
    progress.publish(
        job.id,
        {
            "phase": "staged",
            "rows_read": counts.rows_total,
            "rows_valid": job.rows_valid,
            "rows_rejected": job.rows_rejected,
            "bytes_read": job.file_bytes,
        },
    )
    _log(job, started)


def _suggest(con, job: registry.Job, dataset, dialect: dict, mapping: dict) -> None:
    """Work out repair suggestions for damaged rows; a failure here costs the suggestions, never the job."""
    try:
        repair.store_suggestions(con, replace(job, dialect=dialect, mapping=mapping), dataset)
    except Exception:  # noqa: BLE001 - suggestions are a help, not part of the import
        log.exception("job=%s: could not work out repair suggestions", job.id)


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
            error=_reason(exc),
            approved_by=None,
            approval={**(job.approval or {}), "outdated": True},
            attempts=0,
            note="dataset changed" if isinstance(exc, DatasetChanged) else "approval outdated",
        )
        progress.publish(job.id, {"phase": "staged"})
        _log(job, started, error=repr(_reason(exc)))
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
        rows_deleted=result.rows_deleted if job.mode == REPLACE else None,
        note="already in the ledger" if result.already_committed else None,
    )
    progress.publish(job.id, {"phase": "committed"})
    _log(job, started, inserted=result.rows_inserted, updated=result.rows_updated, deleted=job.rows_deleted)


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
            job.id, REVERTING, COMMITTED, actor=_worker(), error=_reason(exc), attempts=0, note="revert refused"
        )
        _log(job, started, error=repr(_reason(exc)))
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


def check_fixes(job_id: str) -> None:
    """Check the rows a person fixed (the job's pending fix) and return the job to staged."""
    job = _start(job_id, (FIXING,), FIXING, give_up=_fix_gave_up)
    if job is None:
        return
    started = time.monotonic()
    pending = registry.pending_fix(job.id)
    if pending is None:  # already finished by an earlier delivery
        registry.transition(job.id, FIXING, STAGED, actor=_worker(), attempts=0, note="no fix waiting")
        return
    progress.publish(job.id, {"phase": "fixing", "rows_read": 0})
    try:
        dataset = get_dataset(job.dataset)
        with lake.warm_session() as con:
            outcome = fix.apply_fix(con, job, dataset, pending)
    except Exception as exc:  # noqa: BLE001
        if _terminal(exc):
            _fix_gave_up(job, f"the fixed rows could not be checked: {_reason(exc)}", pending)
            return
        if job.attempts >= settings().max_attempts:
            _fix_gave_up(job, f"gave up after {_attempts(job.attempts)}: {_reason(exc)}", pending)
            return
        registry.transition(
            job.id, FIXING, FIXING, actor=_worker(), error=f"attempt {job.attempts} failed: {_reason(exc)}"
        )
        raise _retry(job, exc) from exc
    note = f"{len(outcome.staged)} fixed row(s) staged" + (
        f", {len(outcome.rejected)} still rejected (line {', '.join(map(str, outcome.rejected[:20]))})"
        if outcome.rejected
        else ""
    )
    if outcome.skipped:
        note += f"; line(s) {', '.join(map(str, outcome.skipped[:20]))} were no longer rejected"
    # The staged rows changed: whatever was approved before no longer describes them.
    job = registry.finish_fix(
        pending.id,
        job.id,
        FIX_DONE,
        outcome.to_dict(),
        actor=_worker(),
        note=note,
        rows_valid=outcome.rows_valid,
        rows_rejected=outcome.rows_rejected,
        approval=None,
        approved_by=None,
        error=None,
        attempts=0,
    )
    progress.publish(
        job.id,
        {
            "phase": "staged",
            "rows_read": job.rows_total,
            "rows_valid": job.rows_valid,
            "rows_rejected": job.rows_rejected,
        },
    )
    _log(job, started, fixed=len(outcome.staged), still_rejected=len(outcome.rejected))


def _fix_gave_up(job: registry.Job, reason: str, pending: registry.Fix | None = None) -> None:
    """A fix that cannot be checked leaves the job staged as it was, with the reason."""
    pending = pending or registry.pending_fix(job.id)
    if pending is None:
        registry.transition(job.id, FIXING, STAGED, actor=_worker(), error=reason, attempts=0)
        return
    registry.finish_fix(
        pending.id,
        job.id,
        FIX_FAILED,
        {"error": reason},
        actor=_worker(),
        note="fix not applied",
        error=reason,
        attempts=0,
    )
