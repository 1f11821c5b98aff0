"""SQL text said once: identifiers, literals and the lake's current snapshot.

Lazy DuckDB relations are built from SQL text, not parameters: a relation made with ``params=``
runs at once and keeps its whole result, so a later ``.limit()`` saves nothing. Names and values
from users and files reach that text only through ``ident`` and ``literal``.
"""

from __future__ import annotations

from typing import Any

import duckdb


def _no_nul(text: str, what: str) -> str:
    # DuckDB's parser stops at a NUL: the rest of the statement would be cut off, not quoted.
    if "\x00" in text:
        raise ValueError(f"a SQL {what} cannot contain a NUL character: {text!r}")
    return text


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier: any text (quotes, spaces, unicode) but NUL."""
    return '"' + _no_nul(name, "name").replace('"', '""') + '"'


def idents(names) -> str:
    """Quoted identifiers, comma-separated."""
    return ", ".join(ident(n) for n in names)


def literal(value: Any) -> str:
    """``value`` (text, number, date, None...) as a SQL literal, as DuckDB itself writes it."""
    if isinstance(value, str):
        _no_nul(value, "value")
    return str(duckdb.ConstantExpression(value))


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """The lake's latest snapshot id (the catalog is attached as ``lake``)."""
    return int(con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')").fetchone()[0])
