"""Repair suggestions for rows whose shape broke: a cell too many or too few, or a stray quote.

For such a reject the candidates are: join two neighbouring cells (a delimiter that
belonged to the text), split a cell at a delimiter inside it (two values quoted as
one), drop one quote character (a stray or unterminated quote), or put back a
delimiter lost just before a quoted value. Every candidate that has the header's
number of cells is checked with the dataset's schema (the same ``validate_chunk``
as the file); only when exactly one distinct row passes is it offered. Suggestions
are stored for a person to accept one by one or all at once; nothing here changes a
job's rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from bulkimport import lake
from bulkimport.datasets import Dataset
from bulkimport.registry import Job
from bulkimport.sql import ident
from bulkimport.stages.fix import cells_by_column, ensure_tables, file_layout, has_table, split_line
from bulkimport.stages.read import RowShape
from bulkimport.stages.validate import validate_chunk

log = logging.getLogger(__name__)

# Rejects whose raw text is not a line to repair: rows as staged (JSON), blank or cut lines, bad bytes.
NOT_REPAIRABLE = ("duplicate-key", "conflict", "blank-row", "line-too-long", "invalid-encoding")
MAX_LINES = 10_000  # suggestions are worked out for the first this many damaged lines of a job
MAX_CANDIDATES = 200  # per line: a line with more ways to repair it gets none


@dataclass(frozen=True)
class Candidate:
    change: str  # what the repair does, in words
    cells: list[str]  # the repaired row, one cell per header column


def _quoted(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def candidates(raw: str, job: Job) -> list[Candidate]:
    """Every one-step repair of ``raw`` that gives a row of the header's shape."""
    header, _ = file_layout(job)
    shape = RowShape.of(header)
    dialect = job.dialect or {}
    delimiter, quote = dialect.get("delimiter") or ",", dialect.get("quote") or '"'
    found: list[Candidate] = []

    def add(change: str, cells: list[str] | None) -> None:
        if cells is not None and shape.problem(cells) is None:
            found.append(Candidate(change, cells[: shape.width] + [""] * (shape.width - len(cells))))

    cells = split_line(raw, job) or split_line(raw, job, lenient=True) or []
    if len(cells) > shape.width:
        for i in range(len(cells) - 1):
            a, b = cells[i], cells[i + 1]
            add(
                f"join {_quoted(a)} and {_quoted(b)} into one cell: {_quoted(a + delimiter + b)}",
                cells[:i] + [a + delimiter + b] + cells[i + 2 :],
            )
    if len(cells) < shape.needed:
        for i, cell in enumerate(cells):
            for at in (k for k, ch in enumerate(cell) if ch == delimiter):
                left, right = cell[:at], cell[at + 1 :]
                add(
                    f"split {_quoted(cell)} at {delimiter!r} into {_quoted(left)} and {_quoted(right)}",
                    cells[:i] + [left, right] + cells[i + 1 :],
                )
    for at in (k for k, ch in enumerate(raw) if ch == quote):
        add(f"drop the stray quote at character {at + 1}", split_line(raw[:at] + raw[at + 1 :], job))
        if at and raw[at - 1] not in (delimiter, quote):
            add(
                f"put back the {delimiter!r} lost before the quote at character {at + 1}",
                split_line(raw[:at] + delimiter + raw[at:], job),
            )
    return found[:MAX_CANDIDATES] if len(found) <= MAX_CANDIDATES else []


@dataclass(frozen=True)
class Suggestion:
    line: int
    change: str
    cells_before: list[str]  # the row as read, one cell per file column (more or fewer than the header)
    cells_after: list[str]  # the repaired row, one cell per header column
    values: dict[str, str | None]  # the repaired row as dataset columns: what accepting it sends


def _staged_keys(c: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, valid: pd.DataFrame) -> set[tuple]:
    """Keys among ``valid`` that the job has staged already (a suggestion with one would fail as a duplicate)."""
    keys = valid.reset_index()[list(dataset.key)].drop_duplicates()
    if keys.empty:
        return set()
    c.register("suggested_keys", pa.Table.from_pandas(keys, preserve_index=False))
    try:
        join = " AND ".join(f"s.{ident(k)} = CAST(v.{ident(k)} AS {dataset.sql_types[k]})" for k in dataset.key)
        columns = ", ".join(f"CAST(s.{ident(k)} AS VARCHAR)" for k in dataset.key)
        rows = c.execute(
            f"SELECT {columns} FROM staging.{ident(dataset.name)} s JOIN suggested_keys v ON s.job_id = ? AND {join}",
            [job.id],
        ).fetchall()
    finally:
        c.unregister("suggested_keys")
    return {tuple(r) for r in rows}


