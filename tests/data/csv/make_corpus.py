"""Write the reading corpus: one file per case, and cases.json with each case's expected outcome.

    .venv/bin/python tests/data/csv/make_corpus.py [OUT_DIR]      (default: this folder)

Deterministic: running it again reproduces the committed files byte for byte
(tests/test_corpus.py checks that), so edit this script, not the files.

Every case in cases.json has:
  file        the file to stage (several cases may share one)
  about       what the case is for
  options     the job's options: dialect overrides (escape, quote, encoding, header_row, ...) or sheet
  max_line_chars   (optional) the line size limit to run with, instead of the real 1,000,000
  refused     true when the whole file must be refused; then `error` lists substrings of the message
  rows        records in the file after the header (a quoted value spanning lines is one record)
  dialect     (optional) what must be recorded as detected: a subset of the job's `dialect`
  mapping     (optional) the expected file column -> dataset column mapping
  staged      every staged row: line and values as stored (price with 2 decimals, ISO dates)
  rejected    every rejected line: line, reason, column, and optionally value, raw, detail (a substring)
  fixing      (optional) rows of `review.rejected_for_fixing`: the given columns, exactly
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import random
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ["sku", "name", "price", "currency", "stock", "ean", "launch_date"]
EAN1, EAN2 = "4006381333931", "5901234123457"

CASES: list[dict] = []
FILES: dict[str, bytes] = {}


def add(
    name: str,
    file: str,
    data: bytes | None,
    about: str,
    rows: int | None = None,
    staged=(),
    rejected=(),
    options: dict | None = None,
    refused: bool = False,
    error=(),
    **extra,
) -> None:
    """Register a case (and its file, unless `data` is None: the case reuses a file)."""
    assert not any(c["case"] == name for c in CASES), name
    if data is not None:
        assert file not in FILES, file
        FILES[file] = data
    case = {"case": name, "file": file, "about": about, "options": options or {}, "refused": refused}
    if refused:
        case["error"] = list(error)
    else:
        case.update(rows=rows, staged=list(staged), rejected=list(rejected))
    case.update(extra)
    CASES.append(case)


def row(
    line: int,
    sku: str,
    name: str,
    price: str,
    currency: str = "EUR",
    stock: int = 1,
    ean: str | None = None,
    launch_date: str | None = None,
) -> dict:
    """A staged row as the lake holds it."""
    return {
        "line": line,
        "sku": sku,
        "name": name,
        "price": price,
        "currency": currency,
        "stock": stock,
        "ean": ean,
        "launch_date": launch_date,
    }


def rej(line: int, reason: str, column: str | None = None, **more) -> dict:
    return {"line": line, "reason": reason, "column": column, **more}


def text(lines: list[str], newline: str = "\n") -> str:
    return "".join(line + newline for line in lines)


def cells(*values: str, d: str = ",") -> str:
    return d.join(values)


# Three well-formed products, as lines and as staged rows.
P1 = ["ACME-1001", "Espresso cup", "4.50", "EUR", "120", EAN1, "2024-03-01"]
P2 = ["ACME-1002", "Latte glass", "6.90", "EUR", "80", "", ""]
P3 = ["ACME-1003", "Milk jug 350 ml", "12.00", "EUR", "35", EAN2, "2023-11-15"]


def s1(line: int) -> dict:
    return row(line, "ACME-1001", "Espresso cup", "4.50", "EUR", 120, EAN1, "2024-03-01")


def s2(line: int) -> dict:
    return row(line, "ACME-1002", "Latte glass", "6.90", "EUR", 80)


def s3(line: int) -> dict:
    return row(line, "ACME-1003", "Milk jug 350 ml", "12.00", "EUR", 35, EAN2, "2023-11-15")


def plain(d: str = ",", newline: str = "\n") -> str:
    return text([cells(*COLUMNS, d=d), cells(*P1, d=d), cells(*P2, d=d), cells(*P3, d=d)], newline)


def lines_of(*rows: list[str], d: str = ",") -> list[str]:
    return [cells(*r, d=d) for r in rows]


# ---------------------------------------------------------------- dialects


def dialect_cases() -> None:
    for name, file, d in (
        ("delimiter_comma", "delimiter_comma.csv", ","),
        ("delimiter_semicolon", "delimiter_semicolon.csv", ";"),
        ("delimiter_tab", "delimiter_tab.tsv", "\t"),
        ("delimiter_pipe", "delimiter_pipe.csv", "|"),
    ):
        add(
            name,
            file,
            plain(d).encode(),
            f"delimiter {d!r} is detected",
            rows=3,
            staged=[s1(2), s2(3), s3(4)],
            dialect={"delimiter": d, "header_line": 1},
        )

    data = text(
        [
            cells(*COLUMNS),
            "ACME-1001,Plate; round; 20 cm,4.50,EUR,1,,",
            "ACME-1002,Bowl | large,6.90,EUR,2,,",
            "ACME-1003,Jug\twith lid,12.00,EUR,3,,",
        ]
    )
    add(
        "delimiter_ambiguous",
        "delimiter_ambiguous.csv",
        data.encode(),
        "comma file whose values are full of ; | and tabs: the header decides the delimiter",
        rows=3,
        staged=[
            row(2, "ACME-1001", "Plate; round; 20 cm", "4.50"),
            row(3, "ACME-1002", "Bowl | large", "6.90", stock=2),
            row(4, "ACME-1003", "Jug\twith lid", "12.00", stock=3),
        ],
        dialect={"delimiter": ","},
    )

    data = text(
        [
            cells(*COLUMNS),
            'ACME-1001,"Mug ""Classic"", 300 ml",4.50,EUR,1,,',
            'ACME-1002,"Say ""hi""",6.90,EUR,2,,',
            'ACME-1003,"""",1.00,EUR,3,,',
            'ACME-1004,"Plain, quoted",2.00,EUR,4,,',
        ]
    )
    add(
        "quote_doubled",
        "quote_doubled.csv",
        data.encode(),
        "quotes inside quoted values are doubled",
        rows=4,
        staged=[
            row(2, "ACME-1001", 'Mug "Classic", 300 ml', "4.50"),
            row(3, "ACME-1002", 'Say "hi"', "6.90", stock=2),
            row(4, "ACME-1003", '"', "1.00", stock=3),
            row(5, "ACME-1004", "Plain, quoted", "2.00", stock=4),
        ],
    )

    data = text(
        [
            '"sku","name","price","currency","stock","ean","launch_date"',
            '"ACME-1001","Espresso cup","4.50","EUR","120","4006381333931","2024-03-01"',
            '"ACME-1002","Latte glass","6.90","EUR","80","",""',
        ]
    )
    add(
        "quote_all", "quote_all.csv", data.encode(), "every cell quoted, header included", rows=2, staged=[s1(2), s2(3)]
    )

    data = text(
        [
            cells(*COLUMNS),
            'ACME-1001,"Mug \\"Classic\\", 300 ml",4.50,EUR,1,,',
            'ACME-1002,"Back\\\\slash",6.90,EUR,2,,',
            "ACME-1003,Plain,12.00,EUR,3,,",
        ]
    )
    add(
        "escape_backslash",
        "escape_backslash.csv",
        data.encode(),
        "quotes escaped with a backslash, escape set by the user (--escape)",
        rows=3,
        options={"escape": "\\"},
        staged=[
            row(2, "ACME-1001", 'Mug "Classic", 300 ml', "4.50"),
            row(3, "ACME-1002", "Back\\slash", "6.90", stock=2),
            row(4, "ACME-1003", "Plain", "12.00", stock=3),
        ],
        dialect={"escape": "\\"},
    )

    data = text(
        [
            cells(*COLUMNS),
            "ACME-1001,'Mug, large',4.50,EUR,1,,",
            "ACME-1002,'It''s a jug',6.90,EUR,2,,",
        ]
    )
    add(
        "quote_single",
        "quote_single.csv",
        data.encode(),
        "single quotes as the quote character (--quote)",
        rows=2,
        options={"quote": "'"},
        staged=[row(2, "ACME-1001", "Mug, large", "4.50"), row(3, "ACME-1002", "It's a jug", "6.90", stock=2)],
    )

    add(
        "line_endings_crlf",
        "line_endings_crlf.csv",
        plain(",", "\r\n").encode(),
        "Windows line endings",
        rows=3,
        staged=[s1(2), s2(3), s3(4)],
    )
    add(
        "line_endings_cr",
        "line_endings_cr.csv",
        plain(",", "\r").encode(),
        "old Mac line endings (CR only)",
        rows=3,
        staged=[s1(2), s2(3), s3(4)],
    )
    data = (cells(*COLUMNS) + "\r\n" + cells(*P1) + "\n" + cells(*P2) + "\r\n" + cells(*P3) + "\r").encode()
    add(
        "line_endings_mixed",
        "line_endings_mixed.csv",
        data,
        "CRLF, LF and CR in one file (concatenated exports)",
        rows=3,
        staged=[s1(2), s2(3), s3(4)],
    )

    data = text(["Product export, ShopERP 7.2", "Generated 2024-05-01 by ana; all shops", ""]) + plain()
    add(
        "preamble",
        "preamble.csv",
        data.encode(),
        "title lines and a blank line before the header",
        rows=3,
        staged=[s1(5), s2(6), s3(7)],
        dialect={"header_line": 4},
    )

    data = text(["sku,name,price: see the sheet below", "", *plain().splitlines()])
    add(
        "preamble_header_row_option",
        "preamble_header_row_option.csv",
        data.encode(),
        "the header line given by the user (--header-row 3)",
        rows=3,
        options={"header_row": 3},
        staged=[s1(4), s2(5), s3(6)],
        dialect={"header_line": 3},
    )

    data = text([cells(*COLUMNS), cells(*P1), "", cells(*P2), ",,,,,,", "   ", cells(*P3), ""])
    add(
        "blank_lines",
        "blank_lines.csv",
        data.encode(),
        "empty lines, a line of only delimiters and one of spaces are blank rows",
        rows=7,
        staged=[s1(2), s2(4), s3(7)],
        rejected=[rej(3, "blank-row"), rej(5, "blank-row"), rej(6, "blank-row"), rej(8, "blank-row")],
    )

    gift = ['ACME-1004,"Gift set:', 'cup and saucer",9.90,EUR,5,,']
    gift_row = row(5, "ACME-1004", "Gift set:\ncup and saucer", "9.90", stock=5)
    data = text([cells(*COLUMNS), *(cells(*p) + "," for p in (P1, P2, P3)), gift[0], gift[1] + ","])
    add(
        "trailing_delimiter_rows",
        "trailing_delimiter_rows.csv",
        data.encode(),
        "every row ends with a delimiter the header does not have, one row spanning lines",
        rows=4,
        staged=[s1(2), s2(3), s3(4), gift_row],
    )
    data = text([cells(*COLUMNS) + ",", *(cells(*p) for p in (P1, P2, P3)), *gift])
    add(
        "trailing_delimiter_header",
        "trailing_delimiter_header.csv",
        data.encode(),
        "the header ends with a delimiter the rows do not have, one row spanning lines",
        rows=4,
        staged=[s1(2), s2(3), s3(4), gift_row],
        dialect={"ignored_columns": []},
    )
    data = text([cells(*COLUMNS, d=";") + ";", *(cells(*p, d=";") + ";" for p in (P1, P2, P3))], "\r\n")
    add(
        "trailing_delimiter_all",
        "trailing_delimiter_all.csv",
        data.encode(),
        "header and rows end with a delimiter (Excel style)",
        rows=3,
        staged=[s1(2), s2(3), s3(4)],
        dialect={"delimiter": ";", "ignored_columns": []},
    )


