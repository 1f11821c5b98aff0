"""Stage a job: every row of its file ends up staged or rejected, in one transaction."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from bulkimport import lake
from bulkimport.config import settings
from bulkimport.datasets import Dataset
from bulkimport.registry import Job
from bulkimport.sql import ident, literal
from bulkimport.stages import fast
from bulkimport.stages.compile import compile_dataset
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
        casts = ", ".join(f"CAST(v.{ident(c)} AS {t})" for c, t in dataset.sql_types.items())
        columns = ", ".join(ident(c) for c in dataset.columns)
        con.execute(
            f"INSERT INTO staging.{ident(dataset.name)} (job_id, line, brand, {columns}) "
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


def _reject_duplicate_keys(con: duckdb.DuckDBPyConnection, dataset: Dataset, job: Job) -> None:
    """Every copy of a key after its first line is a `duplicate-key` reject."""
    key = ", ".join(ident(c) for c in dataset.key)
    key_text = " || '/' || ".join(f"CAST({ident(c)} AS VARCHAR)" for c in dataset.key)
    table = f"staging.{ident(dataset.name)}"
    repeated = f"SELECT 1 FROM {table} WHERE job_id = ? GROUP BY {key} HAVING count(*) > 1 LIMIT 1"
    if con.execute(repeated, [job.id]).fetchone() is None:
        return  # the usual case, found with one aggregation instead of two windows over every row
    # The row as staged, for the "fix and re-upload" download (its raw line is not kept).
    cells = "CAST(json_object(" + ", ".join(f"{literal(c)}, {ident(c)}" for c in dataset.columns) + ") AS VARCHAR)"
    duplicates = (
        f"SELECT line, {key_text} AS key_value, first_line, cells FROM ("
        f"  SELECT line, {key}, min(line) OVER (PARTITION BY {key}) AS first_line, {cells} AS cells,"
        f"         row_number() OVER (PARTITION BY {key} ORDER BY line) AS copy"
        f"  FROM {table} WHERE job_id = ?) WHERE copy > 1"
    )
    con.execute(
        'INSERT INTO staging.rejected_rows (job_id, line, "column", reason, "check", value, detail, raw) '
        f"SELECT ?, line, ?, 'duplicate-key', 'unique_key', key_value, "
        f"'{'/'.join(dataset.key)} ' || key_value || ' already appears on line ' || first_line "
        f"|| ' (the first copy is kept)', cells FROM ({duplicates})",
        [job.id, "/".join(dataset.key), job.id],
    )
    con.execute(
        f"DELETE FROM {table} WHERE job_id = ? AND line IN (SELECT line FROM staging.rejected_rows "
        "WHERE job_id = ? AND reason = 'duplicate-key')",
        [job.id, job.id],
    )


def _duplicates_as_written(
    con: duckdb.DuckDBPyConnection, job: Job, raw_of: Callable[[set[int]], dict[int, str]]
) -> None:
    """Give each duplicate-key reject its line as the file wrote it ("6.90", not the staged 6.9).

    Duplicates are found once every row is staged, and their lines are read again from the
    file outside the staging transaction; until then a reject holds the row as staged.
    """
    found = "SELECT line FROM staging.rejected_rows WHERE job_id = ? AND reason = 'duplicate-key'"
    lines = {line for (line,) in con.execute(found, [job.id]).fetchall()}
    if not lines:
        return
    raws = raw_of(lines)
    frame = pd.DataFrame({"line": list(raws), "raw": [_storable(raw) for raw in raws.values()]}, dtype=object)
    frame = frame.astype({"line": "int64"})

    def update(c: duckdb.DuckDBPyConnection) -> None:
        c.register("duplicate_raws", frame)
        try:
            c.execute(
                "UPDATE staging.rejected_rows r SET raw = d.raw FROM duplicate_raws d "
                "WHERE r.job_id = ? AND r.reason = 'duplicate-key' AND r.line = d.line",
                [job.id],
            )
        finally:
            c.unregister("duplicate_raws")

    lake.write(con, update)


def _count(con: duckdb.DuckDBPyConnection, sql: str, job_id: str) -> int:
    return con.execute(sql, [job_id]).fetchone()[0]


def _drop_rows(c: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> None:
    c.execute(f"DELETE FROM staging.{ident(dataset.name)} WHERE job_id = ?", [job.id])
    c.execute("DELETE FROM staging.rejected_rows WHERE job_id = ?", [job.id])


def drop_job_rows(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset) -> None:
    """Remove everything an earlier (or cancelled) attempt of the job staged or rejected."""
    lake.write(con, lambda c: _drop_rows(c, job, dataset))


def _write_chunk(c: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, chunk, checked) -> None:
    _insert_valid(c, dataset, job, checked.valid)
    _insert_rejects(c, job, chunk.rejects + checked.rejects)


def _counted(chunk) -> int:
    return len(chunk.frame) + len({r.line for r in chunk.rejects})


def _stage_chunks(con: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, chunks, on_progress, counted=(0, 0)):
    """Validate chunks of text cells with pandera and write each in its own short transaction."""
    total, valid = counted
    for chunk in chunks:
        checked = validate_chunk(dataset, chunk.frame, chunk.raws)
        lake.write(con, lambda c, chunk=chunk, checked=checked: _write_chunk(c, job, dataset, chunk, checked))
        total += _counted(chunk)
        valid += len(checked.valid)
        _report(on_progress, total, valid, chunk.bytes_read)
    return total, valid


def _report(on_progress: ProgressFn | None, total: int, valid: int, bytes_read: int) -> None:
    if on_progress:
        on_progress(
            {
                "phase": "validating",
                "rows_read": total,
                "rows_valid": valid,
                "rows_rejected": total - valid,
                "bytes_read": bytes_read,
            }
        )


def _finish(c: duckdb.DuckDBPyConnection, job: Job, dataset: Dataset, total: int, found: dict, source: Source):
    """Reject duplicate keys and check that every record is staged or rejected, once."""
    _reject_duplicate_keys(c, dataset, job)
    staged = _count(c, f"SELECT count(*) FROM staging.{ident(dataset.name)} WHERE job_id = ?", job.id)
    rejected = _count(c, "SELECT count(DISTINCT line) FROM staging.rejected_rows WHERE job_id = ?", job.id)
    if staged + rejected != total:
        raise AssertionError(f"row accounting broke for job {job.id}: {staged} + {rejected} != {total}")
    return StageCounts(total, staged, rejected, found, source.match.mapping)


def _stage_fast(
    con: duckdb.DuckDBPyConnection,
    job: Job,
    dataset: Dataset,
    path: Path,
    source: Source,
    chunk_rows: int,
    on_progress: ProgressFn | None,
    found: dict,
) -> StageCounts:
    """Stage the rows the compiled checks accept in one statement; the careful path judges the rest.

    When what the careful path judges fits one chunk (the usual case), the whole job is written in
    one transaction. NotFast (nothing written) when the file must go the careful way.
    """
    compiled = compile_dataset(dataset)
    read = fast.read_fast(con, path, source, compiled)
    checked = None
    try:
        checked = fast.check_rows(con, read, compiled, source)
        staged = con.execute(f"SELECT count(*) FROM {checked} WHERE ok").fetchone()[0]
        routed = sorted(read.careful + fast.rejected_by_checks(con, checked, read), key=lambda r: r.line)
        done = read.records_total - len(routed)
        _report(on_progress, done, staged, job.file_bytes)
        chunks = read_chunks(path, dataset, chunk_rows, source, items=routed)
        first = next(chunks, None)
        first_checked = validate_chunk(dataset, first.frame, first.raws) if first else None
        more = next(chunks, None)
        found["path"] = "fast"

        def write(c: duckdb.DuckDBPyConnection) -> StageCounts | None:
            _drop_rows(c, job, dataset)
            fast.insert_checked(c, checked, dataset, job.id, job.brand)
            if first:
                _write_chunk(c, job, dataset, first, first_checked)
            return None if more else _finish(c, job, dataset, read.records_total, found, source)

        counts = lake.write(con, write)
        if checked:
            con.execute(f"DROP TABLE IF EXISTS {checked}")
            checked = None
        if counts is None:
            counted = (done + _counted(first), staged + len(first_checked.valid))
            _stage_chunks(con, job, dataset, itertools.chain([more], chunks), on_progress, counted)
            counts = lake.write(con, lambda c: _finish(c, job, dataset, read.records_total, found, source))
        _duplicates_as_written(con, job, read.raw_lines)  # the scan knows every line: no second read
        return counts
    finally:
        if checked:
            con.execute(f"DROP TABLE IF EXISTS {checked}")
        read.close(con)


def stage_file(
    con: duckdb.DuckDBPyConnection,
    job: Job,
    dataset: Dataset,
    path: Path,
    chunk_rows: int,
    on_progress: ProgressFn | None = None,
    remembered: Callable[[list[str]], dict[str, str] | None] | None = None,
    fast_path: bool | None = None,
) -> StageCounts:
    """Validate the job's file and write its valid and rejected rows to the lake.

    The fast path (bulkimport.stages.fast) stages what it can prove it reads and
    checks exactly as the careful path does and hands the careful path the rest;
    a file it cannot take at all is read the careful way, and the job's dialect
    notes say why (``path``, ``careful_because``). ``fast_path`` defaults to the
    BULKIMPORT_FAST_PATH setting.

    The careful path validates chunk by chunk, each written in its own short
    transaction, so memory stays flat however long the file. The rows are tagged
    with the job and nobody treats them as staged until the registry says so,
    which the caller does once this returns: a crash or cancel midway leaves rows
    that the next attempt (or ``drop_job_rows``) removes first. Raises
    FileRefused when nothing in the file can be read.
    """
    lake.ensure_tables(con, dataset)
    options = dict(job.options or {})
    source = open_source(path, dataset, job.file_name, options, job.mapping, remembered)
    found = describe(source)
    counts = None
    if settings().fast_path if fast_path is None else fast_path:
        try:
            counts = _stage_fast(con, job, dataset, path, source, chunk_rows, on_progress, found)
        except fast.NotFast as exc:
            found.update(path="careful", careful_because=str(exc))
    if counts is not None:
        return counts
    drop_job_rows(con, job, dataset)
    chunks = read_chunks(path, dataset, chunk_rows, source, sheet=options.get("sheet"))
    total, _ = _stage_chunks(con, job, dataset, chunks, on_progress)
    counts = lake.write(con, lambda c: _finish(c, job, dataset, total, found, source))
    _duplicates_as_written(con, job, lambda lines: raw_lines(path, source, lines, options.get("sheet")))
    return counts
