"""The Python API for notebooks and scripts: read jobs and lake data, submit and approve.

    import bulkimport as bi
    bi.login()                                        # BULKIMPORT_TOKEN, the token `bulkimport login` saved, or asks
    bi.jobs(status="staged")                          # a DataFrame of jobs, newest first
    bi.rejected(job_id).df()                          # DuckDB relations: .df(), .pl(), .arrow()
    bi.production("products", brand="acme", as_of=job_id).df()
    bi.history("products", "ACME-1001", brand="acme").df()

Reading goes through one lazily opened lake connection per process (per lake
location). Reads never wait for a worker and a worker never waits for them:
DuckLake keeps every commit as a snapshot, so a reader sees the last committed
state while a worker writes the next one. Results are lazy DuckDB relations:
nothing is read until ``.df()``, ``.pl()``, ``.arrow()``, ``.fetchall()`` ...

Time travel uses those snapshots. An import's commit (its MERGE and its ledger
entry, in one transaction) is one snapshot: "as of a job" is the state right
after that snapshot, "before a job" the state just before it.

Every call acts as the person whose personal token proves it (``bi.login``, or the
``BULKIMPORT_TOKEN`` variable): reads see only that person's brands ("not found or
not yours" otherwise, as in the dashboard), and submitting and approving follow
their role. ``bi.connect()`` (raw SQL over every brand) is for admins.

Nothing here imports actor code: ``submit`` and ``approve`` (in
``bulkimport.workflow``) send work to a worker by actor name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import numbers
import warnings
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from bulkimport import auth, exports, fixing, lake, private, registry, schema_evolution, users, workflow
from bulkimport.config import settings
from bulkimport.datasets import Dataset, all_datasets, get_dataset
from bulkimport.errors import BulkImportError, JobNotFound, NotLoggedIn
from bulkimport.registry import FINAL, STAGED
from bulkimport.sql import current_snapshot, ident, idents, literal
from bulkimport.stages import review

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

AsOf = int | str | dt.datetime | dt.date | pd.Timestamp


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


# ---------------------------------------------------------------- jobs


def jobs(status: str | None = None, dataset: str | None = None, brand: str | None = None) -> pd.DataFrame:
    """Jobs, newest first, as a pandas DataFrame (one row per job, the fields of ``bi.job``).

    ``created_at`` and ``updated_at`` are timezone-aware timestamps (UTC).

    >>> bi.jobs(status="staged", dataset="products", brand="acme")[["id", "file_name", "rows_rejected"]]
    """
    rows = [j.to_dict() for j in workflow.visible_jobs(_who(), status=status, dataset=dataset, brand=brand)]
    frame = pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(registry.Job)])
    for column in ("created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def job(job_id: str) -> registry.Job:
    """One job: status, counts, who submitted and approved it, the error if it failed.

    >>> j = bi.job("3f2a9c1b7d4e")
    >>> j.status, j.rows_valid, j.rows_rejected
    ('staged', 7, 9)
    """
    return workflow.visible_job(job_id, _who())


def events(job_id: str) -> pd.DataFrame:
    """The job's timeline: every status change with who made it, when, and a note.

    >>> bi.events("3f2a9c1b7d4e")[["at", "actor", "from_status", "to_status", "note"]]
    """
    rows = [dataclasses.asdict(e) for e in workflow.visible_events(job_id, _who())]
    frame = pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(registry.Event)])
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame


def _ready(job_id: str) -> tuple[duckdb.DuckDBPyConnection, registry.Job, Dataset]:
    job_ = workflow.visible_job(job_id, _who())
    dataset = get_dataset(job_.dataset)
    _ensure(dataset)
    con = _lake()
    return con, job_, dataset


# ---------------------------------------------------------------- one job's rows


def staged(job_id: str) -> duckdb.DuckDBPyRelation:
    """The job's valid rows as staged, with their line in the file, ordered by line.

    Columns: ``line``, ``brand`` and the dataset's columns.

    >>> bi.staged("3f2a9c1b7d4e").df()
    >>> bi.staged("3f2a9c1b7d4e").filter("price > 10").pl()
    """
    con, job_, dataset = _ready(job_id)
    return con.sql(
        f"SELECT line, brand, {idents(dataset.columns)} FROM staging.{ident(dataset.name)} "
        f"WHERE job_id = {literal(job_.id)} ORDER BY line"
    )


def rejected(job_id: str) -> duckdb.DuckDBPyRelation:
    """The job's rejected rows: ``line, column, reason, value, detail, check, raw``, by line.

    A row rejected for several reasons has one entry per reason.

    >>> r = bi.rejected("3f2a9c1b7d4e")
    >>> r.aggregate("reason, count(*) AS n", "reason").order("n DESC").df()
    """
    con, job_, _ = _ready(job_id)
    return con.sql(
        'SELECT line, "column", reason, value, detail, "check", raw FROM staging.rejected_rows'
        f' WHERE job_id = {literal(job_.id)} ORDER BY line, "column"'
    )


def diff(job_id: str) -> review.Diff:
    """Counts of rows approving the job would insert, update and leave unchanged.

    For a job already committed: what its commit did (compared with production
    just before it). ``bi.changes(id)`` has the rows behind the counts.

    >>> bi.diff("3f2a9c1b7d4e").to_dict()
    {'rows_to_insert': 7, 'rows_to_update': 0, 'rows_unchanged': 0, ...}
    """
    con, job_, dataset = _ready(job_id)
    if _entry_snapshot(con, "ledger", job_.id) is None:
        return review.diff(con, job_, dataset)
    rows = changes(job_id)
    counts = dict(rows.aggregate("change, count(*)", "change").fetchall())
    per_column = dict(rows.select("unnest(changed_columns) AS c").aggregate("c, count(*)", "c").fetchall())
    values = {
        "rows_to_insert": counts.get("insert", 0),
        "rows_to_update": counts.get("update", 0),
        "rows_unchanged": counts.get("unchanged", 0),
        "changed_columns": {c: per_column[c] for c in dataset.columns if c in per_column},
    }
    known = {f.name for f in dataclasses.fields(review.Diff)}
    return review.Diff(**{k: v for k, v in values.items() if k in known})


def changes(job_id: str) -> duckdb.DuckDBPyRelation:
    """Row by row, what approving the job would do to production (or, once committed, what it did).

    One row per staged row, by line: ``change`` (``insert``, ``update`` or ``unchanged``),
    ``changed_columns`` (the columns whose value differs; NULL for an insert),
    ``line``, ``brand``, the dataset's columns as staged, then ``<column>_before``
    for each non-key column: the production value before (NULL for an insert).
    A committed job is compared with production as it was just before its commit.

    >>> c = bi.changes("3f2a9c1b7d4e")
    >>> c.filter("change = 'update'").select("sku, price_before, price, changed_columns").df()
    """
    con, job_, dataset = _ready(job_id)
    committed_in = _entry_snapshot(con, "ledger", job_.id)
    production_at = f"production.{ident(dataset.name)} p"
    if committed_in is not None:  # in today's columns: a migration may have changed them since
        production_at = schema_evolution.as_of(con, dataset, "production", _previous_snapshot(con, committed_in)) + " p"
    others = [c for c in dataset.columns if c not in dataset.key]
    differs = ", ".join(f"""CASE WHEN p."{c}" IS DISTINCT FROM s."{c}" THEN '{c}' END""" for c in others)
    changed_list = f"list_filter([{differs}], x -> x IS NOT NULL)" if others else "[]::VARCHAR[]"
    staged_columns = ", ".join(f"s.{ident(c)}" for c in dataset.columns)
    before_columns = "".join(f", p.{ident(c)} AS {ident(c + '_before')}" for c in others)
    return con.sql(
        "SELECT CASE WHEN p.brand IS NULL THEN 'insert'"
        f" WHEN ({review.changed_condition(dataset)}) THEN 'update' ELSE 'unchanged' END AS change,"
        f" CASE WHEN p.brand IS NOT NULL THEN {changed_list} END AS changed_columns,"
        f" s.line, s.brand, {staged_columns}{before_columns}"
        f" FROM staging.{ident(dataset.name)} s LEFT JOIN {production_at} ON {review._key_join(dataset)}"
        f" WHERE s.job_id = {literal(job_.id)} ORDER BY s.line"
    )


# ---------------------------------------------------------------- snapshots


def _previous_snapshot(con: duckdb.DuckDBPyConnection, snapshot_id: int) -> int:
    row = con.execute(
        "SELECT max(snapshot_id) FROM ducklake_snapshots('lake') WHERE snapshot_id < ?", [snapshot_id]
    ).fetchone()
    return int(row[0]) if row[0] is not None else -1


def _entry_snapshots(con: duckdb.DuckDBPyConnection, table: str, job_id: str | None = None) -> dict[str, int]:
    """job id -> the snapshot in which its entry in ``audit.<table>`` (ledger, reverts) appeared.

    Commit and revert each write their lake changes and that entry in one
    transaction, so this is the snapshot the commit (or revert) made. The entry's
    ``snapshot_id`` is the newest snapshot when the transaction began, so the
    search starts just after it and nearly always ends there. (DuckLake's
    ``ducklake_table_changes`` cannot answer this: the tables' own ``snapshot_id``
    column shadows the change feed's for inlined rows.) Answers never change,
    so they are cached.
    """
    if f"audit.{table}" not in _tables(con):
        return {}
    where, found, current = _where(), {}, None
    sql = f"SELECT job_id, snapshot_id FROM audit.{table}"
    if job_id is not None:
        sql += f" WHERE job_id = {literal(job_id)}"
    for job_, started in con.execute(sql).fetchall():
        key = (where, table, job_)
        if key not in _snapshot_cache:
            current = current if current is not None else current_snapshot(con)
            _snapshot_cache[key] = _first_snapshot_with(con, table, job_, int(started or 0) + 1, current)
        found[job_] = _snapshot_cache[key]
    return found


def _first_snapshot_with(con: duckdb.DuckDBPyConnection, table: str, job_id: str, start: int, current: int) -> int:
    for version in range(start, current + 1):
        try:
            present = con.execute(
                f"SELECT count(*) FROM audit.{table} AT (VERSION => {version}) WHERE job_id = ?", [job_id]
            ).fetchone()[0]
        except duckdb.InvalidInputException:  # that snapshot was expired
            continue
        if present:
            return version
    raise BulkImportError(f"job {job_id} is in audit.{table} but no snapshot from {start} to {current} holds it")


def _entry_snapshot(con: duckdb.DuckDBPyConnection, table: str, job_id: str) -> int | None:
    return _entry_snapshots(con, table, job_id).get(job_id)


def _job_snapshot(con: duckdb.DuckDBPyConnection, job_id: str) -> int:
    status = workflow.visible_job(job_id, _who()).status  # "not found or not yours" for another brand's job
    snapshot_id = _entry_snapshot(con, "ledger", job_id)
    if snapshot_id is not None:
        return snapshot_id
    raise BulkImportError(
        f"job {job_id} is {status}, not committed: production never held its rows. "
        f"Its rows are in bi.staged({job_id!r}); approve it to commit them."
    )


def _timestamp_snapshot(con: duckdb.DuckDBPyConnection, when: dt.datetime) -> int:
    row = con.execute(
        "SELECT max(snapshot_id) FROM ducklake_snapshots('lake') WHERE snapshot_time <= ?::TIMESTAMPTZ", [when]
    ).fetchone()
    return int(row[0]) if row[0] is not None else -1


def snapshot(as_of: AsOf | None = None, *, before_job: str | None = None) -> int:
    """The lake snapshot id that ``as_of`` (or ``before_job``) means; the newest one if neither is given.

    ``as_of`` is a job id (the state right after that job's commit), a snapshot id
    (``int``) or a time (``datetime``, ``pandas.Timestamp``, an ISO string, or a
    ``date`` meaning its midnight; a time without a zone is in the connection's
    zone, see ``SELECT current_setting('TimeZone')``). ``before_job`` is the state
    just before that job's commit. Returns -1 for a time before the lake's first
    snapshot. For raw SQL time travel::

        n = bi.snapshot(before_job="3f2a9c1b7d4e")
        bi.connect().sql(f"SELECT count(*) FROM production.products AT (VERSION => {n})").fetchone()
    """
    if as_of is not None and before_job is not None:
        raise ValueError("give as_of or before_job, not both")
    _ensure(_any_dataset())
    con = _lake()
    if before_job is not None:
        return _previous_snapshot(con, _job_snapshot(con, before_job))
    if as_of is None:
        return current_snapshot(con)
    if isinstance(as_of, bool):
        raise TypeError("as_of must be a job id, a snapshot id or a time, not a bool")
    if isinstance(as_of, numbers.Integral):
        current = current_snapshot(con)
        if not 0 <= int(as_of) <= current:
            raise BulkImportError(f"there is no lake snapshot {as_of}; snapshots run from 0 to {current}")
        return int(as_of)
    if isinstance(as_of, str):
        try:
            workflow.visible_job(as_of, _who())
        except JobNotFound:
            pass
        else:
            return _job_snapshot(con, as_of)
        try:
            as_of = pd.Timestamp(as_of)
        except ValueError:
            raise BulkImportError(f"as_of={as_of!r} is neither a job id nor a time") from None
    if isinstance(as_of, dt.date) and not isinstance(as_of, dt.datetime):
        as_of = dt.datetime.combine(as_of, dt.time())
    try:
        when = pd.Timestamp(as_of).to_pydatetime()
    except (TypeError, ValueError):
        raise TypeError(f"as_of must be a job id, a snapshot id or a time, not {type(as_of).__name__}") from None
    return _timestamp_snapshot(con, when)


# ---------------------------------------------------------------- production and history


def production(
    dataset: str, brand: str | None = None, as_of: AsOf | None = None, *, before_job: str | None = None
) -> duckdb.DuckDBPyRelation:
    """Production rows of a dataset (optionally one brand), now or at another point in time.

    Each row carries ``brand``, the dataset's columns and ``job_id`` (the import that
    last wrote it); ordered by brand and key. Time travel uses the lake's snapshots:

    - ``as_of=job_id``: production right after that job's commit;
    - ``before_job=job_id``: production just before that job's commit;
    - ``as_of=<int>``: at that DuckLake snapshot (``bi.imports()`` lists each commit's);
    - ``as_of=<time>``: as it was then (``"2026-03-01 09:00"``, a ``datetime`` or
      ``pandas.Timestamp``; a ``date`` means its midnight).

    A time before the table existed gives no rows.

    >>> bi.production("products", brand="acme").df()
    >>> bi.production("products", as_of="3f2a9c1b7d4e").count("*").fetchone()
    >>> bi.production("products", before_job="3f2a9c1b7d4e").df()
    >>> bi.production("products", as_of="2026-03-01 09:00").pl()
    """
    ds = get_dataset(dataset)
    _ensure(ds)
    con = _lake()
    table = f"production.{ident(ds.name)}"
    where = " WHERE " + _brands_sql(brand, "brand")
    order = " ORDER BY " + ", ".join(["brand", *(ident(c) for c in ds.key)])
    if as_of is None and before_job is None:
        return con.sql(f"SELECT * FROM {table}{where}{order}")
    at = snapshot(as_of, before_job=before_job)
    if at >= 0:
        try:
            return con.sql(f"SELECT * FROM {table} AT (VERSION => {at}){where}{order}")
        except duckdb.CatalogException:
            pass  # the table did not exist yet at that snapshot
    return con.sql(f"SELECT * FROM {table} WHERE false")


def _brands_sql(brand: str | None, column: str) -> str:
    """A SQL condition keeping the rows of ``brand`` (or of every brand the user sees, when None)."""
    user = _who()
    if brand is not None:
        users.require_view(user, brand)
        return f"{column} = {literal(brand)}"
    allowed = users.brand_filter(user)
    if allowed is None:
        return "true"
    return f"{column} IN ({', '.join(literal(b) for b in allowed)})" if allowed else "false"


def _who_when(con: duckdb.DuckDBPyConnection) -> str:
    """SQL for (snapshot_id, job_id, action, actor): the snapshots commits, reverts and migrations made.

    A migration that changed a column's type rewrote every row (bulkimport.schema_evolution): its
    snapshot is labelled ``migrate`` with the admin who ran it.
    """
    rows = []
    for table, action, actor in (("ledger", "commit", "approved_by"), ("reverts", "revert", "reverted_by")):
        snapshots = _entry_snapshots(con, table)
        if snapshots:
            actors = dict(con.execute(f"SELECT job_id, {actor} FROM audit.{table}").fetchall())
            rows += [f"({n}, {literal(j)}, '{action}', {literal(actors.get(j))})" for j, n in snapshots.items()]
    migrations = (
        "SELECT snapshot_id, NULL::VARCHAR AS job_id, 'migrate' AS action, author AS actor"
        " FROM ducklake_snapshots('lake') WHERE commit_message LIKE 'migration %'"
    )
    if not rows:
        return migrations
    return f"SELECT * FROM (VALUES {', '.join(rows)}) AS m(snapshot_id, job_id, action, actor) UNION ALL {migrations}"


def imports(dataset: str | None = None, brand: str | None = None) -> duckdb.DuckDBPyRelation:
    """Every committed import, oldest first: the ledger with the snapshot each commit made.

    Columns: ``job_id, dataset, brand, approved_by, committed_at`` (the time of the
    commit's snapshot), ``rows_inserted, rows_updated, rows_unchanged``,
    ``commit_snapshot_id`` (production right after the commit),
    ``before_snapshot_id`` (just before it), and ``reverted_by, reverted_at`` if the
    import was reverted since.

    >>> for imp in bi.imports("products").df().itertuples():
    ...     print(imp.job_id, bi.production("products", as_of=imp.job_id).count("*").fetchone())
    """
    _ensure(get_dataset(dataset) if dataset else _any_dataset())
    con = _lake()
    filters = [_brands_sql(brand, "l.brand")] + ([f"l.dataset = {literal(dataset)}"] if dataset is not None else [])
    where = " WHERE " + " AND ".join(filters)
    return con.sql(
        f"WITH m AS ({_who_when(con)}),"
        " snaps AS (SELECT snapshot_id, snapshot_time,"
        "  lag(snapshot_id) OVER (ORDER BY snapshot_id) AS previous FROM ducklake_snapshots('lake'))"
        " SELECT l.job_id, l.dataset, l.brand, l.approved_by, s.snapshot_time AS committed_at,"
        " l.rows_inserted, l.rows_updated, l.rows_unchanged,"
        " c.snapshot_id AS commit_snapshot_id, s.previous AS before_snapshot_id,"
        " r.actor AS reverted_by, rs.snapshot_time AS reverted_at"
        " FROM audit.ledger l"
        " LEFT JOIN m c ON c.job_id = l.job_id AND c.action = 'commit'"
        " LEFT JOIN snaps s ON s.snapshot_id = c.snapshot_id"
        " LEFT JOIN m r ON r.job_id = l.job_id AND r.action = 'revert'"
        f" LEFT JOIN snaps rs ON rs.snapshot_id = r.snapshot_id{where}"
        " ORDER BY commit_snapshot_id, l.job_id"
    )


def _key_values(ds: Dataset, key: Any) -> dict[str, Any]:
    if isinstance(key, dict):
        if set(key) != set(ds.key):
            raise BulkImportError(f"the key of {ds.name} is ({', '.join(ds.key)}), not ({', '.join(map(str, key))})")
        return {c: key[c] for c in ds.key}
    values = tuple(key) if isinstance(key, (tuple, list)) else (key,)
    if len(values) != len(ds.key):
        raise BulkImportError(f"the key of {ds.name} is ({', '.join(ds.key)}): give {len(ds.key)} value(s)")
    return dict(zip(ds.key, values, strict=True))


def history(dataset: str, key: Any, brand: str | None = None) -> duckdb.DuckDBPyRelation:
    """How one row changed, import by import, from the lake's snapshots (oldest first).

    ``key`` is the row's key value (``"ACME-1001"``), or a tuple or dict for a key of
    several columns; without ``brand``, every brand's row with that key is included.
    One result row per change: ``snapshot_id``, ``changed_at`` (the snapshot's time),
    ``job_id``, ``action`` (``commit`` or ``revert``) and ``actor`` (who approved the
    commit or ran the revert), ``change`` (``insert``, ``update`` or ``delete``),
    ``brand`` and the row's values after the change (for a delete: its last values).
    An import that sent the row with the same values changed nothing and is not
    listed (``bi.imports()`` lists every import).

    >>> bi.history("products", "ACME-1001", brand="acme").select("changed_at, job_id, change, price").df()
    """
    ds = get_dataset(dataset)
    _ensure(ds)
    con = _lake()
    values = _key_values(ds, key)
    filters = [f"{ident(c)} = {literal(v)}" for c, v in values.items()]
    filters.append(_brands_sql(brand, "brand"))
    same_row = " AND ".join(
        ["x.snapshot_id = y.snapshot_id", "x.brand = y.brand", *(f"x.{ident(c)} = y.{ident(c)}" for c in ds.key)]
    )
    columns = ", ".join(f"n.{ident(c)}" for c in ds.columns)
    # Per snapshot and row: what exists after it (insert, update_postimage) wins over what went (delete);
    # a delete and an insert of the same row in one snapshot (a revert restoring it) is an update.
    return con.sql(
        f"WITH ch AS (SELECT * FROM ducklake_table_changes('lake', 'production', {literal(ds.name)},"
        f" 0, {current_snapshot(con)}) WHERE {' AND '.join(filters)}),"
        " after AS (SELECT * FROM ch WHERE change_type IN ('insert', 'update_postimage')),"
        " gone AS (SELECT * FROM ch WHERE change_type = 'delete'),"
        " net AS ("
        "  SELECT x.*, CASE WHEN x.change_type = 'update_postimage'"
        f"   OR EXISTS (SELECT 1 FROM gone y WHERE {same_row}) THEN 'update' ELSE 'insert' END AS change"
        "  FROM after x"
        "  UNION ALL BY NAME"
        f"  SELECT x.*, 'delete' AS change FROM gone x WHERE NOT EXISTS (SELECT 1 FROM after y WHERE {same_row})),"
        f" m AS ({_who_when(con)})"
        " SELECT n.snapshot_id, s.snapshot_time AS changed_at, m.job_id, m.action, m.actor, n.change,"
        f" n.brand, {columns}"
        " FROM net n JOIN ducklake_snapshots('lake') s ON s.snapshot_id = n.snapshot_id"
        " LEFT JOIN m ON m.snapshot_id = n.snapshot_id"
        " ORDER BY n.snapshot_id, n.brand"
    )


# ---------------------------------------------------------------- files


def export(job_id: str, what: str, target: str | Path, fmt: str = "csv") -> None:
    """Write a job's ``staged`` or ``rejected`` rows to a file (``-`` for standard output), as the CLI does.

    Rejected rows come out one per line in the file's own columns, plus line,
    reason, column and detail: ready to fix and upload again. ``fmt`` is ``csv``
    (cells a spreadsheet would run as formulas get a leading ``'``), ``xlsx``
    (every cell text) or ``parquet``.

    >>> bi.export("3f2a9c1b7d4e", "rejected", "fix-me.csv")
    >>> bi.export("3f2a9c1b7d4e", "staged", "rows.xlsx", fmt="xlsx")
    """
    exports.export(job_id, what, target, fmt, user=_who())


# ---------------------------------------------------------------- sending work (to a worker, by actor name)


def submit(
    source,
    *,
    dataset: str,
    brand: str,
    file_name: str | None = None,
    options: dict | None = None,
    mapping: dict[str, str] | None = None,
    mode: str = "upsert",
    allow_duplicate: bool = False,
) -> registry.Job:
    """Store a file and queue its validation, as the person logged in (``bi.login``).

    ``mapping`` (file column -> dataset column) is applied exactly as given; without
    it the worker matches the header by names and aliases. ``mode``: ``upsert``
    (insert and update), ``append`` (insert only; keys already in production are
    rejected as conflicts) or ``replace`` (also delete the brand's rows not in the
    file). The same file already staged, approved or committed for the dataset and
    brand raises DuplicateFile unless ``allow_duplicate``; an empty, binary or
    unreadable file raises FileRefused; in both cases no job is created.

    >>> job = bi.submit("prices.csv", dataset="products", brand="acme")
    >>> job = bi.submit("catalogue.csv", dataset="products", brand="acme", mode="replace")
    """
    return workflow.submit(
        source,
        dataset=dataset,
        brand=brand,
        user=_who(),
        file_name=file_name,
        options=options,
        mapping=mapping,
        mode=mode,
        allow_duplicate=allow_duplicate,
    )


def approve(job_id: str, confirm_deletes: bool = False) -> registry.Job:
    """Approve a staged job (an operator or admin of its brand who neither uploaded it nor fixed its rows)
    and queue its commit. A replace that deletes more than BULKIMPORT_REPLACE_GUARD_PERCENT of the brand's
    rows (or has rejected lines) raises ConfirmationNeeded unless ``confirm_deletes``.

    >>> bi.login(approver_token); bi.approve(job.id)
    """
    return workflow.approve(job_id, user=_who(), confirm_deletes=confirm_deletes)


def reject(job_id: str, reason: str) -> registry.Job:
    """Reject a staged job with a reason: nothing reaches production.

    >>> bi.reject(job.id, "wrong price list")
    """
    return workflow.reject(job_id, user=_who(), reason=reason)


def revert(job_id: str) -> registry.Job:
    """Queue the revert of a committed job: rows it inserted go, rows it updated get their values back."""
    return workflow.revert(job_id, user=_who())


def cancel(job_id: str) -> registry.Job:
    """Cancel a pending or validating job (its uploader, or an operator of its brand)."""
    return workflow.cancel(job_id, user=_who())


def retry(job_id: str) -> registry.Job:
    """Run a failed job again from where it failed: same file, options and mapping."""
    return workflow.retry(job_id, user=_who())


def wait(job_id: str, until=(STAGED, *FINAL), timeout: float = 600, poll: float = 1.0, on_change=None) -> registry.Job:
    """Block until a job you may see reaches one of ``until`` (staged or final by default).

    >>> bi.wait(job.id, until=["committed", "failed"], timeout=300, on_change=lambda j: print(j.status))
    """
    workflow.visible_job(job_id, _who())
    return workflow.wait(job_id, until=until, timeout=timeout, poll=poll, on_change=on_change)


# ---------------------------------------------------------------- fixing rejected rows


def fix(job_id: str, rows=None, *, accept_suggestions: bool | list[int] = False) -> registry.Job:
    """Fix rejected rows of a staged job in place; a worker checks them again with the dataset's schema.

    ``rows`` gives new values by line (``{6: {"price": "3.00"}}``, or records / a DataFrame with a
    ``line`` column); cells not given keep what the row had. ``accept_suggestions=True`` (or a list
    of lines) takes the repair suggestions (``bi.suggestions``). Rows that pass join the staged rows,
    the others stay rejected with their new reasons; ``bi.fixes`` lists every changed cell. The job is
    ``fixing`` until then: ``bi.wait(job_id)``.

    >>> bi.fix("3f2a9c1b7d4e", {6: {"price": "3.00"}, 8: {"stock": "10"}})
    >>> bi.wait("3f2a9c1b7d4e").rows_rejected
    7
    """
    return fixing.fix(job_id, rows, user=_who(), accept_suggestions=accept_suggestions)


def suggestions(job_id: str) -> pd.DataFrame:
    """Repair suggestions for rejected rows whose cells broke (one too many or too few, a stray quote).

    One row per line with exactly one repair that passes the schema: ``line``, ``change`` (what it
    does), ``cells_before`` and ``cells_after`` (the file's cells). Accept them with
    ``bi.fix(job_id, accept_suggestions=True)``; they are never applied on their own.

    >>> bi.suggestions("3f2a9c1b7d4e")[["line", "change"]]
    """
    return fixing.suggestions(job_id, _who())


def fixes(job_id: str) -> pd.DataFrame:
    """Every cell a fix changed: ``fixed_at, fixed_by, line, column, before, after, suggestion, outcome``.

    >>> bi.fixes("3f2a9c1b7d4e")
    """
    return fixing.history(job_id, _who())