# ---------------------------------------------------------------- encodings

NAMES_UNICODE = ["Crème brûlée dish", "Tasse 日本 – ☕", "Größe XL “Grün”"]


def unicode_rows(names: list[str], d: str = ",") -> tuple[list[str], list[dict]]:
    lines = [cells(*COLUMNS, d=d)]
    staged = []
    for i, name in enumerate(names):
        sku = f"ACME-{2001 + i}"
        lines.append(cells(sku, name, f"{i + 1}.25", "EUR", str(i), "", "", d=d))
        staged.append(row(i + 2, sku, name, f"{i + 1}.25", stock=i))
    return lines, staged


def encoding_cases() -> None:
    lines, staged = unicode_rows(NAMES_UNICODE)
    add(
        "utf8",
        "utf8.csv",
        text(lines).encode("utf-8"),
        "UTF-8 without BOM",
        rows=3,
        staged=staged,
        dialect={"encoding": "utf-8"},
    )
    add(
        "utf8_bom",
        "utf8_bom.csv",
        codecs.BOM_UTF8 + text(lines, "\r\n").encode("utf-8"),
        "UTF-8 with BOM (Excel's CSV UTF-8)",
        rows=3,
        staged=staged,
        dialect={"encoding": "utf-8-sig"},
    )
    tab_lines, staged = unicode_rows(NAMES_UNICODE, "\t")
    add(
        "utf16le_bom",
        "utf16le_bom.txt",
        codecs.BOM_UTF16_LE + text(tab_lines, "\r\n").encode("utf-16-le"),
        "UTF-16 LE with BOM, tab-delimited, CRLF (Excel's Unicode Text)",
        rows=3,
        staged=staged,
        dialect={"encoding": "utf-16-le", "delimiter": "\t"},
    )
    add(
        "utf16be_bom",
        "utf16be_bom.csv",
        codecs.BOM_UTF16_BE + text(lines).encode("utf-16-be"),
        "UTF-16 BE with BOM",
        rows=3,
        staged=staged,
        dialect={"encoding": "utf-16-be"},
    )

    names = ["Kaffeebecher € 2", "„Espresso“ – Tasse", "Größe ½ Liter"]
    lines, staged = unicode_rows(names, ";")
    add(
        "cp1252",
        "cp1252.csv",
        text(lines, "\r\n").encode("cp1252"),
        "Windows-1252 (euro sign, curly quotes, dash), semicolons, CRLF",
        rows=3,
        staged=staged,
        dialect={"encoding": "cp1252", "delimiter": ";"},
    )
    names = ["Crème brûlée", "Äpfel ½ kg", "Señal ¿sí?"]
    lines, staged = unicode_rows(names)
    add("latin1", "latin1.csv", text(lines).encode("latin-1"), "Latin-1 (ISO-8859-1)", rows=3, staged=staged)
    names = ["Ã©tÃ© mug", "plain"]
    lines, staged = unicode_rows(names)
    add(
        "encoding_option",
        "encoding_option.csv",
        text(lines).encode("cp1252"),
        "cp1252 bytes that also happen to be valid UTF-8: the user's --encoding decides",
        rows=2,
        staged=staged,
        options={"encoding": "cp1252"},
        dialect={"encoding": "cp1252"},
    )

    head = text([cells(*COLUMNS), "ACME-1001,Crème brûlée,4.50,EUR,1,,", "ACME-1002,Café noir,6.90,EUR,2,,"])
    bad = b"ACME-1003,Caf\xe9 au lait,1.00,EUR,3,,\n"
    tail = text(["ACME-1004,Thé vert,2.00,EUR,4,,"])
    data = head.encode() + bad + tail.encode()
    offset = data.index(b"\xe9 au")
    add(
        "invalid_utf8_row",
        "invalid_utf8_row.csv",
        data,
        "one Latin-1 byte in a UTF-8 file rejects its row, with the byte offset",
        rows=4,
        staged=[
            row(2, "ACME-1001", "Crème brûlée", "4.50"),
            row(3, "ACME-1002", "Café noir", "6.90", stock=2),
            row(5, "ACME-1004", "Thé vert", "2.00", stock=4),
        ],
        rejected=[
            rej(
                4,
                "invalid-encoding",
                value="\\xe9",
                detail=f"byte {offset} (0xe9)",
                raw="ACME-1003,Caf\\xe9 au lait,1.00,EUR,3,,",
            )
        ],
        dialect={"encoding": "utf-8"},
    )

    head = (
        codecs.BOM_UTF8
        + text([cells(*COLUMNS), 'ACME-1001,"Crème brûlée,', 'two lines",4.50,EUR,1,,'], "\r\n").encode()
    )
    data = head + b"ACME-1002,Caf\xe9,1.00,EUR,2,,\r\n" + text(["ACME-1003,Thé,2.00,EUR,3,,"], "\r\n").encode()
    offset = data.index(b"\xe9,")
    add(
        "invalid_utf8_after_multiline",
        "invalid_utf8_after_multiline.csv",
        data,
        "the byte offset of an invalid byte counts the BOM, CRLFs and a record spanning lines",
        rows=3,
        staged=[row(2, "ACME-1001", "Crème brûlée,\r\ntwo lines", "4.50"), row(5, "ACME-1003", "Thé", "2.00", stock=3)],
        rejected=[rej(4, "invalid-encoding", value="\\xe9", detail=f"byte {offset} (0xe9)")],
        dialect={"encoding": "utf-8-sig"},
    )


