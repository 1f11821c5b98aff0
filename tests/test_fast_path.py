"""The staging fast path gives the careful path's answer: the same staged rows, the same rejects, cell for cell.

Every file is staged twice on a real DuckLake, once each way, and the two jobs'
staged rows (every value and line) and rejected rows (line, column, reason,
check, value, detail, raw) must be equal. Files: the whole reading corpus, and
hypothesis-generated files that mix good rows with the damage real files have
(lost and extra delimiters, stray quotes, values spanning lines, blank lines,
numbers and dates in odd shapes, duplicate keys) in random dialects and
encodings. Which path each file took, and why a file went the careful way, is
counted and printed; the tests also check that the fast path was really taken.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkimport.datasets import get_dataset
from bulkimport.errors import FileRefused
from bulkimport.stages import compile as compiled_sql
from bulkimport.stages.stage import stage_file
from tests.lake_support import make_job, private_lake
from tests.test_reading_properties import BOMS, DELIMITERS, cells_of, header_names, product_rows, write_record

CORPUS = Path(__file__).resolve().parent / "data" / "csv"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
PRODUCTS = get_dataset("products")
# The same dataset with its custom checks left without SQL: they run in Python on batches.
PRODUCTS_PYTHON_CHECKS = dataclasses.replace(PRODUCTS, sql_checks={})
PATHS_TAKEN: collections.Counter = collections.Counter()


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    with private_lake(tmp_path_factory.mktemp("home")) as con:
        yield con
    print("\npaths taken:", dict(PATHS_TAKEN))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("files")


def _staged(con, job_id: str, dataset) -> list[tuple]:
    columns = ", ".join(f'"{c}"' for c in ("line", "brand", *dataset.columns))
    return sorted(con.execute(f'SELECT {columns} FROM staging."{dataset.name}" WHERE job_id = ?', [job_id]).fetchall())


def _rejected(con, job_id: str) -> list[tuple]:
    return sorted(
        con.execute(
            'SELECT line, "column", reason, "check", value, detail, raw FROM staging.rejected_rows WHERE job_id = ?',
            [job_id],
        ).fetchall(),
        key=repr,
    )


def stage_both_ways(con, path: Path, options: dict | None = None, chunk_rows: int = 1000, dataset=PRODUCTS):
    """Stage ``path`` the careful way and the fast way; assert the same outcome; return the fast job's counts."""
    outcomes = []
    for fast in (False, True):
        job = make_job(path, f"{path.stem}-{'fast' if fast else 'careful'}-{uuid.uuid4().hex[:6]}", options)
        try:
            counts = stage_file(con, job, dataset, path, chunk_rows, fast_path=fast)
        except FileRefused as exc:
            outcomes.append(("refused", str(exc)))
            continue
        outcomes.append(
            (
                (counts.rows_total, counts.rows_valid, counts.rows_rejected),
                _staged(con, job.id, dataset),
                _rejected(con, job.id),
            )
        )
        if fast:
            PATHS_TAKEN[counts.dialect.get("path"), counts.dialect.get("careful_because")] += 1
            fast_counts = counts
    careful, quick = outcomes
    assert quick[0] == careful[0], "the counts differ"
    if quick[0] != "refused":
        assert quick[1] == careful[1], "the staged rows differ"
        assert quick[2] == careful[2], "the rejected rows differ"
        return fast_counts
    return None


@pytest.mark.parametrize("case", [pytest.param(c, id=c["case"]) for c in CASES if "max_line_chars" not in c])
def test_the_fast_path_stages_every_corpus_file_as_the_careful_path_does(case, con):
    stage_both_ways(con, CORPUS / case["file"], case["options"], chunk_rows=2)


def test_most_corpus_files_take_the_fast_path(con):
    """The equivalence above means something only if the fast path really ran."""
    taken = collections.Counter()
    for case in CASES:
        if case["refused"] or "max_line_chars" in case:
            continue
        job = make_job(CORPUS / case["file"], f"{case['case']}-paths-{uuid.uuid4().hex[:6]}", case["options"])
        counts = stage_file(con, job, PRODUCTS, CORPUS / case["file"], 1000, fast_path=True)
        taken[counts.dialect["path"]] += 1
        if counts.dialect["path"] == "careful":
            assert counts.dialect["careful_because"]
    assert taken["fast"] >= 35, taken


# ---------------------------------------------------------------- damaged files, generated

ODD_VALUES = (
    "1e3",
    "+5",
    "007",
    "3.0",
    "-0",
    "٣",
    "1,5",
    "1.234,56",
    "12.5O",
    "nan",
    "inf",
    "-inf",
    " ",
    "0x10",
    "1_000",
    "9999999999.99",
    "10000000000",
    "0.001",
    ".5",
    "5.",
    "2024-02-30",
    "0999-01-01",
    "1899-12-31",
    "31.12.1899",
    "1/2/2024",
    "2024-1-5",
    "15.03.2024",
    "15/03/2024",
    "2262-01-01",
    "ACME-1",
    "acme-1001",
    "ÄCME-1001",
    "EUR ",
    "eur",
    "4006381333931",
    "4006381333932",
    "400638133393",
    "=cmd|' /C calc'!A0",
    '"',
    '""',
    'x"y',
    "€",
)


