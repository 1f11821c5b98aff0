"""Fix rejected rows in place: from the dashboard's grid, the CLI (the downloaded error file) or the API.

Reads what the grid shows (each rejected line's cells and reasons, and the repair
suggestions), turns edits, a fixed error file or accepted suggestions into a fix,
and sends it to a worker by name (``check_fixes``), which checks the rows with the
dataset's schema. Nothing here validates rows itself.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bulkimport import dispatch, lake, registry, users
from bulkimport.access import acting, visible_job
from bulkimport.cells import restore
from bulkimport.datasets import Dataset, get_dataset
from bulkimport.errors import BulkImportError, DispatchError, InvalidTransition, NotAllowed
from bulkimport.registry import FIX_DONE, FIX_FAILED, STAGED
from bulkimport.stages import fix as fix_stage
from bulkimport.stages import repair
from bulkimport.stages.fix import RejectedLine
from bulkimport.stages.repair import Suggestion

GRID_LINES = 1_000  # rejected lines the dashboard's grid shows at once
FIXES_IN_NOTE = 8  # changed cells named in the timeline's note (the audit has them all)


def require_fixer(user: users.User, job: registry.Job) -> None:
    """Anyone who may import for the job's brand may fix its rejected rows."""
    if not user.sees(job.brand):
        raise NotAllowed(f"{user.name} may not fix jobs of brand {job.brand!r}")


def last_request(job_id: str) -> str:
    """What the latest fix of the job asked for, as the timeline says it ("ana fixed 2 rejected row(s): ...")."""
    asked = [e.note for e in registry.events(job_id) if e.to_status == registry.FIXING and e.from_status == STAGED]
    return asked[-1] if asked else ""


def fixers(job_id: str) -> set[str]:
    """Who changed rows of the job by a fix: like its uploader, they may not approve it (four eyes)."""
    return {f.requested_by for f in registry.fixes(job_id) if f.status == FIX_DONE}


# ---------------------------------------------------------------- what the grid shows


@dataclass(frozen=True)
class Fixable:
    """A job's rejected lines as the fixing grid shows them, with their repair suggestions."""

    job: registry.Job
    dataset: Dataset
    lines: list[RejectedLine]
    suggestions: dict[int, Suggestion]
    total_lines: int  # rejected lines in all (the grid may show fewer)


def fixable(job_id: str, user: users.User, limit: int = GRID_LINES) -> Fixable:
    job = visible_job(job_id, acting(user))
    dataset = get_dataset(job.dataset)
    with lake.session() as con:
        lake.ensure_tables(con, dataset)
        return read_fixable(con, job, dataset, limit)


def read_fixable(con, job: registry.Job, dataset: Dataset, limit: int = GRID_LINES) -> Fixable:
    """As ``fixable``, on an open lake connection (the review screen reads everything in one)."""
    lines = fix_stage.rejected_lines(con, job, dataset, limit=limit)
    suggestions = {s.line: s for s in repair.suggestions(con, job, lines=[r.line for r in lines])}
    total = con.execute("SELECT count(DISTINCT line) FROM staging.rejected_rows WHERE job_id = ?", [job.id]).fetchone()
    return Fixable(job, dataset, lines, suggestions, total[0])


def suggestions(job_id: str, user: users.User) -> pd.DataFrame:
    """Every repair suggestion of a job: line, change, the row as read and as repaired (the file's cells)."""
    job = visible_job(job_id, acting(user))
    with lake.session() as con:
        found = repair.suggestions(con, job)
    return pd.DataFrame(
        [(s.line, s.change, s.cells_before, s.cells_after) for s in found],
        columns=["line", "change", "cells_before", "cells_after"],
    )


def history(job_id: str, user: users.User) -> pd.DataFrame:
    """Every cell a fix changed: when, who, line, column, before, after, whether a suggestion, and the outcome."""
    job = visible_job(job_id, acting(user))
    with lake.session() as con:
        return fix_stage.history(con, job)


# ---------------------------------------------------------------- sending a fix


def _as_rows(rows, job: registry.Job, dataset: Dataset) -> dict[int, dict[str, str | None]]:
    """``{line: {column: text}}`` from a mapping of lines, records with a ``line`` or a DataFrame.

    Columns may be the dataset's or the file's own (mapped as the job mapped them).
    """
    if rows is None:
        return {}
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    if isinstance(rows, Mapping):
        items = [(line, dict(cells)) for line, cells in rows.items()]
    else:
        items = []
        for record in rows:
            record = dict(record)
            if "line" not in record:
                raise BulkImportError("every fixed row needs its 'line' (the line number in the uploaded file)")
            items.append((record.pop("line"), record))
    _, mapping = fix_stage.file_layout(job)
    out: dict[int, dict[str, str | None]] = {}
    for line, cells in items:
        try:
            line = int(line)
        except (TypeError, ValueError):
            raise BulkImportError(f"line {line!r} is not a line number") from None
        row = {}
        for name, value in cells.items():
            column = name if name in dataset.columns else mapping.get(name)
            if column is None:
                continue  # reason, detail, ignored file columns: not the row's values
            row[column] = None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
        out[line] = row
    return out


def _describe(changes: dict[int, dict[str, list]], accepted: dict[int, Suggestion], fixed_by: str) -> str:
    parts = []
    for line, cells in sorted(changes.items()):
        if line in accepted:
            parts.append(f"line {line}: accepted the suggestion ({accepted[line].change})")
        else:
            parts += [f"line {line} {column} {before!r} → {after!r}" for column, (before, after) in cells.items()]
    shown = "; ".join(parts[:FIXES_IN_NOTE]) + (
        f"; and {len(parts) - FIXES_IN_NOTE} more" if parts[FIXES_IN_NOTE:] else ""
    )
    return f"{fixed_by} fixed {len(changes)} rejected row(s): {shown}"