# ---------------------------------------------------------------- structure


def structure_cases() -> None:
    data = text(
        [
            cells(*COLUMNS),
            cells(*P1),
            "ACME-1009,Too many,1.00,EUR,1,,,surprise",
            "ACME-1008,Too few,1.00",
            cells(*P2) + ",",
            "ACME-1007,Way too few",
            cells(*P3),
        ]
    )
    add(
        "cell_count",
        "cell_count.csv",
        data.encode(),
        "too many / too few cells; an empty extra cell is harmless",
        rows=6,
        staged=[s1(2), s2(5), s3(7)],
        rejected=[
            rej(3, "extra-cell", detail="expected 7 cells, found 8"),
            rej(4, "missing-cell", detail="expected 7 cells, found 3"),
            rej(6, "missing-cell", detail="expected 7 cells, found 2"),
        ],
    )

    data = text(
        [
            cells(*COLUMNS),
            cells(*P1),
            'ACME-1009,"Broken mug,4.50,EUR,3,,',
            cells(*P2),
            cells(*P3),
            'ACME-1008,"Broken again,1.00,EUR,1,,',
        ]
    )
    add(
        "unterminated_quote",
        "unterminated_quote.csv",
        data.encode(),
        "an unterminated quote rejects its line only, mid-file and on the last line",
        rows=5,
        staged=[s1(2), s2(4), s3(5)],
        rejected=[
            rej(3, "malformed-quote", raw='ACME-1009,"Broken mug,4.50,EUR,3,,'),
            rej(6, "malformed-quote", raw='ACME-1008,"Broken again,1.00,EUR,1,,'),
        ],
    )

    data = text(
        [
            cells(*COLUMNS),
            cells(*P1),
            'ACME-1004,"Gift set:',
            'cup and saucer",9.90,EUR,5,,',
            cells(*P2),
            'ACME-1005,"Three',
            "",
            'lines",1.00,EUR,1,,',
            "ACME-1006,Bad stock,1.00,EUR,ten,,",
            cells(*P3),
        ]
    )
    add(
        "multiline_field",
        "multiline_field.csv",
        data.encode(),
        "quoted values spanning lines (one with an empty line inside): later line numbers stay right",
        rows=6,
        staged=[
            s1(2),
            row(3, "ACME-1004", "Gift set:\ncup and saucer", "9.90", stock=5),
            s2(5),
            row(6, "ACME-1005", "Three\n\nlines", "1.00"),
            s3(10),
        ],
        rejected=[rej(9, "type-error", "stock", value="ten")],
    )

    data = text(
        [
            cells(*COLUMNS),
            cells(*P1),
            'ACME-1004,"Gift set:',
            'cup and saucer",9.90,EUR,5,,',
            "ACME-1006,Bad stock,1.00,EUR,ten,,",
        ],
        "\r\n",
    )
    add(
        "multiline_field_crlf",
        "multiline_field_crlf.csv",
        data.encode(),
        "a value spanning CRLF lines keeps its line break as written",
        rows=3,
        staged=[s1(2), row(3, "ACME-1004", "Gift set:\r\ncup and saucer", "9.90", stock=5)],
        rejected=[rej(5, "type-error", "stock", value="ten")],
    )

    long_plain = cells("ACME-1009", "x" * 150, "1.00", "EUR", "1", "", "")
    long_quoted = cells("ACME-1008", '"' + "y, " * 50 + '"', "1.00", "EUR", "1", "", "")
    data = text([cells(*COLUMNS), cells(*P1), long_plain, cells(*P2), long_quoted, cells(*P3)])
    add(
        "line_too_long",
        "line_too_long.csv",
        data.encode(),
        "lines over the size limit (100 here) are rejected, even when cut inside a quoted value",
        rows=5,
        max_line_chars=100,
        staged=[s1(2), s2(4), s3(6)],
        rejected=[
            rej(3, "line-too-long", detail="over 100 characters"),
            rej(5, "line-too-long", detail="over 100 characters"),
        ],
    )

    add(
        "empty",
        "empty.csv",
        b"",
        "an empty file is refused",
        refused=True,
        error=["empty", "sku, name, price, currency, stock"],
    )
    add(
        "only_blank_lines",
        "only_blank_lines.csv",
        b"\n\r\n\n",
        "a file of blank lines is refused",
        refused=True,
        error=["no header", "sku, name, price"],
    )
    add(
        "header_only",
        "header_only.csv",
        text([cells(*COLUMNS)]).encode(),
        "a header and no rows is read, with nothing staged",
        rows=0,
    )
    rng = random.Random(3)
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(3000))
    add(
        "binary",
        "binary.csv",
        png,
        "a binary file (an image named .csv) is refused",
        refused=True,
        error=["not a text file"],
    )


