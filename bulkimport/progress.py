"""Live progress of jobs and health of workers, kept in Redis.

Workers publish; the dashboard and CLI read. Everything here expires on its
own, so a dead worker simply disappears.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from dataclasses import dataclass, field

import redis

from bulkimport.config import masked, settings

WORKER_TTL_S = 15
PROGRESS_TTL_S = 7 * 24 * 3600
_WORKER_KEY = "bulkimport:worker:"
_PROGRESS_KEY = "bulkimport:progress:"


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, decode_responses=True)


def client() -> redis.Redis:
    return _client(settings().redis_url)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def publish(job_id: str, values: dict) -> None:
    """Record a job's live progress; never fails the job if Redis hiccups."""
    try:
        key = _PROGRESS_KEY + job_id
        pipe = client().pipeline()
        pipe.hset(key, mapping={k: json.dumps(v) for k, v in {**values, "at": time.time()}.items()})
        pipe.expire(key, PROGRESS_TTL_S)
        pipe.execute()
    except redis.RedisError:
        pass


_STATUS_CHANNEL = "bulkimport:status:"
# Every job's changes on one channel, for pages that follow several jobs (only the job id travels:
# a page re-reads the registry, which keeps to the reader's brands).
_ANY_STATUS_CHANNEL = "bulkimport:status"


def notify_status(job_id: str, status: str) -> None:
    """Tell whoever waits on the job that its status changed (after the registry committed it).

    A wake-up call only: the registry stays the truth, and waiters re-read it. Never
    fails the transition if Redis is away (waiters then fall back to reading the registry).
    """
    try:
        pipe = client().pipeline(transaction=False)
        pipe.publish(_STATUS_CHANNEL + job_id, status)
        pipe.publish(_ANY_STATUS_CHANNEL, job_id)
        pipe.execute()
    except redis.RedisError:
        pass


class StatusWatch:
    """Wake-ups for one job's status changes (or any job's, without a ``job_id``); ``wait(timeout)``
    returns early when one arrives.

    Subscribe before reading the registry, so a change between the read and the wait is not missed:
    it waits in the subscription until the next ``wait``. With Redis away it simply sleeps the timeout.
    """

    def __init__(self, job_id: str | None = None):
        self._pubsub = None
        try:
            self._pubsub = client().pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(_STATUS_CHANNEL + job_id if job_id else _ANY_STATUS_CHANNEL)
        except redis.RedisError:
            self.close()

    def wait(self, timeout: float) -> bool:
        """True when woken by a change (all changes waiting so far are taken), False after the timeout."""
        deadline = time.monotonic() + timeout
        while self._pubsub is not None and (left := deadline - time.monotonic()) > 0:
            try:
                if self._pubsub.get_message(timeout=left):
                    while self._pubsub.get_message(timeout=0):  # a burst of changes is one wake-up
                        pass
                    return True
            except redis.RedisError:
                self.close()
        if (left := deadline - time.monotonic()) > 0:
            time.sleep(left)
        return False

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass
            self._pubsub = None

    def __enter__(self) -> StatusWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read(job_id: str) -> dict:
    try:
        raw = client().hgetall(_PROGRESS_KEY + job_id)
    except redis.RedisError:
        return {}
    return {k: json.loads(v) for k, v in raw.items()}


def beat(queues: list[str], threads: int) -> None:
    """Say this worker process is alive and which queues it consumes."""
    value = {
        "id": worker_id(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": queues,
        "threads": threads,
        "at": time.time(),
    }
    client().set(_WORKER_KEY + worker_id(), json.dumps(value), ex=WORKER_TTL_S)


def forget_worker() -> None:
    try:
        client().delete(_WORKER_KEY + worker_id())
    except redis.RedisError:
        pass


def live_workers() -> list[dict]:
    c = client()
    keys = list(c.scan_iter(_WORKER_KEY + "*", count=500))
    values = c.mget(keys) if keys else []
    return [json.loads(v) for v in values if v]


@dataclass(frozen=True)
class QueueStats:
    queue: str
    waiting: int  # messages ready for a worker
    delayed: int  # messages waiting for a retry's backoff
    dead_lettered: int  # messages dramatiq gave up on
    oldest_waiting_s: float | None  # age of the oldest ready message


def queue_stats() -> QueueStats:
    """Depth, backlog age and dead letters of our dramatiq queue (its Redis keys)."""
    queue = settings().queue
    c = client()
    pipe = c.pipeline()
    pipe.llen(f"dramatiq:{queue}")
    pipe.zcard(f"dramatiq:{queue}.DQ")
    pipe.zcard(f"dramatiq:{queue}.XQ")
    pipe.lindex(f"dramatiq:{queue}", 0)
    waiting, delayed, dead, oldest_id = pipe.execute()
    oldest = None
    if oldest_id:
        raw = c.hget(f"dramatiq:{queue}.msgs", oldest_id)
        if raw:
            oldest = max(0.0, time.time() - json.loads(raw).get("message_timestamp", time.time() * 1000) / 1000)
    return QueueStats(queue, waiting, delayed, dead, oldest)


@dataclass(frozen=True)
class Health:
    redis_ok: bool
    redis_error: str | None = None
    workers: list[dict] = field(default_factory=list)
    queue_depth: int = 0

    @property
    def workers_on_queue(self) -> list[dict]:
        queue = settings().queue
        return [w for w in self.workers if queue in w.get("queues", [])]


def health() -> Health:
    """Is Redis reachable, which workers are alive, how many messages wait."""
    try:
        c = client()
        c.ping()
        depth = c.llen(f"dramatiq:{settings().queue}")
        return Health(True, workers=live_workers(), queue_depth=depth)
    except redis.RedisError as exc:
        return Health(False, redis_error=f"Redis at {masked(settings().redis_url)} is unreachable: {masked(exc)}")