def work_out(c: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, lines=None) -> list[Suggestion]:
    """The suggestions for the job's damaged rejected lines (or those of ``lines``)."""
    if (job.dialect or {}).get("kind") == "xlsx":
        return []
    # Not only missing-cell, extra-cell and quote rejects: a delimiter inside an unquoted value followed by an
    # empty last cell still fits the header, and shows up as type errors in the shifted cells.
    where = "job_id = $job"
    params = {"job": job.id, "skip": list(NOT_REPAIRABLE)}
    if lines is not None:
        where += " AND list_contains($lines, line)"
        params["lines"] = [int(n) for n in lines]
    damaged = c.execute(
        f"SELECT line, any_value(raw) FROM staging.rejected_rows WHERE {where} AND raw IS NOT NULL "
        f"GROUP BY line HAVING bool_and(NOT list_contains($skip, reason)) ORDER BY line LIMIT {MAX_LINES}",
        params,
    ).fetchall()
    tried: list[tuple[int, Candidate]] = [(line, found) for line, raw in damaged for found in candidates(raw, job)]
    if not tried:
        return []
    frame = pd.DataFrame(
        [cells_by_column(found.cells, job, dataset) for _, found in tried],
        columns=dataset.columns,
        index=pd.Index(range(len(tried)), name="line"),
        dtype=object,
    )
    valid = validate_chunk(dataset, frame, {}).valid
    taken = _staged_keys(c, job, dataset, valid)
    passing: dict[int, dict[tuple, int]] = {}  # line -> distinct passing rows -> the first candidate giving it
    for k in valid.index:
        line, found = tried[k]
        if tuple(str(valid.at[k, key]) for key in dataset.key) in taken:
            continue
        passing.setdefault(line, {}).setdefault(tuple(frame.loc[k]), k)
    raws = dict(damaged)
    out = []
    for line, rows in passing.items():
        if len(rows) != 1:
            continue  # none or several ways pass: a person has to decide
        k = next(iter(rows.values()))
        found = tried[k][1]
        before = split_line(raws[line], job) or split_line(raws[line], job, lenient=True) or []
        out.append(Suggestion(line, found.change, before, found.cells, cells_by_column(found.cells, job, dataset)))
    return out


def store_suggestions(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, lines=None) -> int:
    """Work out and store the job's suggestions (replacing earlier ones); returns how many there are."""
    ensure_tables(con)

    def work(c: duckdb.DuckDBPyConnection) -> int:
        found = work_out(c, job, dataset, lines)
        if lines is None:
            c.execute("DELETE FROM staging.repair_suggestions WHERE job_id = ?", [job.id])
        else:
            c.execute(
                "DELETE FROM staging.repair_suggestions WHERE job_id = $job AND list_contains($lines, line)",
                {"job": job.id, "lines": [int(n) for n in lines]},
            )
        if found:
            c.executemany(
                "INSERT INTO staging.repair_suggestions VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        job.id,
                        s.line,
                        s.change,
                        json.dumps(s.cells_before),
                        json.dumps(s.cells_after),
                        json.dumps(s.values),
                    )
                    for s in found
                ],
            )
        return len(found)

    return lake.write(con, work)


def suggestions(con: duckdb.DuckDBPyConnection, job: Job, lines=None) -> list[Suggestion]:
    """The stored suggestions of a job's rejected lines, by line."""
    if not has_table(con, "staging", "repair_suggestions"):
        return []
    where, params = "job_id = $job", {"job": job.id}
    if lines is not None:
        where += " AND list_contains($lines, line)"
        params["lines"] = [int(n) for n in lines]
    rows = con.execute(
        "SELECT line, change, cells_before, cells_after, suggestion_values FROM staging.repair_suggestions "
        f"WHERE {where} ORDER BY line",
        params,
    ).fetchall()
    return [Suggestion(int(n), change, json.loads(b), json.loads(a), json.loads(v)) for n, change, b, a, v in rows]