# ---------------------------------------------------------------- header mapping


def header_cases() -> None:
    header = [" Sku ", "PRODUCT NAME", "Price (EUR)", "Currency Code", "On Hand", "EAN-13", "release-date"]
    data = text([cells(*header), cells(*P1), cells(*P2)])
    add(
        "header_variants",
        "header_variants.csv",
        data.encode(),
        "headers in other case, with spaces and punctuation, and aliases",
        rows=2,
        staged=[s1(2), s2(3)],
        mapping={
            "Sku": "sku",
            "PRODUCT NAME": "name",
            "Price (EUR)": "price",
            "Currency Code": "currency",
            "On Hand": "stock",
            "EAN-13": "ean",
            "release-date": "launch_date",
        },
    )

    header = ["id", "sku", "colour", "name", "price", "currency", "stock", "warehouse", "ean", "launch_date", "notes"]

    def wide(i: int, p: list[str]) -> str:
        return cells(str(i), p[0], "red", *p[1:5], "W1", *p[5:7], "call =1+1")

    data = text([cells(*header), wide(1, P1), wide(2, P2)])
    add(
        "extra_columns",
        "extra_columns.csv",
        data.encode(),
        "columns the dataset does not know are ignored",
        rows=2,
        staged=[s1(2), s2(3)],
        dialect={"ignored_columns": ["id", "colour", "warehouse", "notes"]},
    )

    data = text(["sku,name,prise,currency,stock", "ACME-1001,Cup,1.00,EUR,1"])
    add(
        "missing_required_column",
        "missing_required_column.csv",
        data.encode(),
        "a required column is missing: refused, naming it and the closest header",
        refused=True,
        error=[
            "lacks required column(s) price (closest in file: 'prise')",
            "Found columns: 'sku', 'name', 'prise', 'currency', 'stock'",
            "expects: sku, name, price, currency, stock, ean, launch_date",
        ],
    )


# ---------------------------------------------------------------- values


