"""Settings from the environment, with defaults under BULKIMPORT_HOME.

Read on every call (cheap) so tests and tools can change the environment.
"""

from __future__ import annotations

import logging
import os
import re
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
    # A replace import that would delete more than this share of its brand's production rows
    # is approved only with an explicit confirmation.
    replace_guard_share: float = 0.20
    fast_path: bool = True  # stage through DuckDB and compiled checks where that provably gives the same rows
    dashboard_address: str = "127.0.0.1"  # the interface the dashboard listens on
    session_idle_minutes: int = 60  # a dashboard session ends after this long without a click
    session_hours: int = 12  # ... and this long after its login, whatever happens
    login_checks: int = 2  # password checks (argon2, 64 MiB each) at once per process
    xlsx_max_mb: int = 64  # a workbook's parts may inflate to this much in all
    xlsx_max_strings: int = 1_000_000  # shared strings a workbook may declare
    preview_memory_mb: int = 1536  # a preview's child process may use this much memory ...
    preview_seconds: int = 60  # ... and this much CPU time


# scheme://userinfo@ : the userinfo (a user name, a password, an access key) is what must never be shown.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*)@")


def masked(text: object) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``: fit to show, log or store.

    >>> masked("redis://:s3cret@127.0.0.1:6399/0 is unreachable")
    'redis://***@127.0.0.1:6399/0 is unreachable'
    """
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}***@", str(text))


class MaskSecrets(logging.Filter):
    """A log handler's filter: every record (its traceback too) with URLs' userinfo masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = masked(record.getMessage()), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = masked(logging.Formatter().formatException(record.exc_info))
        return True


def mask_secrets_in_logs() -> None:
    """Put ``MaskSecrets`` on every handler of the root logger (a worker's, the CLI's)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskSecrets) for f in handler.filters):
            handler.addFilter(MaskSecrets())


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


def _home() -> Path:
    return Path(os.environ.get("BULKIMPORT_HOME") or Path.home() / ".bulkimport").expanduser().resolve()


def redis_password_file() -> Path:
    """The password of the Redis that `bulkimport up` starts (0600 under BULKIMPORT_HOME)."""
    return _home() / "redis.password"


def _private_redis_url() -> str:
    """The URL of the Redis `bulkimport up` starts, with its password when the file exists (and is readable)."""
    port = _int("BULKIMPORT_REDIS_PORT", DEFAULT_REDIS_PORT)
    try:
        password = redis_password_file().read_text().strip()
    except OSError:
        password = ""
    return f"redis://:{password}@127.0.0.1:{port}/0" if password else f"redis://127.0.0.1:{port}/0"


def settings() -> Settings:
    home = _home()
    redis_url = os.environ.get("REDIS_URL", "")
    datasets_dir = os.environ.get("BULKIMPORT_DATASETS")
    return Settings(
        home=home,
        redis_url=redis_url or _private_redis_url(),
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
        replace_guard_share=_int("BULKIMPORT_REPLACE_GUARD_PERCENT", 20) / 100,
        fast_path=_int("BULKIMPORT_FAST_PATH", 1) != 0,
        dashboard_address=os.environ.get("BULKIMPORT_DASHBOARD_ADDRESS") or "127.0.0.1",
        session_idle_minutes=_int("BULKIMPORT_SESSION_IDLE_MINUTES", 60),
        session_hours=_int("BULKIMPORT_SESSION_HOURS", 12),
        login_checks=_int("BULKIMPORT_LOGIN_CHECKS", 2),
        xlsx_max_mb=_int("BULKIMPORT_XLSX_MAX_MB", 64),
        xlsx_max_strings=_int("BULKIMPORT_XLSX_MAX_STRINGS", 1_000_000),
        preview_memory_mb=_int("BULKIMPORT_PREVIEW_MEMORY_MB", 1536),
        preview_seconds=_int("BULKIMPORT_PREVIEW_SECONDS", 60),
    )
