"""The dramatiq actors: thin wrappers over bulkimport.runner.

Only workers import this module (``bulkimport worker`` runs
``dramatiq bulkimport.actors``). Senders use bulkimport.dispatch, by name.
"""

import dramatiq

from bulkimport import private, runner
from bulkimport.broker import build_broker
from bulkimport.config import mask_secrets_in_logs, settings
from bulkimport.middleware import KeepDatasetsCurrent, Reaper, WorkerHeartbeat

private.secure_process()  # what this worker writes under BULKIMPORT_HOME is its owner's only
mask_secrets_in_logs()  # dramatiq logs exceptions whole: a broker's or database's URL among them
broker = build_broker()
broker.add_middleware(WorkerHeartbeat())
broker.add_middleware(Reaper(settings().reap_interval_s))
# Added last so that it boots first (dramatiq runs after_* hooks last-added first): a worker whose
# heartbeat says it listens has its datasets' tables in step.
broker.add_middleware(KeepDatasetsCurrent())
dramatiq.set_broker(broker)

QUEUE = settings().queue
MINUTE_MS = 60_000
# The registry counts attempts too (crashes included); dramatiq retries up to that.
RETRIES = max(settings().max_attempts - 1, 0)


# Validation reads a whole file: give it an hour. A bad file fails at once
# (no retry); a crash or a busy lake is retried twice with backoff.
@dramatiq.actor(
    actor_name="validate_and_stage",
    queue_name=QUEUE,
    time_limit=60 * MINUTE_MS,
    max_retries=RETRIES,
    min_backoff=5_000,
    max_backoff=60_000,
)
def validate_and_stage(job_id: str) -> None:
    runner.validate_and_stage(job_id)


# A MERGE of even millions of rows takes seconds; retries as above.
@dramatiq.actor(
    actor_name="commit_to_production",
    queue_name=QUEUE,
    time_limit=30 * MINUTE_MS,
    max_retries=RETRIES,
    min_backoff=5_000,
    max_backoff=60_000,
)
def commit_to_production(job_id: str) -> None:
    runner.commit_to_production(job_id)


# Revert touches only the rows one job wrote.
@dramatiq.actor(
    actor_name="revert_commit",
    queue_name=QUEUE,
    time_limit=30 * MINUTE_MS,
    max_retries=RETRIES,
    min_backoff=5_000,
    max_backoff=60_000,
)
def revert_commit(job_id: str) -> None:
    runner.revert_commit(job_id)


# Fixed rows are few: minutes at most.
@dramatiq.actor(
    actor_name="check_fixes",
    queue_name=QUEUE,
    time_limit=10 * MINUTE_MS,
    max_retries=RETRIES,
    min_backoff=5_000,
    max_backoff=60_000,
)
def check_fixes(job_id: str) -> None:
    runner.check_fixes(job_id)
