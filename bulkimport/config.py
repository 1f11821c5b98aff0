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
    registry_path: Path | str  # a SQLite file, or a postgresql:// URL (see is_postgres)
    lake_catalog: Path | str  # a SQLite file, or a postgresql:// URL
    lake_data: Path | str  # a local folder, or an s3://bucket/prefix URL (see is_s3)
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
    lake_busy_s: int = 120
    s3_endpoint: str | None = None  # host:port or URL of an S3-compatible server; None: AWS
    s3_region: str = "us-east-1"
    fast_path: bool = True  # stage through DuckDB and compiled checks where that provably gives the same rows


def is_postgres(location: Path | str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, False for a file path."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def is_s3(location: Path | str) -> bool:
    return isinstance(location, str) and location.startswith("s3://")


def _location(name: str, default: Path, remote=is_postgres) -> Path | str:
    """A URL kept as text (Path would fold its '//'), anything else as a path."""
    raw = os.environ.get(name) or ""
    if remote(raw):
        return raw
    return Path(raw) if raw else default


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
        registry_path=_location("BULKIMPORT_DB_URL", home / "jobs.sqlite"),
        lake_catalog=_location("BULKIMPORT_LAKE_CATALOG", home / "lake" / "catalog.sqlite"),
        lake_data=_location("BULKIMPORT_LAKE_DATA", home / "lake" / "data", remote=is_s3),
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
        lake_busy_s=_int("BULKIMPORT_LAKE_BUSY_SECONDS", 120),
        s3_endpoint=os.environ.get("BULKIMPORT_S3_ENDPOINT") or None,
        s3_region=os.environ.get("BULKIMPORT_S3_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
        fast_path=_int("BULKIMPORT_FAST_PATH", 1) != 0,
    )
