"""The only place that sends work: a message names the actor, carries the job id.

Senders (dashboard, CLI, notebooks) never import actor code, so the work can
only run in a worker that consumes the queue.
"""

from __future__ import annotations

import logging

import redis
from dramatiq import Broker, Message

from bulkimport import registry
from bulkimport.broker import redis_broker
from bulkimport.config import masked, settings
from bulkimport.errors import DispatchError

log = logging.getLogger(__name__)

VALIDATE_AND_STAGE = "validate_and_stage"
COMMIT_TO_PRODUCTION = "commit_to_production"
REVERT_COMMIT = "revert_commit"
CHECK_FIXES = "check_fixes"
ACTOR_NAMES = (VALIDATE_AND_STAGE, COMMIT_TO_PRODUCTION, REVERT_COMMIT, CHECK_FIXES)
# Which message moves a job on from each state that waits for a worker.
ACTOR_FOR = {
    registry.PENDING: VALIDATE_AND_STAGE,
    registry.VALIDATING: VALIDATE_AND_STAGE,
    registry.APPROVED: COMMIT_TO_PRODUCTION,
    registry.COMMITTING: COMMIT_TO_PRODUCTION,
    registry.REVERTING: REVERT_COMMIT,
    registry.FIXING: CHECK_FIXES,
}


def send(actor_name: str, job_id: str, *, broker: Broker | None = None) -> Message:
    """Enqueue ``actor_name(job_id)`` by name. Raises DispatchError if the broker is unreachable."""
    if actor_name not in ACTOR_NAMES:
        raise ValueError(f"unknown actor {actor_name!r}; expected one of {ACTOR_NAMES}")
    broker = broker or redis_broker()
    message = Message(queue_name=settings().queue, actor_name=actor_name, args=(job_id,), kwargs={}, options={})
    try:
        sent = broker.enqueue(message)
    except redis.RedisError as exc:
        raise DispatchError(
            f"could not queue {actor_name} for job {job_id}: the broker at {masked(settings().redis_url)} "
            f"is unreachable ({masked(exc)}). Start Redis (`bulkimport up` starts one) or set REDIS_URL.",
            job_id,
        ) from exc
    log.info("sent %s for job %s as message %s", actor_name, job_id, sent.message_id)
    registry.set_message_id(job_id, sent.message_id)
    return sent
