"""Lake reads behind the review screen, one function per question (pages run no SQL)."""

from __future__ import annotations

import pandas as pd

from bulkimport import lake, registry
from bulkimport.datasets import get_dataset
from bulkimport.exports import rejected_for_fixing
from bulkimport.stages import review


def updates(job_id: str, limit: int = 50) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A sample of production rows the job would change: (before, after), aligned row by row."""
    job = registry.get(job_id)
    dataset = get_dataset(job.dataset)
    with lake.session() as con:
        lake.ensure_tables(con, dataset)
        return review.updates(con, job, dataset, limit)


def diff(job_id: str) -> review.Diff:
    """Rows to insert / update / leave unchanged, and how many rows change per column."""
    job = registry.get(job_id)
    dataset = get_dataset(job.dataset)
    with lake.session() as con:
        lake.ensure_tables(con, dataset)
        return review.diff(con, job, dataset)


__all__ = ["diff", "rejected_for_fixing", "updates"]
