"""Fix rejected rows in place: the cells of each rejected line, and checking fixed rows again.

A fix gives new text for the cells of some rejected lines. The rows go through the
validator the file went through (``validate_chunk``), so the dataset's pandera model
stays the one declaration of the rules. Rows that pass join the job's staged rows
(still under their line in the file), the others stay rejected with their new reasons,
and every changed cell is written to ``audit.fixes`` (who, from what, to what). Every
line of the file stays either staged or rejected.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from bulkimport import lake
from bulkimport.datasets import Dataset
from bulkimport.registry import APPEND, Fix, Job
from bulkimport.sql import ident
from bulkimport.stages.read import Reject
from bulkimport.stages.review import staged_row
from bulkimport.stages.validate import validate_chunk

REJECT_COLUMNS = ["line", "column", "reason", "check", "value", "detail", "raw"]
# What became of a fixed line.
STAGED, STILL_REJECTED, SKIPPED = "staged", "rejected", "skipped"


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The audit of fixes and the repair suggestions (bulkimport.stages.repair)."""

    def create(c: duckdb.DuckDBPyConnection) -> None:
        c.execute("CREATE SCHEMA IF NOT EXISTS audit")
        c.execute("CREATE SCHEMA IF NOT EXISTS staging")
        c.execute(
            "CREATE TABLE IF NOT EXISTS audit.fixes (job_id VARCHAR, fix_id BIGINT, line BIGINT, "
            '"column" VARCHAR, before VARCHAR, after VARCHAR, fixed_by VARCHAR, fixed_at TIMESTAMP, '
            "suggestion BOOLEAN, outcome VARCHAR)"
        )
        c.execute(
            "CREATE TABLE IF NOT EXISTS staging.repair_suggestions (job_id VARCHAR, line BIGINT, "
            "change VARCHAR, cells_before VARCHAR, cells_after VARCHAR, suggestion_values VARCHAR)"
        )

    lake.write(con, create)


def has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = ? AND table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


# ---------------------------------------------------------------- a rejected line's cells


def file_layout(job: Job) -> tuple[list[str], dict[str, str]]:
    """The file's header and its mapping (file column -> dataset column), as the worker read them."""
    return list((job.dialect or {}).get("header") or []), dict(job.mapping or {})


def split_line(raw: str, job: Job, lenient: bool = False) -> list[str] | None:
    """A raw line as the file's cells (xlsx rows are stored as a JSON list); None if it cannot be parsed.

    ``lenient`` splits a line whose quoting breaks the parser plainly on the delimiter.
    """
    dialect = job.dialect or {}
    if dialect.get("kind") == "xlsx":
        try:
            cells = json.loads(raw)
        except ValueError:
            return None
        return [("" if c is None else str(c)) for c in cells] if isinstance(cells, list) else None
    delimiter = dialect.get("delimiter") or ","
    try:
        return next(
            csv.reader(
                [raw],
                delimiter=delimiter,
                quotechar=dialect.get("quote") or '"',
                escapechar=dialect.get("escape"),
                doublequote=dialect.get("escape") is None,
                strict=True,
            )
        )
    except (csv.Error, StopIteration):
        return raw.split(delimiter) if lenient else None


