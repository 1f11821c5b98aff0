"""Write a job's rows out: staged rows as stored, rejected rows ready to fix and upload again.

Only for a user who may see the job's brand. CSV cells a spreadsheet would run as
formulas are neutralised and .xlsx cells are text (bulkimport.cells); Parquet keeps types.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from bulkimport import cells, lake, registry, users
from bulkimport.datasets import get_dataset
from bulkimport.stages import review

FORMATS = ("csv", "xlsx", "parquet")
BATCH_ROWS = 50_000


def _job(job_id: str, user: users.User) -> registry.Job:
    from bulkimport.workflow import visible_job  # workflow imports much; only exports of a job need it

    return visible_job(job_id, user)


def rejected_for_fixing(job_id: str, user: users.User, neutralised: bool = True) -> pd.DataFrame:
    """The rejected rows with the file's own columns, plus line, reason, column, detail (one row per line)."""
    job = _job(job_id, user)
    with lake.session() as con:
        lake.ensure_tables(con, get_dataset(job.dataset))
        return review.rejected_for_fixing(con, job, neutralised)


def staged_frame(job_id: str, user: users.User, limit: int | None = None) -> pd.DataFrame:
    """The job's staged rows as a DataFrame (the dashboard's download), by line."""
    job = _job(job_id, user)
    dataset = get_dataset(job.dataset)
    with lake.session() as con:
        lake.ensure_tables(con, dataset)
        relation = review.staged_rows(con, job, dataset)
        return (relation.limit(limit) if limit else relation).df()


@contextmanager
def _sink(target: str | Path):
    if str(target) == "-":
        sys.stdout.flush()
        stream = getattr(sys.stdout, "buffer", None)
        if stream is None:  # stdout replaced by text (a notebook, a test)
            buffer = pa.BufferOutputStream()
            yield buffer
            sys.stdout.write(buffer.getvalue().to_pybytes().decode("utf-8"))
            return
        yield stream
        stream.flush()
    else:
        with open(target, "wb") as out:
            yield out


def _write(relation: duckdb.DuckDBPyRelation, target: str | Path, fmt: str, title: str) -> None:
    if fmt == "parquet":
        if str(target) == "-":
            raise ValueError("parquet cannot go to standard output; give a file name")
        relation.write_parquet(str(target))
        return
    reader = relation.to_arrow_reader(BATCH_ROWS)  # streams, however large
    with _sink(target) as sink:
        if fmt == "xlsx":
            cells.write_xlsx(reader, reader.schema, sink, title)
        else:
            cells.write_csv(reader, reader.schema, sink)


def export(job_id: str, what: str, target: str | Path, fmt: str = "csv", *, user: users.User) -> None:
    """Write ``staged`` or ``rejected`` rows of a job ``user`` may see to ``target`` (``-`` is standard output)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if what not in ("staged", "rejected"):
        raise ValueError(f"export staged or rejected rows, not {what!r}")
    job = _job(job_id, user)
    dataset = get_dataset(job.dataset)
    with lake.session() as con:
        lake.ensure_tables(con, dataset)
        if what == "rejected":
            fixing = review.rejected_for_fixing(con, job, neutralised=fmt == "csv")  # noqa: F841 - read by name below
            relation = con.sql("SELECT * FROM fixing")
        else:
            relation = review.staged_rows(con, job, dataset)
        _write(relation, target, fmt, f"{job.id} {what}")
