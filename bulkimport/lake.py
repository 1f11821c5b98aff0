"""The lake: DuckLake over DuckDB, shared safely by many processes.

Extensions come from their PyPI packages (no download at run time) and are
loaded by path, so DuckDB still checks their signatures. Every write goes
through :func:`write`, which retries the catalog's lock conflicts.

The catalog is a SQLite file (WAL mode) by default, or PostgreSQL when
``BULKIMPORT_LAKE_CATALOG`` is a ``postgresql://`` URL (through the
``postgres_scanner`` extension). Its Parquet data (and the uploaded files, so
a worker on another host can read them) live in a local folder by default, or
in object storage when ``BULKIMPORT_LAKE_DATA`` is an ``s3://bucket/prefix``
URL (through ``httpfs`` and a DuckDB S3 secret).
"""

from __future__ import annotations

import glob
import logging
import random
import re
import shutil
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import duckdb

from bulkimport.config import is_postgres, is_s3, settings
from bulkimport.errors import BulkImportError, LakeBusy
from bulkimport.sql import ident

if TYPE_CHECKING:
    from bulkimport.settings_model import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

EXTENSIONS = ("sqlite_scanner", "ducklake")
# Messages of errors that mean "another writer got there first: try again". With a PostgreSQL
# catalog a concurrent commit shows up as a serialization failure, a deadlock or a duplicate
# snapshot id (two writers raced for the next one).
_RETRYABLE = (
    "database is locked",
    "conflict",
    "could not set lock",
    "busy",
    "could not serialize",
    "serialization failure",
    "deadlock detected",
    "duplicate key value",
)


def extension_path(name: str) -> str:
    """Path of the .duckdb_extension shipped by the ``duckdb-extension-<name>`` package."""
    pattern = f"duckdb_extension_{name}/extensions/v{duckdb.__version__}/{name}.duckdb_extension"
    for root in sys.path:
        hits = glob.glob(str(Path(root) / pattern))
        if hits:
            return hits[0]
    raise BulkImportError(
        f"DuckDB extension {name!r} for DuckDB {duckdb.__version__} is not installed; "
        f"run: pip install duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}"
    )


def load_extensions(con: duckdb.DuckDBPyConnection, names=EXTENSIONS) -> None:
    con.execute("SET autoinstall_known_extensions = false")
    for name in names:
        con.execute(f"LOAD '{extension_path(name)}'")


_WAL_DONE: set[str] = set()
_WAL_LOCK = threading.Lock()


def _use_wal(catalog: Path) -> None:
    """Put the SQLite catalog in WAL mode (persistent in the file), once per process.

    In SQLite's default rollback mode an open reader (a notebook holding a
    result) blocks every writer's commit with `database is locked`; in WAL
    mode readers and the one writer at a time do not block each other.

    Only once, and before this process's DuckDB opens the file: SQLite's POSIX
    locks belong to the process, so a second SQLite library (Python's) closing
    its handle on a file DuckDB's SQLite has open drops DuckDB's locks too,
    and concurrent catalog writes then corrupt it ('database disk image is malformed').
    """
    key = str(catalog)
    with _WAL_LOCK:
        if key in _WAL_DONE:
            return
        con = sqlite3.connect(catalog, timeout=30)
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()
        _WAL_DONE.add(key)


