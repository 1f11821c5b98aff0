"""Options many commands share, declared once as argparse parent parsers (``parents=[...]``)."""

from __future__ import annotations

import argparse

_NAMED_CHARACTERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def _character(value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() == "none":  # --quote none: the file quotes nothing; --escape none: quotes are doubled
        return "none"
    value = _NAMED_CHARACTERS.get(value.lower(), value)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(
            f"expected one character (or tab, comma, semicolon, pipe, space, none), got {value!r}"
        )
    return value


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def identity() -> argparse.ArgumentParser:
    """On every command: ``--as``, the old way of naming who acts, parsed so that main() can refuse it."""
    p = _parent()
    p.add_argument("--as", dest="claimed_user", help=argparse.SUPPRESS)
    return p


def json_output() -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--json", action="store_true")
    return p


def waiting(until: str) -> argparse.ArgumentParser:
    """``--wait`` (until the job is ``until``) and ``--timeout``."""
    p = _parent()
    p.add_argument("--wait", action="store_true", help=f"wait until {until}")
    p.add_argument("--timeout", type=float, default=3600, help="give up waiting after this many seconds (default 3600)")
    return p


def reading() -> argparse.ArgumentParser:
    """How to read a file, for `preview` and `submit`."""
    p = _parent()
    g = p.add_argument_group("reading (detected unless given)")
    g.add_argument("--delimiter", type=_character, help="one character, or tab / comma / semicolon / pipe")
    g.add_argument("--quote", type=_character, help="quote character; none: the file quotes nothing")
    g.add_argument("--escape", type=_character, help="escape character; none: doubled quotes (the default)")
    g.add_argument("--header-row", type=int, help="line number of the header (lines before it are skipped)")
    g.add_argument("--encoding", help="utf-8, utf-8-sig, utf-16-le, utf-16-be, cp1252, latin-1, ...")
    g.add_argument("--sheet", help="sheet of an .xlsx workbook (default: the first)")
    g.add_argument(
        "--skip-initial-space", action="store_true", help="spaces after a delimiter are not part of the cell"
    )
    g.add_argument(
        "--no-header-split",
        action="store_true",
        help="read the header as written, even where a cell seems to have lost a delimiter",
    )
    g.add_argument(
        "--no-header", action="store_true", help="the file has no header line: columns in the dataset's order"
    )
    g.add_argument("--columns", metavar="a,b,...", help="no header line: the file's columns, in order")
    g.add_argument(
        "--map",
        action="append",
        metavar="'FILE COLUMN=column'",
        help="map a file column to a dataset column (repeatable); overrides header matching",
    )
    return p