def value_cases() -> None:
    data = text(
        [
            cells(*COLUMNS),
            cells(*P1),
            cells(*P2),
            "ACME-1003,Copy,1.00,EUR,1,,",
            cells(*P1),
            cells(*P3),
            "  ACME-1001  ,Spaced copy,1.00,EUR,1,,",
            "ACME-1002,Copy of 2,1.00,EUR,1,,",
        ]
    )
    add(
        "duplicate_keys",
        "duplicate_keys.csv",
        data.encode(),
        "every copy of a key after its first line is rejected (surrounding spaces do not hide a copy)",
        rows=7,
        staged=[s1(2), s2(3), row(4, "ACME-1003", "Copy", "1.00")],
        rejected=[
            rej(5, "duplicate-key", "sku", value="ACME-1001", detail="already appears on line 2"),
            rej(6, "duplicate-key", "sku", value="ACME-1003", detail="already appears on line 4"),
            rej(
                7,
                "duplicate-key",
                "sku",
                value="ACME-1001",
                detail="already appears on line 2",
                raw="  ACME-1001  ,Spaced copy,1.00,EUR,1,,",
            ),
            rej(8, "duplicate-key", "sku", value="ACME-1002", detail="already appears on line 3"),
        ],
    )

    data = text(
        [
            cells(*COLUMNS),
            "  ACME-1001 ,  Espresso cup  , 4.50 , EUR ,  120 , 4006381333931 , 2024-03-01 ",
            'ACME-1002," Latte glass ",\t6.90\t,EUR,80,  ,  ',
        ]
    )
    add(
        "surrounding_spaces",
        "surrounding_spaces.csv",
        data.encode(),
        "values are trimmed, quoted ones too",
        rows=2,
        staged=[s1(2), s2(3)],
    )

    data = text(
        [
            cells(*COLUMNS),
            "ACME-1001,Cup,1.00,EUR,1,,",
            "ACME-1002,Jug,2.00,EUR,2,   ,   ",
            'ACME-1003,Pot,3.00,EUR,3,"",""',
            "ACME-1004,,4.00,EUR,4,,",
            "ACME-1005,Pan,  ,EUR,5,,",
        ]
    )
    add(
        "empty_optional_cells",
        "empty_optional_cells.csv",
        data.encode(),
        "empty optional cells are null; an empty required cell is a missing value",
        rows=5,
        staged=[
            row(2, "ACME-1001", "Cup", "1.00"),
            row(3, "ACME-1002", "Jug", "2.00", stock=2),
            row(4, "ACME-1003", "Pot", "3.00", stock=3),
        ],
        rejected=[rej(5, "missing-value", "name"), rej(6, "missing-value", "price")],
    )

    data = text(
        [
            cells(*COLUMNS, d=";"),
            "ACME-1001;Cup;4,50;EUR;1;;",
            "ACME-1002;Jug;1.234,50;EUR;2;;",
            "ACME-1003;Pot;1234.50;EUR;3;;",
            "ACME-1004;Pan;0,5;EUR;4;;",
            "ACME-1005;Tray;1.234.567,89;EUR;5;;",
            "ACME-1006;Lid;1.234;EUR;6;;",
            "ACME-1007;Bin;12,345;EUR;7;;",
        ],
        "\r\n",
    )
    add(
        "decimal_comma",
        "decimal_comma.csv",
        data.encode(),
        "decimal commas (with thousands points) are read; ambiguous 3-decimal values are rejected, not guessed",
        rows=7,
        staged=[
            row(2, "ACME-1001", "Cup", "4.50"),
            row(3, "ACME-1002", "Jug", "1234.50", stock=2),
            row(4, "ACME-1003", "Pot", "1234.50", stock=3),
            row(5, "ACME-1004", "Pan", "0.50", stock=4),
            row(6, "ACME-1005", "Tray", "1234567.89", stock=5),
        ],
        rejected=[
            rej(7, "constraint-error", "price", value="1.234"),
            rej(8, "constraint-error", "price", value="12,345"),
        ],
    )

    data = text(
        [
            cells(*COLUMNS),
            "ACME-1001,Whole,4,EUR,+5,,",
            "ACME-1002,One decimal,4.5,EUR,0,,",
            "ACME-1003,Three decimals,4.505,EUR,1,,",
            "ACME-1004,Not a number,nan,EUR,1,,",
            "ACME-1005,Not a number either,n/a,EUR,1,,",
            "ACME-1006,The maximum,9999999999.99,EUR,1,,",
            "ACME-1007,Over the maximum,10000000000.00,EUR,1,,",
            "ACME-1008,Negative stock,1.00,EUR,-1,,",
            "ACME-1009,Leading zeros,1.00,EUR,1,0012345678905,",
            "ACME-1010,Bad check digit,1.00,EUR,1,4006381333932,",
            "ACME-1011,Lower-case currency,1.00,eur,1,,",
            "ACME-1012," + "n" * 201 + ",1.00,EUR,1,,",
            "ACME-1013," + "n" * 200 + ",1.00,EUR,1,,",
        ]
    )
    add(
        "numbers_and_checks",
        "numbers_and_checks.csv",
        data.encode(),
        "numbers are read as written and each check rejects its row (a 'nan' next to an 'n/a' in one column too)",
        rows=13,
        staged=[
            row(2, "ACME-1001", "Whole", "4.00", stock=5),
            row(3, "ACME-1002", "One decimal", "4.50", stock=0),
            row(7, "ACME-1006", "The maximum", "9999999999.99"),
            row(10, "ACME-1009", "Leading zeros", "1.00", ean="0012345678905"),
            row(14, "ACME-1013", "n" * 200, "1.00"),
        ],
        rejected=[
            rej(4, "constraint-error", "price", value="4.505", detail="more than 2 decimals"),
            rej(5, "missing-value", "price", value="nan"),
            rej(6, "type-error", "price", value="n/a"),
            rej(8, "constraint-error", "price", value="10000000000.00"),
            rej(9, "constraint-error", "stock", value="-1"),
            rej(11, "constraint-error", "ean", value="4006381333932"),
            rej(12, "constraint-error", "currency", value="eur"),
            rej(13, "constraint-error", "name"),
        ],
    )

    dates = [
        "2024-03-01",
        "01.03.2024",
        "01/03/2024",
        "1.3.2024",
        "2024-02-30",
        "03/25/2024",
        "tomorrow",
        "1899-12-31",
        "2024-02-29",
        "0999-01-01",
    ]
    lines = [cells(*COLUMNS)] + [f"ACME-{3001 + i},Cup,1.00,EUR,1,,{d}" for i, d in enumerate(dates)]
    add(
        "dates",
        "dates.csv",
        text(lines).encode(),
        "dates in each listed format (ISO, dd.mm.yyyy, dd/mm/yyyy); impossible or other dates are rejected, "
        "a year before 1677 too (a crash once)",
        rows=10,
        staged=[
            row(2, "ACME-3001", "Cup", "1.00", launch_date="2024-03-01"),
            row(3, "ACME-3002", "Cup", "1.00", launch_date="2024-03-01"),
            row(4, "ACME-3003", "Cup", "1.00", launch_date="2024-03-01"),
            row(5, "ACME-3004", "Cup", "1.00", launch_date="2024-03-01"),
            row(10, "ACME-3009", "Cup", "1.00", launch_date="2024-02-29"),
        ],
        rejected=[
            rej(6, "type-error", "launch_date", value="2024-02-30"),
            rej(7, "type-error", "launch_date", value="03/25/2024"),
            rej(8, "type-error", "launch_date", value="tomorrow"),
            rej(9, "constraint-error", "launch_date", value="1899-12-31"),
            rej(11, "type-error", "launch_date", value="0999-01-01"),
        ],
    )

    data = text(
        [
            cells(*COLUMNS),
            cells(*P1),
            "=1+1,Cup,1.00,EUR,1,,",
            "ACME-2001,+cmd|' /C calc'!A0,1.00,EUR,ten,,",
            "ACME-2002,@SUM(A1:A9),1.00,XXX,1,,",
            "ACME-2003,-2+3,-1.00,EUR,1,,",
            'ACME-1001,"=HYPERLINK(""http://example.com"")",1.00,EUR,1,,',
        ]
    )
    add(
        "formula_cells",
        "formula_cells.csv",
        data.encode(),
        "cells a spreadsheet would run come out neutralised (leading ') in the rejected rows download",
        rows=6,
        staged=[s1(2)],
        rejected=[
            rej(3, "constraint-error", "sku", value="=1+1"),
            rej(4, "type-error", "stock", value="ten"),
            rej(5, "constraint-error", "currency", value="XXX"),
            rej(6, "constraint-error", "price", value="-1.00"),
            rej(7, "duplicate-key", "sku", value="ACME-1001"),
        ],
        fixing=[
            {"line": 3, "sku": "'=1+1", "name": "Cup", "reason": "constraint-error"},
            {"line": 4, "name": "'+cmd|' /C calc'!A0", "stock": "ten", "reason": "type-error"},
            {"line": 5, "name": "'@SUM(A1:A9)", "currency": "XXX"},
            {"line": 6, "name": "'-2+3", "price": "-1.00"},
            {"line": 7, "sku": "ACME-1001", "name": '\'=HYPERLINK("http://example.com")', "reason": "duplicate-key"},
        ],
    )