def _text(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def cells_by_column(file_cells: list[str], job: Job, dataset: Dataset) -> dict[str, str | None]:
    """File cells (by position) as dataset columns, through the job's mapping; cells past the row's end are empty."""
    header, mapping = file_layout(job)
    out: dict[str, str | None] = dict.fromkeys(dataset.columns)
    for position, name in enumerate(header):
        column = mapping.get(name)
        if column in out and position < len(file_cells):
            out[column] = _text(file_cells[position])
    return out


@dataclass(frozen=True)
class RejectedLine:
    """One rejected line as the fixing grid shows it."""

    line: int
    reasons: list[str]
    columns: list[str]  # the dataset columns that failed (none for a row that did not split into cells)
    details: list[str]
    cells: dict[str, str | None]  # dataset column -> the text the row had there
    fits: bool  # its cells line up with the header (else the cells are a best effort: see raw)
    raw: str | None


def _cells_of(raw: str | None, reason: str, job: Job, dataset: Dataset) -> tuple[dict[str, str | None], bool]:
    if raw is None:
        return dict.fromkeys(dataset.columns), False
    if (values := staged_row(raw, reason)) is not None:
        return {c: _text(values.get(c)) for c in dataset.columns}, True
    header, _ = file_layout(job)
    cells = split_line(raw, job)
    fits = cells is not None and len(cells) >= len(header) and not any(c.strip() for c in cells[len(header) :])
    if cells is None:
        cells = split_line(raw, job, lenient=True) or []
    if (job.dialect or {}).get("kind") == "xlsx":
        fits = fits or len(cells) <= len(header)  # a sheet stores no trailing empty cells
    return cells_by_column(cells, job, dataset), fits


def rejected_lines(
    con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, limit: int | None = None, lines=None
) -> list[RejectedLine]:
    """The job's rejected lines, by line (all, the first ``limit``, or those in ``lines``)."""
    where = "job_id = $job"
    params: dict = {"job": job.id}
    if lines is not None:
        where += " AND list_contains($lines, line)"
        params["lines"] = [int(n) for n in lines]
    rows = con.execute(
        'SELECT line, list(reason ORDER BY "column"), list("column" ORDER BY "column"), '
        'list(detail ORDER BY "column"), any_value(raw), any_value(reason) '
        f"FROM staging.rejected_rows WHERE {where} GROUP BY line ORDER BY line"
        + (f" LIMIT {int(limit)}" if limit else ""),
        params,
    ).fetchall()
    out = []
    for line, reasons, columns, details, raw, reason in rows:
        cells, fits = _cells_of(raw, reason, job, dataset)
        failing = [c for c in dict.fromkeys(columns) if c in dataset.columns]
        for column in columns:  # a key of several columns is named "a/b"
            if column and "/" in column:
                failing += [c for c in column.split("/") if c in dataset.columns and c not in failing]
        out.append(
            RejectedLine(int(line), list(dict.fromkeys(reasons)), failing, [d for d in details if d], cells, fits, raw)
        )
    return out


def rebuild_line(cells: dict[str, str | None], job: Job, original: str | None) -> str:
    """A fixed row written back as a line of the file (its own columns, delimiter and quoting).

    Columns the dataset ignores keep what the original line had there.
    """
    header, mapping = file_layout(job)
    before = (split_line(original, job) if original else None) or []
    row = []
    for position, name in enumerate(header):
        column = mapping.get(name)
        if column:
            row.append(cells.get(column) or "")
        else:
            row.append(before[position] if position < len(before) else "")
    dialect = job.dialect or {}
    if dialect.get("kind") == "xlsx":
        return json.dumps(row)
    out = io.StringIO()
    csv.writer(
        out,
        delimiter=dialect.get("delimiter") or ",",
        quotechar=dialect.get("quote") or '"',
        escapechar=dialect.get("escape"),
        doublequote=dialect.get("escape") is None,
        lineterminator="",
    ).writerow(row)
    return out.getvalue()


# ---------------------------------------------------------------- checking fixed rows again


@dataclass(frozen=True)
class FixOutcome:
    staged: list[int]  # fixed lines that passed and are staged now
    rejected: list[int]  # fixed lines that still fail (their new reasons are in staging.rejected_rows)
    skipped: list[int]  # lines that were not rejected any more when the fix ran
    rows_valid: int
    rows_rejected: int
    already_applied: bool = False

    def to_dict(self) -> dict:
        return {"staged": self.staged, "rejected": self.rejected, "skipped": self.skipped}


def _insert_valid(c: duckdb.DuckDBPyConnection, dataset: Dataset, job: Job, valid: pd.DataFrame) -> None:
    if valid.empty:
        return
    c.register("fixed_valid", pa.Table.from_pandas(valid.reset_index(), preserve_index=False))
    try:
        casts = ", ".join(f"CAST(v.{ident(col)} AS {t})" for col, t in dataset.sql_types.items())
        columns = ", ".join(ident(col) for col in dataset.columns)
        c.execute(
            f"INSERT INTO staging.{ident(dataset.name)} (job_id, line, brand, {columns}) "
            f"SELECT ?, v.line, ?, {casts} FROM fixed_valid v",
            [job.id, job.brand],
        )
    finally:
        c.unregister("fixed_valid")


def _insert_rejects(c: duckdb.DuckDBPyConnection, job: Job, rejects: list[Reject]) -> None:
    if not rejects:
        return
    frame = pd.DataFrame([[getattr(r, k) for k in REJECT_COLUMNS] for r in rejects], columns=REJECT_COLUMNS)
    frame = frame.astype({"line": "int64"}).astype({k: object for k in REJECT_COLUMNS if k != "line"})
    c.register("fixed_rejects", frame)
    try:
        c.execute(
            'INSERT INTO staging.rejected_rows (job_id, line, "column", reason, "check", value, detail, raw) '
            'SELECT ?, line, "column", reason, "check", value, detail, raw FROM fixed_rejects',
            [job.id],
        )
    finally:
        c.unregister("fixed_rejects")


def _key_text(row: pd.Series, dataset: Dataset) -> str:
    return "/".join(str(row[c]) for c in dataset.key)


def _clashes(
    c: duckdb.DuckDBPyConnection, dataset: Dataset, job: Job, valid: pd.DataFrame, raws: dict[int, str]
) -> list[Reject]:
    """Valid fixed rows whose key another line of the job already has, or (append) production has."""
    rejects: list[Reject] = []
    key_name = "/".join(dataset.key)
    seen: dict[str, int] = {}
    for line, row in valid.sort_index().iterrows():  # within the fix: the first line keeps its key
        key = _key_text(row, dataset)
        if key in seen:
            rejects.append(
                Reject(
                    int(line),
                    "duplicate-key",
                    column=key_name,
                    check="unique_key",
                    value=key,
                    detail=f"{key_name} {key} already appears on line {seen[key]} (the first copy is kept)",
                    raw=raws.get(line),
                )
            )
        else:
            seen[key] = int(line)
    keys = valid.reset_index()[["line", *dataset.key]]
    c.register("fixed_keys", pa.Table.from_pandas(keys, preserve_index=False))
    try:
        casts = " AND ".join(
            f"x.{ident(k)} = CAST(v.{ident(k)} AS {dataset.sql_types[k]})" for k in dataset.key
        )  # x: a staged or production row
        staged = c.execute(
            f"SELECT v.line, min(x.line) FROM fixed_keys v JOIN staging.{ident(dataset.name)} x "
            f"ON x.job_id = ? AND {casts} GROUP BY v.line",
            [job.id],
        ).fetchall()
        written = []
        if job.mode == APPEND:
            written = c.execute(
                f"SELECT v.line, any_value(x.job_id) FROM fixed_keys v JOIN production.{ident(dataset.name)} x "
                f"ON x.brand = ? AND {casts} GROUP BY v.line",
                [job.brand],
            ).fetchall()
    finally:
        c.unregister("fixed_keys")
    taken = {r.line for r in rejects}
    for line, first in staged:
        if line in taken:
            continue
        key = _key_text(valid.loc[line], dataset)
        rejects.append(
            Reject(
                int(line),
                "duplicate-key",
                column=key_name,
                check="unique_key",
                value=key,
                detail=f"{key_name} {key} is already staged from line {first}",
                raw=raws.get(line),
            )
        )
        taken.add(line)
    for line, owner in written:
        if line in taken:
            continue
        key = _key_text(valid.loc[line], dataset)
        rejects.append(
            Reject(
                int(line),
                "conflict",
                column=key_name,
                check="append_new_keys",
                value=key,
                detail=f"{key_name} {key} is already in production (written by job {owner}); "
                "an append only adds new keys",
                raw=raws.get(line),
            )
        )
    return rejects


def counts(c: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> tuple[int, int]:
    """(staged rows, rejected lines) of the job."""
    staged = c.execute(f"SELECT count(*) FROM staging.{ident(dataset.name)} WHERE job_id = ?", [job.id]).fetchone()[0]
    rejected = c.execute(
        "SELECT count(DISTINCT line) FROM staging.rejected_rows WHERE job_id = ?", [job.id]
    ).fetchone()[0]
    return staged, rejected


def apply_fix(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, fix: Fix) -> FixOutcome:
    """Check a fix's rows with the dataset's schema and write the outcome, in one lake transaction.

    Idempotent: a fix already in ``audit.fixes`` is not applied again (a redelivered message).
    """
    lake.ensure_tables(con, dataset)
    ensure_tables(con)
    wanted = {int(r["line"]): r for r in fix.rows}

    def work(c: duckdb.DuckDBPyConnection) -> FixOutcome:
        done = c.execute(
            "SELECT line, any_value(outcome) FROM audit.fixes WHERE job_id = ? AND fix_id = ? GROUP BY line",
            [job.id, fix.id],
        ).fetchall()
        if done:
            by_outcome = {k: sorted(n for n, o in done if o == k) for k in (STAGED, STILL_REJECTED, SKIPPED)}
            return FixOutcome(*by_outcome.values(), *counts(c, job, dataset), already_applied=True)
        current = {r.line: r for r in rejected_lines(c, job, dataset, lines=list(wanted))}
        lines = sorted(n for n in wanted if n in current)
        skipped = sorted(n for n in wanted if n not in current)
        frame = pd.DataFrame(
            [[_text(wanted[n]["cells"].get(col)) for col in dataset.columns] for n in lines],
            columns=dataset.columns,
            index=pd.Index(lines, name="line", dtype="int64"),
            dtype=object,
        )
        raws = {n: rebuild_line(wanted[n]["cells"], job, current[n].raw if current[n].fits else None) for n in lines}
        checked = validate_chunk(dataset, frame, raws) if lines else None
        valid = checked.valid if checked else frame.iloc[0:0]
        rejects = list(checked.rejects) if checked else []
        clashes = _clashes(c, dataset, job, valid, raws) if not valid.empty else []
        if clashes:
            rejects += clashes
            valid = valid.drop(index=[r.line for r in clashes])
        if lines:
            c.execute(
                "DELETE FROM staging.rejected_rows WHERE job_id = $job AND list_contains($lines, line)",
                {"job": job.id, "lines": lines},
            )
            c.execute(
                "DELETE FROM staging.repair_suggestions WHERE job_id = $job AND list_contains($lines, line)",
                {"job": job.id, "lines": lines},
            )
        _insert_valid(c, dataset, job, valid)
        _insert_rejects(c, job, rejects)
        staged_lines = sorted(int(n) for n in valid.index)
        still = sorted({r.line for r in rejects})
        outcome = {n: STAGED for n in staged_lines} | {n: STILL_REJECTED for n in still}
        outcome |= {n: SKIPPED for n in skipped}
        at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        audit = [
            (job.id, fix.id, n, column, before, after, fix.requested_by, at, bool(wanted[n].get("suggestion")), result)
            for n, result in sorted(outcome.items())
            for column, (before, after) in (wanted[n].get("changes") or {"": [None, None]}).items()
        ]
        if audit:
            c.executemany("INSERT INTO audit.fixes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", audit)
        staged, rejected = counts(c, job, dataset)
        if job.rows_total is not None and staged + rejected != job.rows_total:
            raise AssertionError(f"row accounting broke for job {job.id}: {staged} + {rejected} != {job.rows_total}")
        return FixOutcome(staged_lines, still, skipped, staged, rejected)

    return lake.write(con, work)


def history(con: duckdb.DuckDBPyConnection, job: Job) -> pd.DataFrame:
    """Every cell changed by a fix of the job: who, when, line, column, from what to what, and what came of it."""
    columns = ["fixed_at", "fixed_by", "line", "column", "before", "after", "suggestion", "outcome", "fix_id"]
    if not has_table(con, "audit", "fixes"):
        return pd.DataFrame(columns=columns)
    quoted = ", ".join(ident(c) for c in columns)
    return con.execute(
        f'SELECT {quoted} FROM audit.fixes WHERE job_id = ? ORDER BY fix_id, line, "column"', [job.id]
    ).df()