@st.composite
def damaged_files(draw) -> tuple[bytes, dict]:
    encoding = draw(st.sampled_from(("utf-8", "utf-8-sig", "utf-16-le", "cp1252")))
    delimiter = draw(st.sampled_from(DELIMITERS))
    newline = draw(st.sampled_from(("\n", "\r\n", "\n", "\r")))  # a lone CR now and then: careful path
    quote_all = draw(st.booleans())
    rows = draw(product_rows("cp1252" if encoding == "cp1252" else "utf-8"))
    rng = random.Random(draw(st.integers(0, 2**32)))
    lines = [write_record(draw(header_names()), delimiter, quote_all, newline)]
    for row in rows * draw(st.sampled_from((1, 1, 2))):  # twice: duplicate keys
        cells = cells_of(row)
        damage = rng.random()
        if damage < 0.15:
            cells[rng.randrange(len(cells))] = rng.choice(ODD_VALUES)
        record = write_record(cells, delimiter, quote_all, newline)
        if 0.15 <= damage < 0.22:  # a lost delimiter
            cut = record.find(delimiter, rng.randrange(len(record)))
            record = record[:cut] + record[cut + 1 :] if cut >= 0 else record
        elif 0.22 <= damage < 0.28:  # an extra delimiter or a lost quote
            at = rng.randrange(len(record) - len(newline))
            record = record[:at] + rng.choice((delimiter, '"', delimiter + delimiter)) + record[at:]
        elif 0.28 <= damage < 0.32:
            lines.append(rng.choice(("", " ", delimiter * 6, '""')) + newline)
        lines.append(record)
    text = "".join(lines)
    codec = encoding.removesuffix("-sig")
    data = BOMS.get(encoding, b"") + text.encode(codec, errors="replace")
    return data, {"encoding": encoding}


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(written=damaged_files(), chunk_rows=st.sampled_from((3, 1000)))
def test_the_fast_path_stages_damaged_files_as_the_careful_path_does(con, folder, written, chunk_rows):
    data, _ = written
    path = folder / f"{uuid.uuid4().hex}.csv"
    path.write_bytes(data)
    stage_both_ways(con, path, chunk_rows=chunk_rows)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(written=damaged_files())
def test_checks_without_sql_run_in_python_and_agree_with_the_careful_path(con, folder, written):
    data, _ = written
    path = folder / f"{uuid.uuid4().hex}.csv"
    path.write_bytes(data)
    stage_both_ways(con, path, dataset=PRODUCTS_PYTHON_CHECKS)


def test_the_generated_files_mostly_take_the_fast_path():
    """Run after the properties above (same module): they are vacuous if every file went the careful way."""
    fast = sum(n for (path, _), n in PATHS_TAKEN.items() if path == "fast")
    assert fast >= sum(PATHS_TAKEN.values()) // 2, dict(PATHS_TAKEN)


# ---------------------------------------------------------------- the pieces


def test_a_value_spanning_lines_is_read_by_the_careful_reader_and_the_rest_stays_fast(con, folder):
    path = folder / "spanning.csv"
    path.write_text(
        "sku,name,price,currency,stock\n"
        "ACME-1001,Cup,1.00,EUR,1\n"
        'ACME-1002,"Two\nlines",2.00,EUR,2\n'
        'ACME-1003,"Unclosed,3.00,EUR,3\n'
        "ACME-1004,Plate,4.00,EUR,4\n",
        encoding="utf-8",
    )
    counts = stage_both_ways(con, path)
    assert counts.dialect["path"] == "fast"
    assert (counts.rows_total, counts.rows_valid) == (4, 3)


def test_a_file_the_fast_path_cannot_read_says_why(con, folder):
    path = folder / "cr.csv"
    path.write_bytes(b"sku,name,price,currency,stock\rACME-1001,Cup,1.00,EUR,1\r")
    counts = stage_both_ways(con, path)
    assert counts.dialect["path"] == "careful"
    assert counts.dialect["careful_because"] == "lines ending in a lone CR"


@pytest.mark.parametrize(
    "pattern, safe",
    [
        (r"^[A-Z0-9]{2,8}-[A-Z0-9]{2,12}$", True),
        (r"\d+(\.\d+)?", True),
        (r"[^,]+", True),
        (r"\D+", False),  # RE2's \D takes non-ASCII digits that Python's \D does not
        (r"(?i)abc", False),
        (r"(?=a)a", False),
        (r"(a)\1", False),
        (r"a\Z", False),
    ],
)
def test_only_regexes_that_re2_reads_as_python_does_are_compiled(pattern, safe):
    assert compiled_sql._regex_is_safe(pattern) is safe


def test_the_products_dataset_compiles_entirely_to_sql():
    compiled = compiled_sql.compile_dataset(PRODUCTS)
    assert compiled.usable and not compiled.python_checks
    assert sorted(compiled.columns) == sorted(PRODUCTS.columns)
    without_sql = compiled_sql.compile_dataset(PRODUCTS_PYTHON_CHECKS)
    assert {c.check.name for c in without_sql.python_checks} == {
        "at_most_2_decimals",
        "ean13_check_digit",
        "plausible_date",
    }