# ---------------------------------------------------------------- damage from the wild (issue 16)


def damage_cases() -> None:
    header = ["sku", "name", "notes", "price", "currency", "stock", "ean", "launch_date"]
    data = text(
        [
            cells(*header),
            'ACME-1001,Espresso cup,"Holds 0,1 litres",4.50,EUR,120,,',
            'ACME-1002,Large kettle"Holds 1,5 litres",6.90,EUR,80,,',
            'ACME-1003,"Milk jug, 350 ml","Say ""hi""",12.00,EUR,35,,',
            'ACME-1004,Monitor 27" wide,,99.00,EUR,3,,',
            'ACME-1005,Tray,Lid"s not included,1.00,EUR,1,,',
            'ACME-1006,Bowl,,2.00,EUR,2,,"2024-03-01"',
            'ACME-1007,Cup"Blue",1.00,EUR,1,,',
        ]
    )
    add(
        "stray_quote",
        "stray_quote.csv",
        data.encode(),
        "in a file that quotes its fields, a quote inside an unquoted cell rejects the row (a delimiter lost "
        "before a quoted value, with the right number of cells; an unquoted inch mark), even in an ignored column",
        rows=7,
        staged=[
            row(2, "ACME-1001", "Espresso cup", "4.50", stock=120),
            row(4, "ACME-1003", "Milk jug, 350 ml", "12.00", stock=35),
            row(7, "ACME-1006", "Bowl", "2.00", stock=2, launch_date="2024-03-01"),
        ],
        rejected=[
            rej(
                3,
                "stray-quote",
                "name",
                value='Large kettle"Holds 1',
                raw='ACME-1002,Large kettle"Holds 1,5 litres",6.90,EUR,80,,',
            ),
            rej(5, "stray-quote", "name", value='Monitor 27" wide'),
            rej(6, "stray-quote", None, value='Lid"s not included'),
            rej(8, "stray-quote", "name", value='Cup"Blue"'),
        ],
        dialect={"quote": '"'},
    )

    data = text(
        [
            cells(*COLUMNS),
            'ACME-1001,Monitor 27" wide,199.00,EUR,3,,',
            'ACME-1002,Pipe 1/2" brass,4.50,EUR,10,,',
            'ACME-1003,Shelf 12" x 8",9.90,EUR,5,,',
            "ACME-1004,Plain cup,1.00,EUR,1,,",
        ]
    )
    add(
        "inch_marks_default",
        "inch_marks.csv",
        data.encode(),
        "a file that writes inch marks unquoted: by default each such row is rejected, never staged silently",
        rows=4,
        staged=[row(5, "ACME-1004", "Plain cup", "1.00")],
        rejected=[
            rej(2, "stray-quote", "name", value='Monitor 27" wide'),
            rej(3, "stray-quote", "name", value='Pipe 1/2" brass'),
            rej(4, "stray-quote", "name", value='Shelf 12" x 8"'),
        ],
    )
    add(
        "inch_marks_quote_none",
        "inch_marks.csv",
        None,
        "the same file read with no quote character (--quote none): quotes are part of the cells",
        options={"quote": "none"},
        rows=4,
        staged=[
            row(2, "ACME-1001", 'Monitor 27" wide', "199.00", stock=3),
            row(3, "ACME-1002", 'Pipe 1/2" brass', "4.50", stock=10),
            row(4, "ACME-1003", 'Shelf 12" x 8"', "9.90", stock=5),
            row(5, "ACME-1004", "Plain cup", "1.00"),
        ],
        dialect={"quote": ""},
    )

    data = text(
        [
            cells(*COLUMNS),
            "ACME-1001,\u00a0No-break spaces\u00a0,6.90,EUR,1,,",
            "ACME-1002,  Padded\tname  ,6.90,EUR,2,,",
            'ACME-1003,"Line one\r\nline two",6.9,EUR,3,,',
            "ACME-1004,nan,6.90,EUR,4,,",
            "ACME-1005,00123,6.90,EUR,5,,",
            "ACME-1001,Copy,6.90,EUR,6,,",
        ]
    )
    add(
        "text_fidelity",
        "text_fidelity.csv",
        data.encode(),
        "text is staged as written (only spaces and tabs around it trimmed); a duplicate keeps its line as written",
        rows=6,
        staged=[
            row(2, "ACME-1001", "\u00a0No-break spaces\u00a0", "6.90", stock=1),
            row(3, "ACME-1002", "Padded\tname", "6.90", stock=2),
            row(4, "ACME-1003", "Line one\r\nline two", "6.90", stock=3),
            row(6, "ACME-1004", "nan", "6.90", stock=4),
            row(7, "ACME-1005", "00123", "6.90", stock=5),
        ],
        rejected=[rej(8, "duplicate-key", "sku", value="ACME-1001", raw="ACME-1001,Copy,6.90,EUR,6,,")],
        fixing=[{"line": 8, "sku": "ACME-1001", "name": "Copy", "price": "6.90", "stock": "6", "ean": ""}],
    )


