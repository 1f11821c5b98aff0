"""Property: whatever the dialect and encoding, the pipeline stages exactly the rows that were written.

Hypothesis writes random valid product tables (names with any text, delimiters,
quotes and line breaks included) in a random dialect and encoding, stages each
file on a real DuckLake, and compares the staged rows, values and line numbers
with what was written.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bulkimport.datasets import get_dataset
from bulkimport.datasets.products import CURRENCIES, SKU_PATTERN
from bulkimport.stages.review import rejected_rows
from bulkimport.stages.stage import stage_file
from tests.lake_support import make_job, private_lake, staged_values

PRODUCTS = get_dataset("products")
DELIMITERS = (",", ";", "\t", "|")
NEWLINES = ("\n", "\r\n", "\r")
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "cp1252")
BOMS = {"utf-8-sig": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what ends a line in a file (not str.splitlines' longer list)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    with private_lake(tmp_path_factory.mktemp("home")) as con:
        yield con


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("files")


# ---------------------------------------------------------------- what is written


def ean13() -> st.SearchStrategy[str]:
    def with_check_digit(body: str) -> str:
        weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
        return body + str((10 - weighted % 10) % 10)

    return st.from_regex(r"\A[0-9]{12}\Z").map(with_check_digit)


def name_text(encoding: str) -> st.SearchStrategy[str]:
    # Any printable text the encoding can hold, plus the characters that make CSV hard.
    # (No control characters: a file full of them is refused as binary, by design.)
    codec = "cp1252" if encoding == "cp1252" else "utf-8"
    chars = st.characters(codec=codec, exclude_categories=("Cs", "Cc"), include_characters="\n\r\t,;|\"'\\ ")
    return st.text(chars, min_size=1, max_size=25).filter(lambda s: s.strip(" \t") and len(s.strip(" \t")) <= 200)


def price_text(cents: int, style: str) -> str:
    whole, frac = divmod(cents, 100)
    if style == "point":
        return f"{whole}.{frac:02d}"
    if style == "comma":
        return f"{whole},{frac:02d}"
    return f"{whole:,}".replace(",", ".") + f",{frac:02d}"  # 1.234.567,89


@st.composite
def product_rows(draw, encoding: str) -> list[dict]:
    skus = draw(st.lists(st.from_regex(SKU_PATTERN, fullmatch=True), min_size=1, max_size=8, unique=True))
    rows = []
    for sku in skus:
        # Small prices and large ones up to the dataset's maximum, 9999999999.99.
        cents = draw(st.integers(0, 10**6) | st.integers(10**9, 999_999_999_999))
        date = draw(st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))
        rows.append(
            {
                "sku": sku,
                "name": draw(name_text(encoding)),
                "price": (cents, draw(st.sampled_from(("point", "comma", "thousands")))),
                "currency": draw(st.sampled_from(CURRENCIES)),
                "stock": draw(st.integers(0, 10**12)),
                "ean": draw(st.none() | ean13()),
                "launch_date": (date, draw(st.sampled_from(DATE_FORMATS))),
                "padding": (draw(st.sampled_from(("", " ", "  "))), draw(st.sampled_from(("", " ")))),
            }
        )
    return rows


def header_names() -> st.SearchStrategy[list[str]]:
    """Each column under its own name or an alias, in some case."""
    return st.tuples(
        *(
            st.tuples(
                st.sampled_from((c, *PRODUCTS.aliases.get(c, ()))), st.sampled_from((str, str.upper, str.title))
            ).map(lambda pair: pair[1](pair[0]))
            for c in PRODUCTS.columns
        )
    ).map(list)


def write_record(cells: list[str], delimiter: str, quote_all: bool, newline: str) -> str:
    """One CSV record as RFC 4180 writes it: quoted when needed (or always), quotes doubled.

    (Python's csv writer leaves a lone CR unquoted when the line ending is LF,
    which makes a broken file; this writer does not.)
    """

    def field(value: str) -> str:
        if quote_all or any(c in value for c in (delimiter, '"', "\r", "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value

    return delimiter.join(map(field, cells)) + newline


def cells_of(row: dict) -> list[str]:
    cents, style = row["price"]
    date, date_format = row["launch_date"]
    left, right = row["padding"]  # spaces around the values other than the name, which are trimmed
    values = [
        row["sku"],
        price_text(cents, style),
        row["currency"],
        str(row["stock"]),
        row["ean"] or "",
        date.strftime(date_format) if date else "",
    ]
    sku, price, currency, stock, ean, date = (left + v + right for v in values)
    return [sku, row["name"], price, currency, stock, ean, date]


def staged_form(row: dict, line: int) -> dict:
    """The row as the lake should hold it."""
    cents, _ = row["price"]
    date, _ = row["launch_date"]
    return {
        "line": line,
        "sku": row["sku"],
        "name": row["name"].strip(" \t"),  # only spaces and tabs are trimmed
        "price": f"{cents // 100}.{cents % 100:02d}",
        "currency": row["currency"],
        "stock": row["stock"],
        "ean": row["ean"],
        "launch_date": date.isoformat() if date else None,
    }


@st.composite
def files(draw) -> tuple[bytes, dict, list[dict]]:
    """(file bytes, how it was written, the rows as they should be staged)."""
    encoding = draw(st.sampled_from(ENCODINGS))
    how = {
        "encoding": encoding,
        "delimiter": draw(st.sampled_from(DELIMITERS)),
        "newline": draw(st.sampled_from(NEWLINES)),
        "quote_all": draw(st.booleans()),
        "preamble": draw(st.lists(st.sampled_from(("Product export", "Generated by ShopERP 7", "")), max_size=2)),
    }
    rows = draw(product_rows(encoding))
    header = draw(header_names())
    text = "".join(line + how["newline"] for line in how["preamble"])
    text += write_record(header, how["delimiter"], how["quote_all"], how["newline"])
    line = len(how["preamble"]) + 2
    expected = []
    for row in rows:
        record = write_record(cells_of(row), how["delimiter"], how["quote_all"], how["newline"])
        expected.append(staged_form(row, line))
        line += len(LINE_BREAK.findall(record))
        text += record
    data = BOMS.get(encoding, b"") + text.encode(encoding.removesuffix("-sig"))
    if encoding == "cp1252":
        # Bytes that also read as UTF-8 multi-byte characters (cp1252 "Ã©" is UTF-8 "é") are
        # UTF-8 as far as anyone can tell; such files are what --encoding is for.
        decoded = data.decode("utf-8", "surrogateescape")
        assume(not any(127 < ord(c) and not 0xDC80 <= ord(c) <= 0xDCFF for c in decoded))
    how["header_line"] = len(how["preamble"]) + 1
    return data, how, expected


# ---------------------------------------------------------------- the property


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(written=files(), chunk_rows=st.sampled_from((3, 1000)))  # across chunks, or one chunk
def test_the_pipeline_stages_exactly_the_rows_that_were_written(con, folder, written, chunk_rows):
    data, how, expected = written
    path = folder / f"{uuid.uuid4().hex}.csv"
    path.write_bytes(data)
    job = make_job(path, uuid.uuid4().hex[:12])

    counts = stage_file(con, job, PRODUCTS, path, chunk_rows)

    rejected = rejected_rows(con, job).df()[["line", "reason", "column", "detail"]].to_dict("records")
    assert rejected == []
    assert staged_values(con, job, PRODUCTS) == expected
    assert (counts.rows_total, counts.rows_valid, counts.rows_rejected) == (len(expected), len(expected), 0)
    assert counts.dialect["delimiter"] == how["delimiter"]
    assert counts.dialect["header_line"] == how["header_line"]
