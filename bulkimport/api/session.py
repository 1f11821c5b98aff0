"""Who the API acts as, and the process's one lake connection (per lake location)."""

from __future__ import annotations

import warnings

import duckdb

from bulkimport import auth, lake, private, schema_evolution, users
from bulkimport.config import settings
from bulkimport.datasets import Dataset, all_datasets
from bulkimport.errors import BulkImportError, NotLoggedIn

# One connection per lake location, so a changed BULKIMPORT_HOME is honoured.
_connections: dict[tuple[str, str], duckdb.DuckDBPyConnection] = {}
# (lake location, dataset, version) whose tables are known to exist and follow that version.
_ready_tables: set[tuple[tuple[str, str], str, str]] = set()
# (lake location, audit table, job id) -> the snapshot in which the job's entry appeared.
_snapshot_cache: dict[tuple[tuple[str, str], str, str], int] = {}
# The token given to bi.login(); None: BULKIMPORT_TOKEN or the token `bulkimport login` saved.
_login: dict[str, str | None] = {"token": None}

# DuckDB's .df() on a TIMESTAMPTZ column trips a pandas deprecation warning that tells a user nothing.
warnings.filterwarnings("ignore", message="The inplace keyword in DataFrame.drop is deprecated")


def _where() -> tuple[str, str]:
    s = settings()
    return str(s.lake_catalog), str(s.lake_data)


# ---------------------------------------------------------------- who acts


def login(token: str | None = None) -> users.User:
    """Act as the person whose personal token this is, for every call that follows in this process.

    Without ``token``: ``BULKIMPORT_TOKEN``, else the token saved by ``bulkimport login``, else
    asks for one (an admin creates tokens with ``bulkimport users token NAME``). Call it again
    with another token to act as someone else (an approver, say).

    >>> bi.login()
    User(name='ana', role='analyst', brands=('acme',))
    """
    if token is None:
        token = auth.found_token() or auth.ask_token()
    user = auth.user_of_token(token)
    _login["token"] = token
    private.secure_process()
    return user


def logout() -> None:
    """Forget the token given to ``bi.login`` (``BULKIMPORT_TOKEN`` and a saved token still count)."""
    _login["token"] = None


def whoami() -> users.User:
    """The person calls act as now; NotLoggedIn says how to log in if nobody.

    >>> bi.whoami().brands
    ('acme', 'globex')
    """
    return _who()


def _who() -> users.User:
    token = _login["token"] or auth.found_token()
    if token is None:
        raise NotLoggedIn(auth.how_to_log_in(api=True))
    user = auth.user_of_token(token)
    private.secure_process()
    return user


def connect() -> duckdb.DuckDBPyConnection:
    """The shared lake connection for raw SQL over every brand: for admins only.

    The lake is attached as ``lake`` and in use.

    Schemas: ``staging`` (valid rows per job, ``rejected_rows``), ``production`` (one
    table per dataset) and ``audit`` (``ledger``: one row per committed import).
    DuckLake's time travel works in raw SQL too (``bi.snapshot`` finds the number)::

        con = bi.connect()
        con.sql("SELECT count(*) FROM production.products").fetchone()
        con.sql("SELECT * FROM production.products AT (VERSION => 3)").df()
        con.sql("SELECT * FROM ducklake_snapshots('lake')").df()
    """
    users.require_admin(_who(), "raw SQL over the lake (every brand's rows)")
    return _lake()


def _lake() -> duckdb.DuckDBPyConnection:
    where = _where()
    if where not in _connections:
        _connections[where] = lake.connect()
    return _connections[where]


def close() -> None:
    """Close the lake connections this process opened (the next call opens a new one).

    >>> bi.close()
    """
    while _connections:
        _, con = _connections.popitem()
        try:
            con.close()
        except duckdb.Error:
            pass
    _ready_tables.clear()
    _snapshot_cache.clear()


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = 'lake'"
        ).fetchall()
    }


def _ensure(dataset: Dataset) -> None:
    """Create the dataset's tables on a new lake, or bring them in step with its definition (its own session)."""
    marker = (_where(), dataset.name, dataset.version)
    if marker not in _ready_tables:
        schema_evolution.keep_current(dataset)
        _ready_tables.add(marker)


def _any_dataset() -> Dataset:
    datasets = all_datasets()
    if not datasets:
        raise BulkImportError("no datasets are defined")
    return next(iter(datasets.values()))
