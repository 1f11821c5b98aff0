"""Property: damage a valid file and no damaged row is ever staged as valid.

Hypothesis writes a valid products file (as tests/test_reading_properties.py does),
then damages it the ways files from the wild are damaged: a delimiter dropped, a
delimiter added, a quote character inserted, in a few rows or in the header. Every
line must then be staged exactly as written or rejected with a reason: an undamaged
line staged with its values; a damaged line rejected, or staged only with the values
it still says (the damage landed inside a quoted value, where a delimiter is text, or
it did not change a value, a trailing delimiter say). A damaged header may refuse
the file, never misplace a column.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bulkimport.datasets import get_dataset
from bulkimport.errors import FileRefused
from bulkimport.stages.review import rejected_rows
from bulkimport.stages.stage import stage_file
from tests.lake_support import make_job, private_lake, staged_values
from tests.test_reading_properties import cells_of, header_names, product_rows, staged_form

PRODUCTS = get_dataset("products")
DELIMITERS = (",", ";", "\t", "|")
COLUMNS = PRODUCTS.columns
NAME = 1  # the name's cell: the one text column, where a quoted delimiter is text


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    with private_lake(tmp_path_factory.mktemp("home")) as con:
        yield con


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("files")


def write_record(cells: list[str], delimiter: str, quote_all: bool) -> tuple[str, list[tuple[int, int, int]]]:
    """One record (no line end) and the spans (cell, start, end) of the text inside each quoted cell."""
    parts, spans, at = [], [], 0
    for index, value in enumerate(cells):
        if quote_all or any(c in value for c in (delimiter, '"', "\r", "\n")):
            inner = value.replace('"', '""')
            spans.append((index, at + 1, at + 1 + len(inner)))
            value = f'"{inner}"'
        parts.append(value)
        at += len(value) + len(delimiter)
    return delimiter.join(parts), spans


DAMAGES = ("drop a delimiter", "add a delimiter", "insert a quote")


@st.composite
def damage(draw, record: str, delimiter: str, spans: list[tuple[int, int, int]]) -> tuple[str, dict[int, str], str]:
    """(damaged record, {quoted cell: its text now} if the damage landed inside a quoted cell, what was done)."""
    kind = draw(st.sampled_from(DAMAGES))
    if kind == "drop a delimiter":
        at = draw(st.sampled_from([i for i, c in enumerate(record) if c == delimiter]))
        damaged, added = record[:at] + record[at + 1 :], ""
    else:
        at = draw(st.integers(0, len(record)))
        added = delimiter if kind == "add a delimiter" else '"'
        damaged = record[:at] + added + record[at:]
    if added == '"':  # next to another quote it could pair up into an escaped quote: another damage than meant
        assume('"' not in record[max(at - 1, 0) : at + 1])
    inside = {}
    for cell, start, end in spans:
        if start <= at < end or (added and at == end):
            text = record[start:at] + added + record[at + (0 if added else 1) : end]
            inside[cell] = text.replace('""', '"') if text.count('"') % 2 == 0 else None
    return damaged, inside, f"{kind} at {at}"


@st.composite
def damaged_files(draw, header_damage: bool = False):
    """(file text, what each data line may be staged as (None: it must be rejected), notes on the damage)."""
    delimiter = draw(st.sampled_from(DELIMITERS))
    newline = draw(st.sampled_from(("\n", "\r\n")))
    quote_all = draw(st.booleans())
    rows = draw(product_rows("utf-8"))
    header, _ = write_record(draw(header_names()), delimiter, quote_all)
    damaged_rows = set() if header_damage else draw(st.sets(st.integers(0, len(rows) - 1), min_size=1))
    notes = []
    if header_damage:
        header, _, note = draw(damage(header, delimiter, []))
        notes.append(f"header: {note}")
    text = header + newline
    # line -> ("exact" | "or rejected", the staged form allowed (None: none), a column whose value may differ)
    expected: dict[int, tuple[str, dict | None, str | None]] = {}
    for index, row in enumerate(rows):
        assume("\r" not in row["name"] and "\n" not in row["name"])  # one line per record: damage stays on it
        line = index + 2
        cells = cells_of(row)
        record, spans = write_record(cells, delimiter, quote_all)
        staged = staged_form(row, line)
        if index in damaged_rows:
            record, inside, note = draw(damage(record, delimiter, spans))
            notes.append(f"line {line}: {note}")
            free = None
            if not inside:
                allowed = staged  # a change outside quoted text may stage only if it changes no value
            elif None in inside.values():
                allowed = None  # a lone quote inside quoted text: must be rejected
            elif NAME in inside:
                allowed = dict(staged, name=inside[NAME].strip(" \t"))  # a delimiter inside a quoted name is text
            else:  # inside a quoted number, code or date: the value as edited, which the checks judge
                allowed, free = staged, COLUMNS[next(iter(inside))]
            expected[line] = ("or rejected", allowed, free)
        else:
            expected[line] = ("or rejected" if header_damage else "exact", staged, None)
        text += record + newline
    return text, expected, notes


def stage(con, folder, text: str):
    path = folder / f"{uuid.uuid4().hex}.csv"
    path.write_bytes(text.encode("utf-8"))
    job = make_job(path, uuid.uuid4().hex[:12])
    counts = stage_file(con, job, PRODUCTS, path, 3)
    staged = {r["line"]: r for r in staged_values(con, job, PRODUCTS)}
    rejected = rejected_rows(con, job).df()
    return counts, staged, rejected


def assert_every_line_staged_as_written_or_rejected(counts, staged, rejected, expected, notes) -> None:
    reasons = dict(zip(rejected["line"].astype(int), rejected["reason"], strict=True))
    assert set(staged) | set(reasons) == set(expected), notes
    assert not set(staged) & set(reasons), notes
    assert all(reasons.values()), "a reject without a reason"
    for line, (rule, allowed, free) in expected.items():
        if rule == "exact":
            assert staged.get(line) == allowed, (line, reasons.get(line), notes)
        elif line in staged:
            assert allowed is not None, ("a damaged row was staged as valid", line, staged[line], notes)
            mine = {k: v for k, v in staged[line].items() if k != free}
            assert mine == {k: v for k, v in allowed.items() if k != free}, ("a damaged row staged as valid", notes)
    assert counts.rows_total == len(expected)


SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@SETTINGS
@given(written=damaged_files())
def test_no_damaged_row_is_staged_as_valid(con, folder, written):
    text, expected, notes = written
    counts, staged, rejected = stage(con, folder, text)
    assert_every_line_staged_as_written_or_rejected(counts, staged, rejected, expected, notes)


@SETTINGS
@given(written=damaged_files(header_damage=True))
def test_a_damaged_header_refuses_the_file_or_misplaces_no_column(con, folder, written):
    text, expected, notes = written
    try:
        counts, staged, rejected = stage(con, folder, text)
    except FileRefused:
        return
    assert_every_line_staged_as_written_or_rejected(counts, staged, rejected, expected, notes)