def damaged_header_cases() -> None:
    rows = [cells(*P1), '"ACME-1002","Latte glass",6.90,EUR,80,,', cells(*P3)]
    data = text(['sku,"name,price,currency,stock,ean,launch_date', *rows])
    add(
        "header_stray_quote",
        "header_stray_quote.csv",
        data.encode(),
        "a header with an unterminated quote is read with quotes ignored; the rows after it are read as usual",
        rows=3,
        staged=[s1(2), s2(3), s3(4)],
        dialect={"header_line": 1, "lenient_header": True, "header": COLUMNS},
    )
    data = text(['"sku","name","price,"currency","stock","ean","launch_date"', *rows])
    add(
        "header_stray_quote_closing",
        "header_stray_quote_closing.csv",
        data.encode(),
        'a header whose quote closes too early (`"price,"currency"`) is read with quotes ignored',
        rows=3,
        staged=[s1(2), s2(3), s3(4)],
        dialect={"lenient_header": True, "header": COLUMNS},
    )

    data = text(["sku,name,price,currency,stockean,launch_date", *lines_of(P1, P2, P3)])
    add(
        "header_lost_delimiter",
        "header_lost_delimiter.csv",
        data.encode(),
        "a header cell that lost its delimiter (`stockean`) is cut in two when exactly one cut names two "
        "missing columns and the rows have that many cells; the job's dialect says so",
        rows=3,
        staged=[s1(2), s2(3), s3(4)],
        dialect={"header_split": [4, 5], "header": COLUMNS},
        mapping={c: c for c in COLUMNS},
    )
    add(
        "header_lost_delimiter_as_written",
        "header_lost_delimiter.csv",
        None,
        "the same file with the cut overridden (header_split none): read as written, the header lacks stock",
        options={"header_split": "none"},
        refused=True,
        error=["lacks required column(s) stock", "'stockean'"],
    )
    data = text(["sku,name,pricecurrency,stockean,launch_date", *lines_of(P1, P2, P3)])
    add(
        "header_two_lost_delimiters",
        "header_two_lost_delimiters.csv",
        data.encode(),
        "two header cells that could each be cut: no guess, the header lacks the columns",
        refused=True,
        error=["lacks required column(s) price", "'pricecurrency'", "'stockean'"],
    )
    data = text(
        [
            "sku,name,price,currency,stock,eanlaunch_date",
            "ACME-1001,Espresso cup,4.50,EUR,120,",
            "ACME-1002,Latte glass,6.90,EUR,80,x",
        ]
    )
    add(
        "header_cut_rows_disagree",
        "header_cut_rows_disagree.csv",
        data.encode(),
        "a header cell that could be cut in two, but the rows have the header's cells: read as written",
        rows=2,
        staged=[
            row(2, "ACME-1001", "Espresso cup", "4.50", stock=120),
            row(3, "ACME-1002", "Latte glass", "6.90", stock=80),
        ],
        dialect={"header_split": None, "ignored_columns": ["eanlaunch_date"]},
    )


def detected_dialect_cases() -> None:
    data = text(
        [
            ", ".join(COLUMNS),
            'ACME-1001, "Espresso cup, small", 4.50, EUR, 120, 4006381333931, 2024-03-01',
            "ACME-1002, Latte glass, 6.90, EUR, 80, , ",
            'ACME-1003, "Milk jug ""350 ml""", 12.00, EUR, 35, , ',
            'ACME-1004, Jug"Blue, 1.00, EUR, 1, , ',
        ]
    )
    add(
        "delimiter_then_space",
        "delimiter_then_space.csv",
        data.encode(),
        'a delimiter followed by a space (`a, "b"`): quoted cells after the space are read as quoted',
        rows=4,
        staged=[
            row(2, "ACME-1001", "Espresso cup, small", "4.50", stock=120, ean=EAN1, launch_date="2024-03-01"),
            row(3, "ACME-1002", "Latte glass", "6.90", stock=80),
            row(4, "ACME-1003", 'Milk jug "350 ml"', "12.00", stock=35),
        ],
        rejected=[rej(5, "stray-quote", "name", value='Jug"Blue')],
        dialect={"delimiter": ",", "skip_initial_space": True, "quote": '"'},
    )

    data = text(
        [
            " ".join(COLUMNS),
            f'ACME-1001 "Espresso cup" 4.50 EUR 120 {EAN1} 2024-03-01',
            'ACME-1002 "Latte glass" 6.90 EUR 80 "" ""',
            'ACME-1003 Jug 12.00 EUR 35 "" 2023-11-15',
            'ACME-1004 Milk jug 1.00 EUR 1 "" 2024-01-01',
        ]
    )
    add(
        "delimiter_space",
        "delimiter_space.csv",
        data.encode(),
        "a space as the delimiter, names with spaces quoted; an unquoted name with a space has a cell too many",
        rows=4,
        staged=[
            row(2, "ACME-1001", "Espresso cup", "4.50", stock=120, ean=EAN1, launch_date="2024-03-01"),
            row(3, "ACME-1002", "Latte glass", "6.90", stock=80),
            row(4, "ACME-1003", "Jug", "12.00", stock=35, launch_date="2023-11-15"),
        ],
        rejected=[rej(5, "extra-cell")],
        dialect={"delimiter": " "},
    )

    data = text(
        [
            cells(*COLUMNS),
            "ACME-1001,'Mug, large',4.50,EUR,1,,",
            "ACME-1002,'It''s a jug',6.90,EUR,2,,",
            "ACME-1003,Plain,1.00,EUR,3,,",
            "ACME-1004,'Bowl; 2, blue',2.00,EUR,4,,",
        ]
    )
    add(
        "quote_single_detected",
        "quote_single_detected.csv",
        data.encode(),
        "single quotes as the quote character, detected",
        rows=4,
        staged=[
            row(2, "ACME-1001", "Mug, large", "4.50"),
            row(3, "ACME-1002", "It's a jug", "6.90", stock=2),
            row(4, "ACME-1003", "Plain", "1.00", stock=3),
            row(5, "ACME-1004", "Bowl; 2, blue", "2.00", stock=4),
        ],
        dialect={"quote": "'", "delimiter": ","},
    )
    data = text(
        [
            cells(*COLUMNS),
            "ACME-1001,It's a cup,4.50,EUR,1,,",
            "ACME-1002,\"Jug, 'large'\",6.90,EUR,2,,",
            "ACME-1003,Rock 'n' roll mug,1.00,EUR,3,,",
        ]
    )
    add(
        "apostrophes_not_quotes",
        "apostrophes_not_quotes.csv",
        data.encode(),
        "apostrophes in unquoted cells do not make ' the quote character",
        rows=3,
        staged=[
            row(2, "ACME-1001", "It's a cup", "4.50"),
            row(3, "ACME-1002", "Jug, 'large'", "6.90", stock=2),
            row(4, "ACME-1003", "Rock 'n' roll mug", "1.00", stock=3),
        ],
        dialect={"quote": '"'},
    )
    add(
        "escape_backslash_detected",
        "escape_backslash.csv",
        None,
        "quotes escaped with a backslash, detected",
        rows=3,
        staged=[
            row(2, "ACME-1001", 'Mug "Classic", 300 ml', "4.50"),
            row(3, "ACME-1002", "Back\\slash", "6.90", stock=2),
            row(4, "ACME-1003", "Plain", "12.00", stock=3),
        ],
        dialect={"escape": "\\", "quote": '"'},
    )
    data = text([cells(*COLUMNS), "ACME-1001,C:\\temp\\cup,4.50,EUR,1,,", 'ACME-1002,"Jug, ""big""",6.90,EUR,2,,'])
    add(
        "backslashes_not_escapes",
        "backslashes_not_escapes.csv",
        data.encode(),
        "backslashes in a file that doubles its quotes are text, kept as written",
        rows=2,
        staged=[row(2, "ACME-1001", "C:\\temp\\cup", "4.50"), row(3, "ACME-1002", 'Jug, "big"', "6.90", stock=2)],
        dialect={"escape": None},
    )


