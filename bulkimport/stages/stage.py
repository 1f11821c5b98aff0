"""Stage a job: every row of its file ends up staged or rejected, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from bulkimport import lake
from bulkimport.datasets import Dataset
from bulkimport.registry import Job
from bulkimport.stages.read import Reject, Source, escape_undecodable, open_source, raw_lines, read_chunks
from bulkimport.stages.validate import validate_chunk

REJECT_COLUMNS = ["line", "column", "reason", "check", "value", "detail", "raw"]


@dataclass(frozen=True)
class StageCounts:
    rows_total: int
    rows_valid: int
    rows_rejected: int
    dialect: dict
    mapping: dict[str, str]


def describe(source: Source) -> dict:
    """What was found in the file, for the job record (`dialect` in --json)."""
    found = {
        "kind": source.kind,
        "header_line": source.header_line,
        "header": source.match.header,
        "ignored_columns": source.match.extra,
    }
    if source.dialect:
        found.update(source.dialect.to_dict())
    if source.match.suggestions:
        found["suggestions"] = source.match.suggestions
    if source.notes:
        found["notes"] = list(source.notes)  # a stray quote or a lost delimiter in the header
    if source.readings:
        found["readings"] = list(source.readings)  # the dialects weighed, the chosen one first
    return found


ProgressFn = Callable[[dict], None]


def _insert_valid(con: duckdb.DuckDBPyConnection, dataset: Dataset, job: Job, valid: pd.DataFrame) -> None:
    if valid.empty:
        return
    # Arrow, not the DataFrame: DuckDB then reads pandas' Arrow-backed strings without
    # turning each into a Python object first.
    frame = pa.Table.from_pandas(valid.reset_index(), preserve_index=False)
    con.register("valid_chunk", frame)
    try:
        casts = ", ".join(f'CAST(v."{c}" AS {t})' for c, t in dataset.sql_types.items())
        columns = ", ".join(f'"{c}"' for c in dataset.columns)
        con.execute(
            f'INSERT INTO staging."{dataset.name}" (job_id, line, brand, {columns}) '
            f"SELECT ?, v.line, ?, {casts} FROM valid_chunk v",
            [job.id, job.brand],
        )
    finally:
        con.unregister("valid_chunk")


def _storable(value):
    if isinstance(value, str) and not value.isascii():
        return escape_undecodable(value)
    return value


def _insert_rejects(con: duckdb.DuckDBPyConnection, job: Job, rejects: list[Reject]) -> None:
    if not rejects:
        return
    # Bytes the encoding could not decode may sit in any rejected line (a broken quote,
    # say), as lone surrogates that cannot be stored: show them as \xNN.
    frame = pd.DataFrame([[_storable(getattr(r, c)) for c in REJECT_COLUMNS] for r in rejects], columns=REJECT_COLUMNS)
    frame = frame.astype({"line": "int64"}).astype({c: object for c in REJECT_COLUMNS if c != "line"})
    con.register("reject_chunk", frame)
    try:
        con.execute(
            'INSERT INTO staging.rejected_rows (job_id, line, "column", reason, "check", value, detail, raw) '
            'SELECT ?, line, "column", reason, "check", value, detail, raw FROM reject_chunk',
            [job.id],
        )
    finally:
        con.unregister("reject_chunk")


def _duplicate_keys(con: duckdb.DuckDBPyConnection, dataset: Dataset, job: Job) -> pd.DataFrame:
    """Every staged copy of a key after its first line: line, key_value, first_line."""
    key = ", ".join(f'"{c}"' for c in dataset.key)
    key_text = " || '/' || ".join(f'CAST("{c}" AS VARCHAR)' for c in dataset.key)
    return con.execute(
        f"SELECT line, key_value, first_line FROM ("
        f"  SELECT line, {key_text} AS key_value, min(line) OVER (PARTITION BY {key}) AS first_line,"
        f"         row_number() OVER (PARTITION BY {key} ORDER BY line) AS copy"
        f'  FROM staging."{dataset.name}" WHERE job_id = ?) WHERE copy > 1',
        [job.id],
    ).df()


def _reject_duplicate_keys(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, job: Job, duplicates: pd.DataFrame, raws: dict[int, str]
) -> None:
    """Every copy of a key after its first line is a `duplicate-key` reject, with its line as the file wrote it."""
    if duplicates.empty:
        return
    key = "/".join(dataset.key)
    rejects = [
        Reject(
            int(line),
            "duplicate-key",
            column=key,
            check="unique_key",
            value=value,
            detail=f"{key} {value} already appears on line {first} (the first copy is kept)",
            raw=raws.get(int(line)),
        )
        for line, value, first in duplicates.itertuples(index=False)
    ]
    _insert_rejects(con, job, rejects)
    con.register("duplicate_lines", duplicates[["line"]])
    try:
        con.execute(
            f'DELETE FROM staging."{dataset.name}" WHERE job_id = ? AND line IN (SELECT line FROM duplicate_lines)',
            [job.id],
        )
    finally:
        con.unregister("duplicate_lines")


def _count(con: duckdb.DuckDBPyConnection, sql: str, job_id: str) -> int:
    return con.execute(sql, [job_id]).fetchone()[0]


def drop_job_rows(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> None:
    """Remove everything an earlier (or cancelled) attempt of the job staged or rejected."""

    def work(c: duckdb.DuckDBPyConnection) -> None:
        c.execute(f'DELETE FROM staging."{dataset.name}" WHERE job_id = ?', [job.id])
        c.execute("DELETE FROM staging.rejected_rows WHERE job_id = ?", [job.id])

    lake.write(con, work)


def stage_file(
    con: duckdb.DuckDBPyConnection,
    job: Job,
    dataset: Dataset,
    path: Path,
    chunk_rows: int,
    on_progress: ProgressFn | None = None,
    remembered: Callable[[list[str]], dict[str, str] | None] | None = None,
) -> StageCounts:
    """Validate the job's file and write its valid and rejected rows to the lake.

    Each chunk is written in its own short transaction, so memory stays flat
    however long the file (one transaction holding every chunk grows with the
    file). The rows are tagged with the job and nobody treats them as staged
    until the registry says so, which the caller does once this returns: a
    crash or cancel midway leaves rows that the next attempt (or
    ``drop_job_rows``) removes first. Raises FileRefused when nothing in the
    file can be read.
    """
    lake.ensure_tables(con, dataset)
    options = dict(job.options or {})
    source = open_source(path, dataset, job.file_name, options, job.mapping, remembered)
    drop_job_rows(con, job, dataset)
    total = valid = 0
    for chunk in read_chunks(path, dataset, chunk_rows, source, sheet=options.get("sheet")):
        checked = validate_chunk(dataset, chunk.frame, chunk.raws)

        def write_chunk(c: duckdb.DuckDBPyConnection, chunk=chunk, checked=checked) -> None:
            _insert_valid(c, dataset, job, checked.valid)
            _insert_rejects(c, job, chunk.rejects + checked.rejects)

        lake.write(con, write_chunk)
        total += len(chunk.frame) + len({r.line for r in chunk.rejects})
        valid += len(checked.valid)
        if on_progress:
            on_progress(
                {
                    "phase": "validating",
                    "rows_read": total,
                    "rows_valid": valid,
                    "rows_rejected": total - valid,
                    "bytes_read": chunk.bytes_read,
                }
            )

    # Duplicates are found once every chunk is staged; their lines are read again from the file,
    # outside the transaction, so that the rejected copy keeps its text as written ("6.90", not 6.9).
    duplicates = _duplicate_keys(con, dataset, job)
    raws = raw_lines(path, source, set(duplicates["line"]), sheet=options.get("sheet")) if len(duplicates) else {}

    def finish(c: duckdb.DuckDBPyConnection) -> StageCounts:
        _reject_duplicate_keys(c, dataset, job, duplicates, raws)
        staged = _count(c, f'SELECT count(*) FROM staging."{dataset.name}" WHERE job_id = ?', job.id)
        rejected = _count(c, "SELECT count(DISTINCT line) FROM staging.rejected_rows WHERE job_id = ?", job.id)
        if staged + rejected != total:
            raise AssertionError(f"row accounting broke for job {job.id}: {staged} + {rejected} != {total}")
        return StageCounts(total, staged, rejected, describe(source), source.match.mapping)

    return lake.write(con, finish)
