"""Settings from the environment, with defaults under BULKIMPORT_HOME.

Read on every call (cheap) so tests and tools can change the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REDIS_PORT = 6399


@dataclass(frozen=True)
class Settings:
    home: Path
    redis_url: str
    redis_url_from_env: bool
    queue: str
    registry_path: Path
    lake_catalog: Path
    lake_data: Path
    uploads: Path
    datasets_dir: Path | None
    max_attempts: int
    chunk_rows: int
    upload_max_mb: int
    worker_processes: int
    worker_threads: int
    dashboard_port: int
    reap_interval_s: int
    duckdb_memory: str


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def settings() -> Settings:
    home = Path(os.environ.get("BULKIMPORT_HOME") or Path.home() / ".bulkimport").expanduser().resolve()
    redis_url = os.environ.get("REDIS_URL", "")
    datasets_dir = os.environ.get("BULKIMPORT_DATASETS")
    return Settings(
        home=home,
        redis_url=redis_url or f"redis://127.0.0.1:{_int('BULKIMPORT_REDIS_PORT', DEFAULT_REDIS_PORT)}/0",
        redis_url_from_env=bool(redis_url),
        queue=os.environ.get("BULKIMPORT_QUEUE", "bulkimport"),
        registry_path=Path(os.environ.get("BULKIMPORT_DB_URL") or home / "jobs.sqlite"),
        lake_catalog=Path(os.environ.get("BULKIMPORT_LAKE_CATALOG") or home / "lake" / "catalog.sqlite"),
        lake_data=Path(os.environ.get("BULKIMPORT_LAKE_DATA") or home / "lake" / "data"),
        uploads=home / "uploads",
        datasets_dir=Path(datasets_dir).expanduser() if datasets_dir else None,
        max_attempts=_int("BULKIMPORT_MAX_ATTEMPTS", 3),
        chunk_rows=_int("BULKIMPORT_CHUNK_ROWS", 50_000),
        upload_max_mb=_int("BULKIMPORT_UPLOAD_MAX_MB", 200),
        worker_processes=_int("BULKIMPORT_WORKER_PROCESSES", 1),
        worker_threads=_int("BULKIMPORT_WORKER_THREADS", 2),
        dashboard_port=_int("BULKIMPORT_DASHBOARD_PORT", 8501),
        reap_interval_s=_int("BULKIMPORT_REAP_INTERVAL", 30),
        duckdb_memory=os.environ.get("BULKIMPORT_DUCKDB_MEMORY", "256MB"),
    )
