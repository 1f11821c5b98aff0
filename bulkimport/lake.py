"""The lake: DuckLake over DuckDB, shared safely by many processes.

Extensions come from their PyPI packages (no download at run time) and are
loaded by path, so DuckDB still checks their signatures. Every write goes
through :func:`write`, which retries the catalog's lock conflicts.

The catalog is a SQLite file (WAL mode) by default, or PostgreSQL when
``BULKIMPORT_LAKE_CATALOG`` is a ``postgresql://`` URL (through the
``postgres_scanner`` extension).
"""

from __future__ import annotations

import glob
import logging
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from bulkimport.config import is_postgres, settings
from bulkimport.errors import BulkImportError, LakeBusy

log = logging.getLogger(__name__)
T = TypeVar("T")

EXTENSIONS = ("sqlite_scanner", "ducklake")
# Messages of errors that mean "another writer got there first: try again". With a PostgreSQL
# catalog a concurrent commit shows up as a serialization failure, a deadlock or a duplicate
# snapshot id (two writers raced for the next one).
_RETRYABLE = ("database is locked", "conflict", "could not set lock", "busy", "could not serialize",
              "serialization failure", "deadlock detected", "duplicate key value")


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


def _use_wal(catalog: Path) -> None:
    """Put the SQLite catalog in WAL mode (persistent, set once per file).

    In SQLite's default rollback mode an open reader (a notebook holding a
    result) blocks every writer's commit with `database is locked`; in WAL
    mode readers and the one writer at a time do not block each other.
    """
    with sqlite3.connect(catalog, timeout=30) as con:
        if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            con.execute("PRAGMA journal_mode=WAL")


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
    Path(s.lake_data).mkdir(parents=True, exist_ok=True)
    # A modest memory limit makes big sorts and windows spill to disk instead of
    # growing with the file; spill files go under BULKIMPORT_HOME.
    spill = s.home / "tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 2, "memory_limit": s.duckdb_memory, "temp_directory": str(spill)})
    load_extensions(con, extensions)
    catalog = attach.replace("'", "''")
    data = str(s.lake_data).replace("'", "''").rstrip("/") + "/"
    _retry(lambda: con.execute(f"ATTACH '{catalog}' AS lake (DATA_PATH '{data}')"))
    con.execute("USE lake")
    return con


@contextmanager
def session() -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect()
    try:
        yield con
    finally:
        con.close()


def is_retryable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and any(marker in text for marker in _RETRYABLE)


def _retry(fn: Callable[[], T], attempts: int = 10, base_delay: float = 0.05) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except duckdb.Error as exc:
            if not is_retryable(exc) or attempt == attempts:
                if is_retryable(exc):
                    raise LakeBusy(f"the lake stayed busy after {attempts} attempts: {exc}") from exc
                raise
            delay = min(2.0, base_delay * 2**attempt) * (0.5 + random.random())
            log.info("lake busy (%s); retry %d/%d in %.2fs", exc, attempt, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def write(con: duckdb.DuckDBPyConnection, fn: Callable[[duckdb.DuckDBPyConnection], T], attempts: int = 10) -> T:
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

    return _retry(attempt, attempts=attempts)


def ensure_tables(con: duckdb.DuckDBPyConnection, dataset) -> None:
    """Create the dataset's staging and production tables and the shared ones."""
    cols = ", ".join(f'"{c}" {t}' for c, t in dataset.sql_types.items())

    def create(c):
        c.execute("CREATE SCHEMA IF NOT EXISTS staging")
        c.execute("CREATE SCHEMA IF NOT EXISTS production")
        c.execute("CREATE SCHEMA IF NOT EXISTS audit")
        c.execute(
            f'CREATE TABLE IF NOT EXISTS staging."{dataset.name}" '
            f"(job_id VARCHAR, line BIGINT, brand VARCHAR, {cols})"
        )
        c.execute(f'CREATE TABLE IF NOT EXISTS production."{dataset.name}" (brand VARCHAR, {cols}, job_id VARCHAR)')
        c.execute(
            "CREATE TABLE IF NOT EXISTS staging.rejected_rows (job_id VARCHAR, line BIGINT, "
            '"column" VARCHAR, reason VARCHAR, "check" VARCHAR, value VARCHAR, detail VARCHAR, raw VARCHAR)'
        )
        c.execute(
            "CREATE TABLE IF NOT EXISTS audit.ledger (job_id VARCHAR, dataset VARCHAR, brand VARCHAR, "
            "approved_by VARCHAR, committed_at TIMESTAMP, rows_inserted BIGINT, rows_updated BIGINT, "
            "rows_unchanged BIGINT, snapshot_id BIGINT)"
        )
        c.execute(
            "CREATE TABLE IF NOT EXISTS audit.reverts (job_id VARCHAR, dataset VARCHAR, brand VARCHAR, "
            "reverted_by VARCHAR, reverted_at TIMESTAMP, rows_deleted BIGINT, rows_restored BIGINT, "
            "snapshot_id BIGINT)"
        )

    # CREATE ... IF NOT EXISTS from two processes at once can still conflict.
    write(con, create)
