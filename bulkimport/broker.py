"""The one dramatiq RedisBroker, shared by the sending side and the workers.

Built explicitly here, never with dramatiq's global broker lookup (which may
quietly build a RabbitMQ broker).
"""

from __future__ import annotations

import functools

from dramatiq.brokers.redis import RedisBroker

from bulkimport.config import settings

# A dead worker's unacked messages are requeued by a "maintenance" pass that
# runs on a random share of broker commands once its heartbeat is this old.
# dramatiq's defaults (60 s, 1 in 1000) left messages stranded for minutes.
HEARTBEAT_TIMEOUT_MS = 15_000
MAINTENANCE_CHANCE = 50_000  # per million commands: 5%


def build_broker(url: str | None = None) -> RedisBroker:
    return RedisBroker(
        url=url or settings().redis_url,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
        socket_connect_timeout=3,
        health_check_interval=30,
    )


@functools.lru_cache(maxsize=4)
def _broker_for(url: str) -> RedisBroker:
    return build_broker(url)


def redis_broker() -> RedisBroker:
    """The sending side's broker for the current REDIS_URL (built once per URL)."""
    return _broker_for(settings().redis_url)
