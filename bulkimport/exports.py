"""Write a job's rows out: staged rows as stored, rejected rows ready to fix and upload again."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd

from bulkimport import lake, registry
from bulkimport.datasets import get_dataset
from bulkimport.stages import review


def rejected_for_fixing(job_id: str) -> pd.DataFrame:
    """The rejected rows with the file's own columns, plus line, reason, column, detail (one row per line)."""
    job = registry.get(job_id)
    with lake.session() as con:
        lake.ensure_tables(con, get_dataset(job.dataset))
        return review.rejected_for_fixing(con, job)


def _write(relation: duckdb.DuckDBPyRelation, target: str | Path, fmt: str) -> None:
    if str(target) == "-":
        if fmt != "csv":
            raise ValueError("only csv can go to standard output")
        sys.stdout.flush()
        try:
            descriptor = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # stdout replaced (a notebook, a test)
            relation.df().to_csv(sys.stdout, index=False)
            return
        # Streams, however large. Straight into the descriptor: DuckDB's default writes a temporary file next
        # to the target and renames it, which fails for stdout redirected to a file (`> rows.csv`).
        relation.write_csv(f"/dev/fd/{descriptor}", header=True, use_tmp_file=False)
    elif fmt == "csv":
        relation.write_csv(str(target), header=True)
    else:
        relation.write_parquet(str(target))


def export(job_id: str, what: str, target: str | Path, fmt: str = "csv") -> None:
    """Write ``staged`` or ``rejected`` rows of a job to ``target`` (``-`` is standard output)."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, not {fmt!r}")
    if what not in ("staged", "rejected"):
        raise ValueError(f"export staged or rejected rows, not {what!r}")
    job = registry.get(job_id)
    dataset = get_dataset(job.dataset)
    with lake.session() as con:
        lake.ensure_tables(con, dataset)
        if what == "rejected":
            fixing = review.rejected_for_fixing(con, job)  # noqa: F841 - read by name below
            relation = con.sql("SELECT * FROM fixing")
        else:
            relation = review.staged_rows(con, job, dataset)
        _write(relation, target, fmt)
