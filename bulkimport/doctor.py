"""Checks that the pieces are there and talk to each other: `bulkimport doctor`."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import redis

from bulkimport import lake, progress, registry
from bulkimport.config import masked, settings
from bulkimport.errors import BulkImportError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def _redis() -> list[Check]:
    url = masked(settings().redis_url)
    try:
        client = progress.client()
        client.ping()
    except redis.RedisError as exc:
        return [
            Check(
                "redis",
                False,
                f"{url} unreachable: {masked(exc)}",
                "start it with `bulkimport up` (or `make run`), or set REDIS_URL",
            )
        ]
    checks = [Check("redis", True, f"{url} answers")]
    try:
        aof = client.config_get("appendonly").get("appendonly")
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        checks.append(
            Check(
                "redis persistence",
                aof == "yes",
                f"appendonly {aof}",
                "" if aof == "yes" else "queued jobs are lost on restart: set `appendonly yes`",
            )
        )
        checks.append(
            Check(
                "redis eviction",
                policy == "noeviction",
                f"maxmemory-policy {policy}",
                "" if policy == "noeviction" else "Redis may drop queued messages: use noeviction",
            )
        )
    except redis.RedisError as exc:  # managed Redis often forbids CONFIG
        checks.append(Check("redis persistence", True, f"not checked ({masked(exc)})"))
    return checks


def _lake() -> list[Check]:
    try:
        with lake.session() as con:
            lake.write(con, lambda c: c.execute("CREATE SCHEMA IF NOT EXISTS audit"))
        return [
            Check("extensions", True, "the lake's DuckDB extensions load from their packages"),
            Check(
                "lake",
                True,
                f"catalog {masked(settings().lake_catalog)} and data {masked(settings().lake_data)} writable",
            ),
        ]
    except (duckdb.Error, BulkImportError, OSError) as exc:
        return [
            Check("lake", False, masked(exc), "check BULKIMPORT_HOME / BULKIMPORT_LAKE_* and the extension packages")
        ]


def _registry() -> list[Check]:
    try:
        counts = registry.count_by_status()
    except Exception as exc:  # noqa: BLE001 - report whatever keeps the registry from opening
        return [Check("registry", False, masked(exc), "check BULKIMPORT_DB_URL and the folder's permissions")]
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no jobs yet"
    return [Check("registry", True, f"{masked(settings().registry_path)}: {summary}")]


def _workers() -> list[Check]:
    health = progress.health()
    if not health.redis_ok:
        return []
    waiting = sum(n for s, n in registry.count_by_status().items() if s in registry.IN_FLIGHT)
    live = health.workers_on_queue
    if live:
        return [
            Check(
                "workers",
                True,
                f"{len(live)} worker process(es) on queue {settings().queue!r}: " + ", ".join(w["id"] for w in live),
            )
        ]
    return [
        Check(
            "workers",
            waiting == 0 and health.queue_depth == 0,
            f"no worker consumes queue {settings().queue!r}; {waiting} job(s) waiting, "
            f"{health.queue_depth} message(s) queued",
            "start one: `bulkimport worker`",
        )
    ]


def _datasets() -> list[Check]:
    """Each dataset whose lake tables wait for a person's migration (its jobs fail until then)."""
    from bulkimport import schema_evolution
    from bulkimport.datasets import all_datasets

    try:
        datasets = all_datasets()
        plans = {name: schema_evolution.status(d) for name, d in datasets.items()}
    except Exception as exc:  # noqa: BLE001 - a broken module or an unreachable lake: say which
        return [Check("datasets", False, str(exc), "`bulkimport datasets check` lists each module's problems")]
    waiting = {name: p for name, p in plans.items() if p.breaking}
    if not waiting:
        return [Check("datasets", True, f"{len(datasets)} dataset(s); their lake tables follow them")]
    return [
        Check(
            "datasets",
            False,
            f"{name}: " + "; ".join(c.describe() for c in plan.breaking),
            f"jobs of {name} fail until an admin runs `bulkimport datasets migrate {name}`",
        )
        for name, plan in waiting.items()
    ]


def run() -> list[Check]:
    return [*_redis(), *_lake(), *_registry(), *_datasets(), *_workers()]