def fix(
    job_id: str,
    rows=None,
    *,
    user: users.User,
    accept_suggestions: bool | Iterable[int] = False,
    skip_unknown: bool = False,
) -> registry.Job:
    """Send fixed rejected rows of a staged job to be checked again by a worker.

    ``rows`` gives new cell values by line: ``{6: {"price": "3.00"}}``, records or a
    DataFrame with a ``line`` column; cells not given keep what the row had.
    ``accept_suggestions`` (True for all, or line numbers) takes the repair
    suggestions of those lines; an explicit value in ``rows`` wins. A line that is
    not rejected raises BulkImportError, unless ``skip_unknown``. The job becomes
    ``fixing`` until the worker is done (``bulkimport.workflow.wait``).
    """
    user = acting(user)
    job = visible_job(job_id, user)
    require_fixer(user, job)
    fixed_by = user.name
    if job.status != STAGED:
        raise InvalidTransition(f"job {job_id} is {job.status}; only the rejected rows of a staged job can be fixed")
    dataset = get_dataset(job.dataset)
    given = _as_rows(rows, job, dataset)
    with lake.session() as con:
        lake.ensure_tables(con, dataset)
        every = accept_suggestions is True
        wanted_suggestions = None if every else [int(n) for n in (accept_suggestions or [])]
        found = repair.suggestions(con, job, lines=wanted_suggestions) if every or wanted_suggestions else []
        accepted = {s.line: s for s in found}
        missing = sorted(set(wanted_suggestions or []) - set(accepted))
        if missing:
            raise BulkImportError(f"no repair suggestion for line(s) {', '.join(map(str, missing))}")
        current = {r.line: r for r in fix_stage.rejected_lines(con, job, dataset, lines=sorted({*given, *accepted}))}
    unknown = sorted(set(given) - set(current))
    if unknown and not skip_unknown:
        raise BulkImportError(
            f"line(s) {', '.join(map(str, unknown[:20]))} of job {job_id} are not rejected; "
            "only rejected rows can be fixed"
        )
    fixed, changes, taken = [], {}, {}
    for line in sorted(current):
        cells = dict(current[line].cells)
        if line in accepted:
            cells.update(accepted[line].values)
        cells.update(given.get(line, {}))
        cells = {c: (v.strip() or None) if isinstance(v, str) else v for c, v in cells.items()}
        changed = {c: [current[line].cells.get(c), v] for c, v in cells.items() if v != current[line].cells.get(c)}
        if not changed:
            continue
        suggested = line in accepted and not (set(given.get(line, {})) - set(accepted[line].values))
        if suggested:
            taken[line] = accepted[line]
        fixed.append({"line": line, "cells": cells, "changes": changed, "suggestion": suggested})
        changes[line] = changed
    if not fixed:
        raise BulkImportError(
            "nothing to check again: no rejected row was changed" + (f" (skipped line(s) {unknown})" if unknown else "")
        )
    note = _describe(changes, taken, fixed_by)
    job = registry.request_fix(job_id, fixed, requested_by=fixed_by, note=note)
    try:
        dispatch.send(dispatch.CHECK_FIXES, job.id)
    except DispatchError as exc:
        pending = registry.pending_fix(job.id)
        if pending is not None:
            registry.finish_fix(
                pending.id,
                job.id,
                FIX_FAILED,
                {"error": str(exc)},
                actor=fixed_by,
                note="fix not queued",
                error=f"fix not queued: {exc}",
            )
        raise
    return job


# ---------------------------------------------------------------- the downloaded error file, fixed


def _delimiter(header_line: str) -> str:
    """The delimiter of a fixed error file: a spreadsheet may have saved it with ';' or tabs."""
    best = max((",", ";", "\t"), key=lambda d: next(csv.reader([header_line], delimiter=d)).count("line"))
    return best if "line" in next(csv.reader([header_line], delimiter=best)) else ","


def rows_from_error_file(
    job_id: str, path: str | Path, user: users.User
) -> tuple[dict[int, dict[str, str | None]], list[str]]:
    """The rows of a fixed rejected-rows file (``bulkimport export JOB --rejected``), by line, as dataset columns,
    and what could not be read (one message per line).

    A row whose cells were kept whole in ``raw`` (too many or too few) is read from ``raw`` again.
    """
    job = visible_job(job_id, acting(user))
    dataset = get_dataset(job.dataset)
    header, _ = fix_stage.file_layout(job)
    text = Path(path).read_text(encoding="utf-8-sig")
    first = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=_delimiter(first))
    reader.fieldnames = [restore(name) for name in reader.fieldnames or []]
    if "line" not in (reader.fieldnames or []):
        raise BulkImportError(
            f"{path}: no 'line' column; give back the file `bulkimport export {job_id} --rejected` wrote, fixed"
        )
    out: dict[int, dict[str, str | None]] = {}
    problems: list[str] = []
    for record in reader:
        if not (record.get("line") or "").strip():
            continue
        line = int(float(record["line"]))
        values = {k: restore(v) if v != "" else None for k, v in record.items() if k in header}
        raw = restore(record.get("raw") or "")
        if raw and not any(values.values()):
            cells = fix_stage.split_line(raw, job, lenient=True) or []
            if len(cells) != len(header):
                problems.append(
                    f"line {line}: its raw line has {len(cells)} cells and the header {len(header)}; "
                    "fix the raw line or fill in the columns (not sent)"
                )
                continue
        else:
            cells = [values.get(h) or "" for h in header]
        out[line] = fix_stage.cells_by_column(cells, job, dataset)
    return out, problems
