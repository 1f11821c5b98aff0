"""The compiled checks over the fast path's rows, in SQL (and pandera for checks with no SQL form)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from bulkimport.datasets import Dataset
from bulkimport.sql import ident
from bulkimport.stages.compile import CompiledDataset, text_column, trimmed
from bulkimport.stages.compile import typed_column as typed_name
from bulkimport.stages.fast.load import FastRead
from bulkimport.stages.fast.scan import NotFast
from bulkimport.stages.read import Record, Source

PYTHON_CHECK_BATCH = 200_000


def _trim_when(cell: str, padded: str) -> str:
    """A cell trimmed as the careful reader trims it: only where the scan saw whitespace at an edge."""
    return f"CASE WHEN {padded} THEN {trimmed(cell)} ELSE {cell} END"


def check_rows(con: duckdb.DuckDBPyConnection, read: FastRead, compiled: CompiledDataset, source: Source) -> str:
    """Run the compiled checks over DuckDB's rows and the quoted rows: a temporary table of line, typed values,
    ``ok`` (stage it) and ``judged`` (a row the checks looked at). NotFast if a row and its line disagree."""
    dataset = compiled.dataset
    header = source.match.header
    position = {column: header.index(name) for name, column in source.match.mapping.items()}
    width = read.width
    tag = read.cells_table.removeprefix("fast_cells_")
    lines, quoted, checked = f"fast_lines_{tag}", f"fast_quoted_{tag}", f"fast_checked_{tag}"

    def texts(prefix: str, padded: str) -> str:
        cells = [_trim_when(f"{prefix}c{i}", padded) for i in range(width)]
        by_column = [
            f"{cells[position[c]] if c in position else 'NULL::VARCHAR'} AS {text_column(c)}" for c in dataset.columns
        ]
        blank = " AND ".join(f"({cell}) IS NULL" for cell in cells)
        return ", ".join([*by_column, f"{blank} AS blank"])

    lengths = " + ".join(f"coalesce(strlen(c.c{i}), 0)" for i in range(read.columns))
    typed = ", ".join(f"{compiled.columns[c].typed} AS {typed_name(c)}" for c in dataset.columns)
    ok = " AND ".join(f"({compiled.columns[c].ok})" for c in dataset.columns)
    con.register(lines, read.line_map)
    con.register(quoted, read.quoted)
    try:
        con.execute(
            f"CREATE TEMP TABLE {checked} AS SELECT line, aligned, judged, "
            f"{', '.join(typed_name(c) for c in dataset.columns)}, judged AND NOT blank AND {ok} AS ok "
            f"FROM (SELECT *, {typed} FROM ("
            f"SELECT m.line, {lengths} = m.text_bytes AS aligned, m.keep AS judged, "
            f"{texts('c.', 'm.padded')} FROM {read.cells_table} c POSITIONAL JOIN {lines} m "
            f"UNION ALL SELECT line, true, true, {texts('', 'true')} FROM {quoted}))"
        )
    finally:
        con.unregister(lines)
        con.unregister(quoted)
        con.execute(f"DROP TABLE IF EXISTS {read.cells_table}")
    misaligned = con.execute(f"SELECT count(*) FILTER (WHERE NOT aligned OR line IS NULL) FROM {checked}").fetchone()
    if misaligned[0]:
        con.execute(f"DROP TABLE {checked}")
        raise NotFast(f"{misaligned[0]} of DuckDB's rows did not match their line")
    for python_check in compiled.python_checks:
        _run_python_check(con, checked, python_check)
    return checked


def _run_python_check(con: duckdb.DuckDBPyConnection, checked: str, python_check) -> None:
    """A check with no SQL form, run by pandera on batches of the values the SQL accepted."""
    column = typed_name(python_check.column)
    failing: list[int] = []
    result = con.execute(f"SELECT line, {column} AS value FROM {checked} WHERE ok AND {column} IS NOT NULL")
    for batch in result.to_arrow_reader(PYTHON_CHECK_BATCH):
        frame = batch.to_pandas()
        values = frame["value"].astype(python_check.dtype)
        passed = python_check.check(values).check_output
        failing.extend(frame["line"][~passed.to_numpy(dtype=bool)].tolist())
    if failing:
        con.register("fast_failing", pa.table({"line": pa.array(failing, type=pa.int64())}))
        try:
            con.execute(f"UPDATE {checked} SET ok = false WHERE line IN (SELECT line FROM fast_failing)")
        finally:
            con.unregister("fast_failing")


def insert_checked(con: duckdb.DuckDBPyConnection, checked: str, dataset: Dataset, job_id: str, brand: str) -> None:
    """Write the rows the checks accepted to the job's staging table (inside the caller's transaction)."""
    casts = ", ".join(f"CAST({typed_name(c)} AS {t})" for c, t in dataset.sql_types.items())
    columns = ", ".join(ident(c) for c in dataset.columns)
    con.execute(
        f"INSERT INTO staging.{ident(dataset.name)} (job_id, line, brand, {columns}) "
        f"SELECT ?, line, ?, {casts} FROM {checked} WHERE ok",
        [job_id, brand],
    )


def rejected_by_checks(con: duckdb.DuckDBPyConnection, checked: str, read: FastRead) -> list[Record]:
    """The rows the checks did not accept, as records for the careful path to judge."""
    lines = np.array(
        [r[0] for r in con.execute(f"SELECT line FROM {checked} WHERE judged AND NOT ok").fetchall()], dtype=np.int64
    )
    records = [read.quoted_records[line] for line in lines.tolist() if line in read.quoted_records]
    plain = lines[~np.isin(lines, np.array(list(read.quoted_records), dtype=np.int64))] - read.scan.first_line
    for i, text in zip(plain.tolist(), read.scan.texts(plain), strict=True):
        records.append(read.scan.record(i, text.split(read.dialect.delimiter), text))
    return records
