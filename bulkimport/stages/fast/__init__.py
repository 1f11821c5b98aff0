"""The staging fast path: DuckDB parses the file and compiled checks split its rows, in a few statements.

Rows stay out of Python. What Python still does is cheap and exact: it scans the
file's bytes with numpy (where lines start, which hold a quote or escape
character, which are empty), and it hands every line the fast path cannot prove
it reads exactly as the careful reader does to the careful reader itself:

- DuckDB reads every line with quoting switched off, so each record is exactly
  one line and its cells are the line split on the delimiter, as the careful
  reader splits a line that holds no quote, escape or NUL character. Its rows
  are matched to line numbers by position (the empty lines and the lines DuckDB
  rejects are known), and the counts must add up, or the file goes the careful way.
- Lines that hold a quote or escape character are parsed by Python's csv module
  with the careful reader's settings, a line at a time; a line that is not a
  whole record by itself (a quoted value spanning lines, a broken quote) starts
  a stretch that the careful reader reads from that line on.
- The compiled checks (bulkimport.stages.compile) stage a row only when pandera
  would stage it with the same values. Every other row, and every line DuckDB
  rejected, is judged by the careful path (read_chunks and validate_chunk), so
  rejects, reasons and raw text are the careful path's own.

A file the fast path cannot take at all raises NotFast with the reason, before
anything is written; bulkimport.stages.stage then reads it the careful way.

The modules, in the order a file meets them: scan.py (can the fast path take the file, where are its
lines), load.py (DuckDB's cells, the quoted lines, what goes the careful way) and checks.py (the compiled
checks, staging what passes).
"""

from __future__ import annotations

from bulkimport.stages.fast.checks import check_rows, insert_checked, rejected_by_checks
from bulkimport.stages.fast.load import FastRead, read_fast
from bulkimport.stages.fast.scan import LineScan, NotFast

__all__ = ["FastRead", "LineScan", "NotFast", "check_rows", "insert_checked", "read_fast", "rejected_by_checks"]
