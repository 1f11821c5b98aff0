"""Heal what can be healed: jobs whose worker died, messages that were dead-lettered.

The registry is the source of truth. A job stuck in a running state whose
worker stopped heartbeating is sent again (its actor is idempotent and counts
attempts, so a file that kills every worker ends `failed`, not in a loop). A
message dramatiq gave up on marks its job `failed` with the reason. Runs in
every worker (one at a time, under a Redis lock) and as `bulkimport reap`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import redis
from dramatiq import Message

from bulkimport import dispatch, progress, registry
from bulkimport.config import settings
from bulkimport.dispatch import ACTOR_FOR
from bulkimport.errors import DispatchError, InvalidTransition
from bulkimport.registry import APPROVED, FAILED, PENDING, RUNNING

log = logging.getLogger("bulkimport.healing")

LOCK_KEY = "bulkimport:reaper"


@dataclass
class ReapReport:
    resent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)  # upload folders that never became a job


def _age_s(stamp: str) -> float:
    return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(stamp)).total_seconds()


def stuck_jobs(waiting_after_s: float) -> list[registry.Job]:
    """Running jobs whose worker is gone, and waiting jobs nobody picked up for a while."""
    alive = {w["id"] for w in progress.live_workers()}
    stuck = []
    for job in registry.list_jobs(limit=10_000):
        holder = (job.claimed_by or "").rsplit(":", 1)[0]
        if job.status in RUNNING and holder not in alive and _age_s(job.updated_at) > progress.WORKER_TTL_S:
            stuck.append(job)
        elif job.status in (PENDING, APPROVED) and _age_s(job.updated_at) > waiting_after_s:
            stuck.append(job)
    return stuck


def dead_letters() -> list[tuple[str, Message]]:
    """(redis id, message) of every message dramatiq dead-lettered on our queue."""
    key = f"dramatiq:{settings().queue}.XQ.msgs"
    out = []
    for message_id, data in progress.client().hgetall(key).items():
        try:
            out.append((message_id, Message.decode(data.encode() if isinstance(data, str) else data)))
        except Exception:  # noqa: BLE001 - a message we cannot read is not ours to judge
            continue
    return out


def reap(waiting_after_s: float = 300) -> ReapReport:
    """Send stuck jobs again and fail the jobs of dead-lettered messages; safe to run anywhere, any time."""
    report = ReapReport()
    for job in stuck_jobs(waiting_after_s):
        try:
            dispatch.send(ACTOR_FOR[job.status], job.id)
        except DispatchError as exc:
            log.warning("could not re-send job %s: %s", job.id, exc)
            continue
        report.resent.append(job.id)
        log.info(
            "job=%s status=%s re-sent %s (worker gone or never picked up)", job.id, job.status, ACTOR_FOR[job.status]
        )
    for message_id, message in dead_letters():
        job_id = message.args[0] if message.args else None
        try:
            job = registry.get(job_id)
        except Exception:  # noqa: BLE001 - not one of our jobs
            continue
        # Only the message last sent for the job speaks for it: an older one, or one written into Redis
        # by hand, is dropped without touching the job.
        if job.status in ACTOR_FOR and message.message_id == job.message_id:
            trace = (message.options.get("traceback") or "").strip().splitlines()
            reason = f"gave up: the broker dead-lettered {message.actor_name}: {trace[-1] if trace else 'no error'}"
            try:
                registry.transition(job.id, job.status, FAILED, actor="reaper", error=reason, note="dead-lettered")
                report.failed.append(job.id)
            except InvalidTransition:
                pass
        progress.client().hdel(f"dramatiq:{settings().queue}.XQ.msgs", message_id)
        progress.client().zrem(f"dramatiq:{settings().queue}.XQ", message_id)
    from bulkimport.workflow import sweep_abandoned_uploads  # workflow imports much; only the reaper needs this

    report.swept = [folder.name for folder in sweep_abandoned_uploads()]
    return report


def reap_if_leader(interval_s: float) -> ReapReport | None:
    """Reap unless another process did within ``interval_s`` (a Redis lock)."""
    try:
        if not progress.client().set(LOCK_KEY, progress.worker_id(), nx=True, ex=max(1, int(interval_s))):
            return None
        return reap()
    except redis.RedisError as exc:
        log.warning("reaper skipped: %s", exc)
        return None