def headerless_cases() -> None:
    add(
        "headerless_refused",
        "headerless.csv",
        text(lines_of(P1, P2, P3)).encode(),
        "a first line that names no column but passes the checks in column order: refused, naming --no-header",
        refused=True,
        error=["--no-header", "sku, name, price, currency, stock, ean, launch_date"],
    )
    add(
        "headerless_no_header",
        "headerless.csv",
        None,
        "the same file with no_header: every line is a row, columns in dataset order",
        options={"no_header": True},
        rows=3,
        staged=[s1(1), s2(2), s3(3)],
        dialect={"header_line": 0, "columns": COLUMNS},
    )
    data = text(["Espresso cup;ACME-1001;4,50;EUR;120", "Latte glass;ACME-1002;6,90;EUR;80", "Jug;ACME-1003;x;EUR;1"])
    add(
        "headerless_columns",
        "headerless_columns.csv",
        data.encode(),
        "no header line, the file's columns named in its own order (columns)",
        options={"columns": ["name", "sku", "price", "currency", "stock"]},
        rows=3,
        staged=[
            row(1, "ACME-1001", "Espresso cup", "4.50", stock=120),
            row(2, "ACME-1002", "Latte glass", "6.90", stock=80),
        ],
        rejected=[rej(3, "type-error", "price", value="x")],
        dialect={"header_line": 0, "delimiter": ";"},
    )


# ---------------------------------------------------------------- xlsx


def _xlsx(sheets: list[tuple[str, list[list]]]) -> bytes:
    """A workbook written by openpyxl, made reproducible (fixed timestamps, stored zip entries)."""
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for values in rows:
            sheet.append(values)
    fixed = dt.datetime(2024, 1, 1)
    book.properties.created = book.properties.modified = fixed
    buffer = io.BytesIO()
    book.save(buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2024-01-01T00:00:00Z", data)
            target.writestr(zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


PRODUCT_SHEET = [
    COLUMNS,
    ["ACME-1001", "Espresso cup", 4.5, "EUR", 120, EAN1, dt.datetime(2024, 3, 1)],
    ["ACME-1002", "Latte glass", 6.9, "EUR", 80, None, None],
    ["ACME-1004", "Bad stock", 1, "EUR", "ten", None, None],
    ["ACME-1003", "Milk jug 350 ml", 12, "EUR", 35, int(EAN2), dt.datetime(2023, 11, 15)],
    [],
    [None, None],
]
SHEET_STAGED = [s1(2), s2(3), row(5, "ACME-1003", "Milk jug 350 ml", "12.00", "EUR", 35, EAN2, "2023-11-15")]
SHEET_REJECTED = [rej(4, "type-error", "stock", value="ten")]


def xlsx_cases() -> None:
    data = _xlsx([("Products", PRODUCT_SHEET), ("Notes", [["prices are net"]])])
    add(
        "xlsx_first_sheet",
        "workbook.xlsx",
        data,
        "an .xlsx workbook: the first sheet is read, lines are sheet rows, trailing empty rows are ignored",
        rows=4,
        staged=SHEET_STAGED,
        rejected=SHEET_REJECTED,
        dialect={"kind": "xlsx"},
        fixing=[
            {"line": 4, "sku": "ACME-1004", "name": "Bad stock", "stock": "ten", "ean": "", "reason": "type-error"}
        ],
    )

    data = _xlsx([("Read me", [["This workbook lists our prices"], ["see the next sheet"]]), ("Prices", PRODUCT_SHEET)])
    add(
        "xlsx_chosen_sheet",
        "workbook_two_sheets.xlsx",
        data,
        "a sheet chosen by name (options sheet)",
        options={"sheet": "Prices"},
        rows=4,
        staged=SHEET_STAGED,
        rejected=SHEET_REJECTED,
    )
    add(
        "xlsx_unknown_sheet",
        "workbook_two_sheets.xlsx",
        None,
        "a sheet that does not exist is refused, naming those that do",
        options={"sheet": "Nope"},
        refused=True,
        error=["no sheet 'Nope'", "Read me, Prices"],
    )

    data = _xlsx([("Products", [["Price list spring 2024"], [], *PRODUCT_SHEET])])
    add(
        "xlsx_preamble",
        "workbook_preamble.xlsx",
        data,
        "a title row and a blank row above the sheet's header",
        rows=4,
        staged=[dict(r, line=r["line"] + 2) for r in SHEET_STAGED],
        rejected=[dict(r, line=r["line"] + 2) for r in SHEET_REJECTED],
        dialect={"header_line": 3},
    )


# ---------------------------------------------------------------- writing


def build() -> tuple[dict[str, bytes], list[dict]]:
    CASES.clear()
    FILES.clear()
    dialect_cases()
    encoding_cases()
    structure_cases()
    header_cases()
    value_cases()
    damage_cases()
    damaged_header_cases()
    detected_dialect_cases()
    headerless_cases()
    xlsx_cases()
    return {**FILES, "cases.json": dump(CASES).encode("utf-8")}, CASES


def dump(cases: list[dict]) -> str:
    """JSON with one case per block and one staged or rejected row per line, for readable diffs."""

    def value(v) -> str:
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            return "[\n" + ",\n".join("   " + json.dumps(x, ensure_ascii=False) for x in v) + "\n  ]"
        return json.dumps(v, ensure_ascii=False)

    blocks = [" {\n" + ",\n".join(f"  {json.dumps(k)}: {value(v)}" for k, v in case.items()) + "\n }" for case in cases]
    return "[\n" + ",\n".join(blocks) + "\n]\n"


def main(out: Path = HERE) -> None:
    files, _ = build()
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    print(f"wrote {len(files)} files to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
