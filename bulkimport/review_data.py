"""Lake reads behind the review screen, one function per question (pages run no SQL)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bulkimport import cells, exports, fixing, lake, registry, users
from bulkimport.datasets import get_dataset
from bulkimport.exports import rejected_for_fixing
from bulkimport.stages import review


@dataclass(frozen=True)
class ReviewData:
    """Everything the review screen shows of a job's rows, read in one lake session."""

    diff: review.Diff | None  # None when the job is past the point where a diff means anything
    before: pd.DataFrame  # a sample of production rows the commit would change ...
    after: pd.DataFrame  # ... and what they would become, aligned row by row
    rejected: pd.DataFrame  # one row per problem: line, column, reason, value, detail, check, raw
    valid: pd.DataFrame  # the first staged rows, by line
    deletes: pd.DataFrame  # replace: a sample of the production rows the commit would delete
    fixable: fixing.Fixable | None = None  # the rejected lines for the fixing grid, when asked for


def for_review(
    job_id: str,
    *,
    with_diff: bool = True,
    updates_limit: int = 50,
    rejected_limit: int = 5_000,
    valid_limit: int = 200,
    with_fixable: bool = False,
) -> ReviewData:
    """Diff, update sample, rejected rows and the first valid rows of a job (one lake connection: opening one
    costs about half a second)."""
    job = registry.get(job_id)
    dataset = get_dataset(job.dataset)
    with lake.session() as con:
        lake.ensure_tables(con, dataset)
        counts = review.diff(con, job, dataset) if with_diff else None
        if counts is not None and counts.rows_to_update:
            before, after = review.updates(con, job, dataset, updates_limit)
        else:
            before = after = pd.DataFrame(columns=list(dataset.columns))
        rejected = review.rejected_rows(con, job).limit(rejected_limit).df()
        valid = review.staged_rows(con, job, dataset).limit(valid_limit).df()
        if counts is not None and counts.rows_to_delete:
            deletes = review.deletes(con, job, dataset, updates_limit)
        else:
            deletes = pd.DataFrame(columns=list(dataset.columns))
        found = fixing.read_fixable(con, job, dataset) if with_fixable and not rejected.empty else None
    return ReviewData(counts, before, after, rejected, valid, deletes, found)


def download(job_id: str, what: str, fmt: str, user: users.User) -> bytes:
    """The bytes of the review page's downloads: ``rejected`` (to fix) or ``staged`` rows, ``csv`` or ``xlsx``."""
    if what == "rejected":
        frame = exports.rejected_for_fixing(job_id, user, neutralised=fmt == "csv")
    else:
        frame = exports.staged_frame(job_id, user)
    return cells.frame_bytes(frame, fmt, title=f"{job_id} {what}")


__all__ = ["ReviewData", "download", "for_review", "rejected_for_fixing"]
