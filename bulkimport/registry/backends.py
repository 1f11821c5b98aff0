"""Where the registry lives: its tables, and the SQLite and PostgreSQL backends behind one ``execute``."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from bulkimport.config import is_postgres, settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    brand TEXT NOT NULL,
    status TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    file_bytes INTEGER NOT NULL DEFAULT 0,
    rows_total INTEGER,
    rows_valid INTEGER,
    rows_rejected INTEGER,
    rows_inserted INTEGER,
    rows_updated INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    approved_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    options TEXT,
    mapping TEXT,
    dialect TEXT,
    approval TEXT,
    claimed_by TEXT,
    mode TEXT,
    rows_deleted INTEGER,
    dataset_version TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_file ON jobs(file_sha256);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS events_job ON events(job_id);
CREATE TABLE IF NOT EXISTS header_mappings (
    dataset TEXT NOT NULL,
    header TEXT NOT NULL,
    mapping TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (dataset, header)
);
CREATE TABLE IF NOT EXISTS fixes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    rows TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS fixes_job ON fixes(job_id);
CREATE TABLE IF NOT EXISTS brand_mappings (
    dataset TEXT NOT NULL,
    brand TEXT NOT NULL,
    header TEXT NOT NULL,
    mapping TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (dataset, brand, header)
);
CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    client TEXT,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    ended_at TEXT
);
CREATE TABLE IF NOT EXISTS login_failures (
    subject TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure TEXT NOT NULL,
    locked_until TEXT
);
"""
# Columns added after the first release: (name, SQL type). Added on open when missing.
_ADDED_COLUMNS = (
    ("options", "TEXT"),
    ("mapping", "TEXT"),
    ("dialect", "TEXT"),
    ("approval", "TEXT"),
    ("claimed_by", "TEXT"),
    ("mode", "TEXT"),
    ("rows_deleted", "INTEGER"),
    ("message_id", "TEXT"),
    ("dataset_version", "TEXT"),
)


class _SchemaOnce:
    """Runs a backend's ``_create_schema`` once per process per database (``key``), not on every connect."""

    _ready: set
    _lock: threading.Lock

    def _with_schema(self, con, key):
        if key not in self._ready:
            with self._lock:
                try:
                    self._create_schema(con)
                except BaseException:
                    con.close()
                    raise
                self._ready.add(key)
        return con


class _SQLite(_SchemaOnce):
    """A SQLite file in WAL mode with a busy timeout; ``BEGIN IMMEDIATE`` serialises writers."""

    begin = "BEGIN IMMEDIATE"
    for_update = ""  # the whole database is locked by BEGIN IMMEDIATE already
    _ready: set[tuple[str, int]] = set()  # (path, inode) of files whose schema this process has checked
    _lock = threading.Lock()

    def connect(self, path) -> sqlite3.Connection:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA synchronous=NORMAL")
        # The inode too: a registry file deleted and made again at the same path needs its tables again.
        return self._with_schema(con, (str(path.resolve()), path.stat().st_ino))

    @staticmethod
    def _create_schema(con: sqlite3.Connection) -> None:
        con.executescript(_SCHEMA)
        present = {row["name"] for row in con.execute("PRAGMA table_info(jobs)")}
        for name, sql_type in _ADDED_COLUMNS:
            if name not in present:
                try:
                    con.execute(f"ALTER TABLE jobs ADD COLUMN {name} {sql_type}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise


class _PgConnection:
    """A psycopg connection that takes the registry's ``?`` placeholders (the SQL has no ``%``)."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql: str, params=()):
        return self._con.execute(sql.replace("?", "%s"), params or None)

    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Postgres(_SchemaOnce):
    """PostgreSQL (psycopg 3): ``BEGIN`` and ``SELECT ... FOR UPDATE`` lock the one job row."""

    begin = "BEGIN"
    for_update = " FOR UPDATE"
    _ready: set[str] = set()  # URLs whose schema this process has checked
    _lock = threading.Lock()

    def connect(self, url: str) -> _PgConnection:
        import psycopg  # only needed at scale
        from psycopg.rows import dict_row

        con = _PgConnection(psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=10))
        return self._with_schema(con, url)

    @staticmethod
    def _create_schema(con: _PgConnection) -> None:
        # CREATE ... IF NOT EXISTS races between processes in PostgreSQL: one at a time.
        con.execute("BEGIN")
        try:
            con.execute("SELECT pg_advisory_xact_lock(7240431)")
            for statement in _SCHEMA.split(";"):
                statement = statement.strip().replace(
                    "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
                )
                if statement:
                    con.execute(statement)
            present = {
                r["column_name"]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = 'jobs'"
                )
            }
            for name, sql_type in _ADDED_COLUMNS:
                if name not in present:
                    con.execute(f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {name} {sql_type}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _backend() -> _SQLite | _Postgres:
    return _Postgres() if is_postgres(settings().registry_path) else _SQLite()


def connect():
    """An open registry connection (sqlite3, or psycopg behind the same ``execute``); close it when done."""
    return _backend().connect(settings().registry_path)


@contextmanager
def transaction() -> Iterator:
    """One registry transaction (writers serialised); sessions and login throttling use it too."""
    backend = _backend()
    with closing(backend.connect(settings().registry_path)) as con:
        con.execute(backend.begin)
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def for_update() -> str:
    """`` FOR UPDATE`` on PostgreSQL (lock the row read), nothing on SQLite (BEGIN IMMEDIATE locked it all)."""
    return _backend().for_update
