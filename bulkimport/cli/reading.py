"""How a file is read: the reading options as the library takes them, and `bulkimport preview`."""

from __future__ import annotations

import json
import sys

from bulkimport.cli.output import _who
from bulkimport.errors import BulkImportError


def _options(args) -> dict:
    return {
        "delimiter": args.delimiter,
        "quote": args.quote,
        "escape": args.escape,
        "header_row": args.header_row,
        "encoding": args.encoding,
        "sheet": args.sheet,
        "skip_initial_space": args.skip_initial_space or None,
        "header_split": "none" if args.no_header_split else None,
        "no_header": args.no_header or bool(args.columns) or None,
        "columns": [c.strip() for c in args.columns.split(",")] if args.columns else None,
    }


def _mapping(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        name, sep, column = pair.rpartition("=")
        if not sep or not name or not column:
            raise BulkImportError(f"--map expects 'FILE COLUMN=dataset_column', got {pair!r}")
        mapping[name.strip()] = column.strip()
    return mapping


def cmd_preview(args) -> int:
    from bulkimport import workflow

    user = _who() if args.brand else None
    upload = workflow.store_upload(args.file)
    try:
        found = workflow.preview(upload, args.dataset, _options(args), _mapping(args.map), brand=args.brand, user=user)
    finally:
        workflow.discard_upload(upload)
    if args.json:
        print(
            json.dumps(
                {
                    "dialect": found.dialect,
                    "mapping": found.mapping,
                    "suggestions": found.suggestions,
                    "missing": found.missing,
                    "ignored": found.ignored,
                    "remembered": found.remembered,
                    "notes": found.notes,
                    "readings": found.readings,
                    "headerless": found.headerless,
                }
            )
        )
        return 0 if not found.missing else 2
    d = found.dialect
    if d.get("kind") == "xlsx":
        print(f"file: Excel workbook, header on row {d['header_line']}")
    else:
        header = f"header on line {d['header_line']}" if d.get("header_line") else "no header line"
        spaces = ", spaces after a delimiter skipped" if d.get("skip_initial_space") else ""
        print(
            f"file: {d['encoding']}, delimiter {d['delimiter']!r}, quote {d['quote'] or 'none'!r}, "
            f"escape {d['escape']!r}{spaces}, {header}"
        )
    for note in found.notes:
        print(f"note: {note}")
    if len(found.readings) > 1:
        print("readings weighed:")
        for reading in found.readings:
            mark = "*" if reading["chosen"] else " "
            print(f"  {mark} {reading['reading']}: {reading['why']}")
    if found.headerless:
        print(
            "the first line looks like data, not a header: its values pass the dataset's checks in column order. "
            "If the file has no header line, use --no-header (columns in dataset order) or --columns a,b,...",
            file=sys.stderr,
        )
    remembered = f" (the mapping brand {args.brand} chose last time for this header)" if found.remembered else ""
    print(f"columns{remembered}:")
    for name in found.header:
        target = found.mapping.get(name)
        hint = (
            f"   (did you mean {found.suggestions[name]}? --map '{name}={found.suggestions[name]}')"
            if name in found.suggestions
            else ""
        )
        print(f"  {name!r:30} -> {target or 'ignored'}{hint}")
    if found.missing:
        print(f"missing required column(s): {', '.join(found.missing)}", file=sys.stderr)
        return 2
    if found.remembered:
        pairs = " ".join(f"--map '{h}={c}'" for h, c in found.mapping.items())
        print(f"submit applies it only when given: {pairs}")
    print(found.sample.head(5).to_string(index=False))
    return 0
