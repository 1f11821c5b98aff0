"""Fixes of rejected rows: the rows a user changed, waiting for (or checked by) a worker."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass

from bulkimport.registry.backends import connect
from bulkimport.registry.jobs import FIXING, STAGED, Job, now, transition

FIX_PENDING, FIX_DONE, FIX_FAILED = "pending", "done", "failed"


@dataclass(frozen=True)
class Fix:
    """Rejected rows a user changed, waiting for (or checked by) a worker.

    ``rows``: one entry per line: ``{"line", "cells": {column: text}, "changes": {column:
    [before, after]}, "suggestion": bool}``. ``result`` says which lines were staged.
    """

    id: int
    job_id: str
    requested_by: str
    requested_at: str
    rows: list[dict]
    status: str
    result: dict | None


def _fix(row) -> Fix:
    values = dict(row)
    values["rows"] = json.loads(values["rows"])
    values["result"] = json.loads(values["result"]) if values["result"] else None
    return Fix(**values)


def request_fix(job_id: str, rows: list[dict], *, requested_by: str, note: str) -> Job:
    """Record fixed rows and move the staged job to ``fixing``, in one transaction."""

    def record(con) -> None:
        con.execute(
            "INSERT INTO fixes (job_id, requested_by, requested_at, rows, status) VALUES (?,?,?,?,?)",
            (job_id, requested_by, now(), json.dumps(rows), FIX_PENDING),
        )

    return transition(job_id, STAGED, FIXING, actor=requested_by, note=note, also=record)


def pending_fix(job_id: str) -> Fix | None:
    """The oldest fix of the job a worker has not finished yet."""
    with closing(connect()) as con:
        row = con.execute(
            "SELECT * FROM fixes WHERE job_id = ? AND status = ? ORDER BY id LIMIT 1", (job_id, FIX_PENDING)
        ).fetchone()
    return _fix(row) if row else None


def fixes(job_id: str) -> list[Fix]:
    with closing(connect()) as con:
        rows = con.execute("SELECT * FROM fixes WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
    return [_fix(r) for r in rows]


def finish_fix(fix_id: int, job_id: str, status: str, result: dict, *, actor: str, note: str, **updates) -> Job:
    """Close a fix and return its job from ``fixing`` to ``staged``, in one transaction."""

    def close(con) -> None:
        con.execute("UPDATE fixes SET status = ?, result = ? WHERE id = ?", (status, json.dumps(result), fix_id))

    return transition(job_id, FIXING, STAGED, actor=actor, note=note, also=close, **updates)