def libpq_conninfo(url: str) -> str:
    """A ``postgresql://`` URL as libpq's ``key=value`` connection string."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    return make_conninfo("", **conninfo_to_dict(url))


def _catalog(location) -> tuple[str, tuple[str, ...]]:
    """The DuckLake ATTACH string for the catalog and the extensions it needs."""
    if is_postgres(location):
        return f"ducklake:postgres:{libpq_conninfo(location)}", ("postgres_scanner", "ducklake")
    catalog = Path(location)
    catalog.parent.mkdir(parents=True, exist_ok=True)
    _use_wal(catalog)
    return f"ducklake:sqlite:{catalog}", EXTENSIONS


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake attached as ``lake`` (and in use).

    Cheap enough to open per task; close it when done (or use :func:`session`).
    """
    s = settings()
    attach, extensions = _catalog(s.lake_catalog)
    if not is_s3(s.lake_data):
        Path(s.lake_data).mkdir(parents=True, exist_ok=True)
    # A modest memory limit makes big sorts and windows spill to disk instead of
    # growing with the file; spill files go under BULKIMPORT_HOME.
    spill = s.home / "tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 2, "memory_limit": s.duckdb_memory, "temp_directory": str(spill)})
    load_extensions(con, extensions)
    _object_storage(con, s)
    catalog = attach.replace("'", "''")
    data = str(s.lake_data).replace("'", "''").rstrip("/") + "/"
    _retry(lambda: con.execute(f"ATTACH '{catalog}' AS lake (DATA_PATH '{data}')"))
    con.execute("USE lake")
    return con


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _object_storage(con: duckdb.DuckDBPyConnection, s: Settings) -> None:
    """Let ``con`` read and write the lake's S3 storage (httpfs and a secret); nothing for a local folder.

    Keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); an
    endpoint (BULKIMPORT_S3_ENDPOINT, for MinIO and friends) means path-style URLs, and
    plain HTTP when it starts with ``http://``.
    """
    if not is_s3(s.lake_data):
        return
    load_extensions(con, ("httpfs",))
    options = {"REGION": _sql_text(s.s3_region)}
    for option, secret in (
        ("KEY_ID", s.aws_access_key_id),
        ("SECRET", s.aws_secret_access_key),
        ("SESSION_TOKEN", s.aws_session_token),
    ):
        if secret:
            options[option] = _sql_text(secret.get_secret_value())
    if s.s3_endpoint:
        options["ENDPOINT"] = _sql_text(re.sub(r"^https?://", "", s.s3_endpoint).rstrip("/"))
        options["URL_STYLE"] = "'path'"
        options["USE_SSL"] = "false" if s.s3_endpoint.startswith("http://") else "true"
    con.execute(
        "CREATE OR REPLACE SECRET bulkimport_s3 (TYPE S3, " + ", ".join(f"{k} {v}" for k, v in options.items()) + ")"
    )


def _storage_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"threads": 2})
    con.execute("SET autoinstall_known_extensions = false")
    _object_storage(con, settings())
    return con


def keep_upload(local: Path, job_id: str) -> str:
    """Where workers will read an upload: its local path, or (lake data in S3) a copy next to the lake's data.

    The copy is ``<BULKIMPORT_LAKE_DATA>/uploads/<job id>/<file name>``, so a worker on
    another host can read it; the local file is removed once it is there.
    """
    s = settings()
    if not is_s3(s.lake_data):
        return str(local)
    url = f"{str(s.lake_data).rstrip('/')}/uploads/{job_id}/{local.name}"
    con = _storage_connection()
    try:
        # FORMAT blob writes the bytes as they are (the whole file passes through memory once).
        con.execute(f"COPY (SELECT content FROM read_blob({_sql_text(str(local))})) TO {_sql_text(url)} (FORMAT blob)")
    finally:
        con.close()
    shutil.rmtree(local.parent, ignore_errors=True)
    return url


@contextmanager
def local_copy(location: str) -> Iterator[Path]:
    """A local path to read an upload from: the path itself, or a temporary download of an ``s3://`` URL."""
    if not is_s3(location):
        yield Path(location)
        return
    folder = settings().home / "tmp" / "downloads" / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (location.rstrip("/").rsplit("/", 1)[-1] or "upload.csv")
    try:
        con = _storage_connection()
        try:
            con.execute(
                f"COPY (SELECT content FROM read_blob({_sql_text(location)})) TO {_sql_text(str(target))} (FORMAT blob)"
            )
        finally:
            con.close()
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def session() -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect()
    try:
        yield con
    finally:
        con.close()


_warm = threading.local()
_shared: dict[tuple[str, str], duckdb.DuckDBPyConnection] = {}
_shared_lock = threading.Lock()


@contextmanager
def warm_session() -> Iterator[duckdb.DuckDBPyConnection]:
    """This thread's lake connection, kept open between jobs (a worker thread's).

    Extensions are loaded and the lake attached once per process, on one shared DuckDB
    database; each thread works on its own cursor of it. A job that fails drops the
    thread's cursor; the next job opens a new one.
    """
    where = (str(settings().lake_catalog), str(settings().lake_data))
    con = getattr(_warm, "con", None)
    if con is None or _warm.where != where:
        with _shared_lock:
            if where not in _shared:
                _shared[where] = connect()
            con = _shared[where].cursor()
        con.execute("USE lake")
        _warm.con, _warm.where = con, where
    try:
        yield con
    except BaseException:
        _warm.con = None
        try:
            con.close()
        except duckdb.Error:
            pass
        raise


