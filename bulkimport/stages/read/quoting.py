"""Quote characters where a file that quotes its fields cannot have them: the mark of a damaged row.

Python's csv module keeps a quote character that sits inside an unquoted cell as
a plain character. In a file that quotes its fields such a quote means damage: a
delimiter lost just before a quoted value (`...,Large kettle"Holds 1,5 litres",...`)
leaves the quoted text split at its own delimiter, and when it held exactly one, the
row even has the right number of cells. Such a row is rejected as `stray-quote`.
A file that writes inch marks unquoted is read with no quote character instead
(quote ``""``, `--quote none`), where every quote is part of its cell.
"""

from __future__ import annotations

import functools
import re

from bulkimport.stages.read.dialect import Dialect


@functools.lru_cache(maxsize=64)
def _field(
    delimiter: str, quote: str, escape: str | None, doublequote: bool, skip_space: bool, also: str
) -> re.Pattern:
    """One well-formed cell at the start of a field: quoted, or plain with no quote character in it."""
    d, q, a = re.escape(delimiter), re.escape(quote), re.escape(also)
    e = re.escape(escape) if escape else ""
    escaped = [f"{e}(?s:.)?"] if escape else []  # the escape character keeps whatever follows it
    quoted = "|".join([f"[^{q}{e}]", *([f"{q}{q}"] if doublequote else []), *escaped])
    plain = "|".join([f"[^{d}{q}{e}{a}\\r\\n]", *escaped])
    spaces = " *+" if skip_space else ""
    return re.compile(f"{spaces}(?:{q}(?:{quoted})*+{q}|(?:{plain})*+)")


def stray_quote(raw: str, dialect: Dialect, also: str = "", cells: list[str] | None = None) -> int | None:
    """The index of the first cell of ``raw`` (one record, as the file wrote it) whose quote
    character is not where quoting puts one; None when every quote opens, closes or is
    escaped inside a quoted cell. Characters in ``also`` count as stray too in unquoted cells.

    ``cells``, the record as csv.reader split it, saves the scan when no value holds a quote:
    with doubled quotes a stray quote stays in its cell, and csv.reader (strict) refuses text
    after a closing quote. (With an escape character it does not: `"a"b` reads as `ab`.)
    """
    if not dialect.quote or not any(c in raw for c in dialect.quote + also):
        return None
    if cells is not None and dialect.escape is None and not also and not any(dialect.quote in c for c in cells):
        return None
    d = dialect
    field = _field(d.delimiter, d.quote, d.escape, d.escape is None, d.skip_initial_space, also.replace(d.quote, ""))
    position, cell = 0, 0
    while True:
        end = field.match(raw, position).end()
        if end == len(raw):
            return None
        if raw[end] != dialect.delimiter:
            return cell
        position, cell = end + 1, cell + 1
