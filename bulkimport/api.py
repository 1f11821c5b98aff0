"""The Python API for notebooks and scripts: read jobs and lake data, submit and approve.

Reading goes through one lazily opened lake connection per process; results
are DuckDB relations (``.df()``, ``.pl()``, ``.arrow()``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd

from bulkimport import lake, registry
from bulkimport.config import settings
from bulkimport.datasets import get_dataset
from bulkimport.stages import review

# One connection per lake location, so a changed BULKIMPORT_HOME is honoured.
_connections: dict[tuple[str, str], duckdb.DuckDBPyConnection] = {}


def connect() -> duckdb.DuckDBPyConnection:
    """The shared lake connection (attached as ``lake``) for raw SQL.

    >>> bi.connect().sql("SELECT count(*) FROM production.products").fetchone()
    """
    s = settings()
    where = (str(s.lake_catalog), str(s.lake_data))
    if where not in _connections:
        _connections[where] = lake.connect()
    return _connections[where]


def jobs(status: str | None = None, dataset: str | None = None, brand: str | None = None) -> pd.DataFrame:
    """Jobs, newest first, as a DataFrame.  ``bi.jobs(status="staged")``"""
    rows = [j.to_dict() for j in registry.list_jobs(status=status, dataset=dataset, brand=brand)]
    return pd.DataFrame(rows, columns=[f for f in registry.Job.__dataclass_fields__])


def job(job_id: str) -> registry.Job:
    """One job.  ``bi.job("3f2a9c1b7d4e").status``"""
    return registry.get(job_id)


def _ready(job_id: str):
    job_ = registry.get(job_id)
    dataset = get_dataset(job_.dataset)
    con = connect()
    lake.ensure_tables(con, dataset)
    return con, job_, dataset


def staged(job_id: str) -> duckdb.DuckDBPyRelation:
    """The job's valid rows as staged (with their line in the file).  ``bi.staged(id).df()``"""
    con, job_, dataset = _ready(job_id)
    return review.staged_rows(con, job_, dataset)


def rejected(job_id: str) -> duckdb.DuckDBPyRelation:
    """The job's rejected rows: line, column, reason, value, detail, check, raw.  ``bi.rejected(id).df()``"""
    con, job_, _ = _ready(job_id)
    return review.rejected_rows(con, job_)


def diff(job_id: str) -> review.Diff:
    """What approving the job would do: rows to insert, update, leave unchanged.  ``bi.diff(id)``"""
    con, job_, dataset = _ready(job_id)
    return review.diff(con, job_, dataset)


def production(dataset: str, brand: str | None = None) -> duckdb.DuckDBPyRelation:
    """Current production rows of a dataset, optionally of one brand.  ``bi.production("products", "acme")``"""
    ds = get_dataset(dataset)
    con = connect()
    lake.ensure_tables(con, ds)
    where = " WHERE brand = $brand" if brand else ""
    return con.sql(f'SELECT * FROM production."{ds.name}"{where}', params={"brand": brand} if brand else None)


def export(job_id: str, what: str, target: str | Path, fmt: str = "csv") -> None:
    """Write a job's ``staged`` or ``rejected`` rows to a file (or ``-`` for stdout)."""
    relation = {"staged": staged, "rejected": rejected}[what](job_id)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, not {fmt!r}")
    if str(target) == "-":
        if fmt != "csv":
            raise ValueError("only csv can go to standard output")
        sys.stdout.flush()
        try:
            descriptor = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # stdout replaced (a notebook, a test)
            relation.df().to_csv(sys.stdout, index=False)
            return
        relation.write_csv(f"/dev/fd/{descriptor}", header=True)  # streams, however large
        return
    if fmt == "csv":
        relation.write_csv(str(target), header=True)
    else:
        relation.write_parquet(str(target))