def is_retryable(exc: BaseException) -> bool:
    text = str(exc).lower()
    # Two processes attaching a new PostgreSQL catalog at once: one creates DuckLake's tables, the
    # other's CREATE TABLE fails; attaching again finds them.
    first_attach_race = "failed to initialize ducklake" in text and "already exists" in text
    return isinstance(exc, duckdb.Error) and (first_attach_race or any(marker in text for marker in _RETRYABLE))


def _retry(fn: Callable[[], T], seconds: float | None = None, base_delay: float = 0.05) -> T:
    """Run ``fn`` until it gets past lock conflicts, for at most ``seconds`` (BULKIMPORT_LAKE_BUSY_SECONDS).

    Bounded by time, not by a count: with many writers on a SQLite catalog a burst of
    conflicts can outlast ten quick retries, and a job's error should not show a lock
    the next attempt would have got past.
    """
    budget = settings().lake_busy_s if seconds is None else seconds
    deadline = time.monotonic() + budget
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except duckdb.Error as exc:
            if not is_retryable(exc):
                raise
            delay = min(2.0, base_delay * 2 ** min(attempt, 10)) * (0.5 + random.random())
            if time.monotonic() + delay > deadline:
                raise LakeBusy(f"the lake stayed busy for {budget:g} s ({attempt} attempts): {exc}") from exc
            log.info("lake busy (%s); retry %d in %.2fs", exc, attempt, delay)
            time.sleep(delay)


def write(con: duckdb.DuckDBPyConnection, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run ``fn(con)`` in one lake transaction, retrying it whole on lock conflicts.

    ``fn`` must be safe to re-run from the start (it is, when it only issues SQL
    inside this transaction: a failed attempt is rolled back).
    """

    def attempt() -> T:
        con.execute("BEGIN TRANSACTION")
        try:
            result = fn(con)
            con.execute("COMMIT")
            return result
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise

    return _retry(attempt)


def ensure_tables(con: duckdb.DuckDBPyConnection, dataset, evolve: bool = True) -> None:
    """Create the dataset's staging and production tables and the shared ones.

    With ``evolve``, first bring existing tables in step with the dataset
    (its additive changes; see bulkimport.schema_evolution).
    """
    if evolve:
        from bulkimport import schema_evolution  # it builds on this module

        schema_evolution.keep_current(dataset)
    cols = ", ".join(f"{ident(c)} {t}" for c, t in dataset.sql_types.items())

    def create(c):
        c.execute("CREATE SCHEMA IF NOT EXISTS staging")
        c.execute("CREATE SCHEMA IF NOT EXISTS production")
        c.execute("CREATE SCHEMA IF NOT EXISTS audit")
        c.execute(
            f"CREATE TABLE IF NOT EXISTS staging.{ident(dataset.name)} "
            f"(job_id VARCHAR, line BIGINT, brand VARCHAR, {cols})"
        )
        c.execute(
            f"CREATE TABLE IF NOT EXISTS production.{ident(dataset.name)} (brand VARCHAR, {cols}, job_id VARCHAR)"
        )
        c.execute(
            "CREATE TABLE IF NOT EXISTS staging.rejected_rows (job_id VARCHAR, line BIGINT, "
            '"column" VARCHAR, reason VARCHAR, "check" VARCHAR, value VARCHAR, detail VARCHAR, raw VARCHAR)'
        )
        c.execute(
            "CREATE TABLE IF NOT EXISTS audit.ledger (job_id VARCHAR, dataset VARCHAR, brand VARCHAR, "
            "approved_by VARCHAR, committed_at TIMESTAMP, rows_inserted BIGINT, rows_updated BIGINT, "
            "rows_unchanged BIGINT, snapshot_id BIGINT, rows_deleted BIGINT, mode VARCHAR)"
        )
        # Ledgers from before write modes lack the last two columns.
        present = {
            r[0]
            for r in c.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake' "
                "AND schema_name = 'audit' AND table_name = 'ledger'"
            ).fetchall()
        }
        for column, sql_type in (("rows_deleted", "BIGINT"), ("mode", "VARCHAR")):
            if column not in present:
                c.execute(f"ALTER TABLE audit.ledger ADD COLUMN {column} {sql_type}")
        c.execute(
            "CREATE TABLE IF NOT EXISTS audit.reverts (job_id VARCHAR, dataset VARCHAR, brand VARCHAR, "
            "reverted_by VARCHAR, reverted_at TIMESTAMP, rows_deleted BIGINT, rows_restored BIGINT, "
            "snapshot_id BIGINT)"
        )

    # CREATE ... IF NOT EXISTS from two processes at once can still conflict.
    write(con, create)
