"""Reading production: its rows now or at a snapshot, the imports that made it, one row's history."""

from __future__ import annotations

from typing import Any

import duckdb

from bulkimport import users
from bulkimport.api.session import _any_dataset, _ensure, _lake, _who
from bulkimport.api.snapshots import AsOf, _entry_snapshots, snapshot
from bulkimport.datasets import Dataset, get_dataset
from bulkimport.errors import BulkImportError
from bulkimport.sql import current_snapshot, ident, literal

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
