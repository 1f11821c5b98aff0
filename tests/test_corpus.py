"""Every file of the reading corpus (tests/data/csv) through the real pipeline, on a real DuckLake.

The files and their expected outcomes (cases.json) are written by
tests/data/csv/make_corpus.py; see its docstring for what each field means.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bulkimport.datasets import get_dataset
from bulkimport.errors import FileRefused
from bulkimport.stages import read
from bulkimport.stages.review import rejected_for_fixing, rejected_rows
from bulkimport.stages.stage import stage_file
from tests.lake_support import make_job, private_lake, staged_values

CORPUS = Path(__file__).resolve().parent / "data" / "csv"
GENERATOR = CORPUS / "make_corpus.py"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
PRODUCTS = get_dataset("products")
# Small chunks, so that every case also crosses chunk boundaries.
CHUNK_ROWS = 2

# Cases the pipeline does not get right yet: case name -> why.
KNOWN_BUGS: dict[str, str] = {}


def _param(case: dict):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case["case"]])] if case["case"] in KNOWN_BUGS else []
    return pytest.param(case, id=case["case"], marks=marks)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    """One real DuckLake on disk for the whole corpus; each case is its own job."""
    with private_lake(tmp_path_factory.mktemp("home")) as con:
        yield con


def _rejected(con, job) -> list[dict]:
    frame = rejected_rows(con, job).df()
    return [
        {k: (None if v is None or v != v else v) for k, v in r.items()} | {"line": int(r["line"])}
        for r in frame.to_dict("records")
    ]


def _key(reject: dict) -> tuple:
    return reject["line"], reject["reason"], reject["column"] or ""


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_corpus_file_stages_and_rejects_exactly_what_is_expected(case, con, monkeypatch):
    """Exact staged rows, exact rejected lines and reasons, and every record accounted for."""
    if "max_line_chars" in case:
        monkeypatch.setattr(read.records, "MAX_LINE_CHARS", case["max_line_chars"])
    path = CORPUS / case["file"]
    job = make_job(path, case["case"], case["options"])

    if case["refused"]:
        with pytest.raises(FileRefused) as refused:
            stage_file(con, job, PRODUCTS, path, CHUNK_ROWS)
        for part in case["error"]:
            assert part in str(refused.value)
        return

    counts = stage_file(con, job, PRODUCTS, path, CHUNK_ROWS)
    assert staged_values(con, job, PRODUCTS) == case["staged"]

    rejected = _rejected(con, job)
    assert sorted(map(_key, rejected)) == sorted(map(_key, case["rejected"]))
    found = {_key(r): r for r in rejected}
    for expected in case["rejected"]:
        actual = found[_key(expected)]
        for field in ("value", "raw"):
            if field in expected:
                assert actual[field] == expected[field], (expected["line"], field)
        if "detail" in expected:
            assert expected["detail"] in actual["detail"], expected["line"]

    # Every record of the file is accounted for, once.
    rejected_lines = {r["line"] for r in rejected}
    assert not rejected_lines & {r["line"] for r in case["staged"]}
    assert len(case["staged"]) + len(rejected_lines) == case["rows"]
    assert (counts.rows_total, counts.rows_valid, counts.rows_rejected) == (
        case["rows"],
        len(case["staged"]),
        len(rejected_lines),
    )

    for name, value in case.get("dialect", {}).items():
        assert counts.dialect[name] == value, name
    if "mapping" in case:
        assert counts.mapping == case["mapping"]
    if "fixing" in case:
        staged_job = dataclasses.replace(job, dialect=counts.dialect, mapping=counts.mapping)
        fixing = {r["line"]: r for r in rejected_for_fixing(con, staged_job).to_dict("records")}
        for expected in case["fixing"]:
            actual = fixing[expected["line"]]
            assert {k: actual[k] for k in expected} == expected


def test_every_corpus_file_has_a_case_and_every_case_a_file():
    files = {p.name for p in CORPUS.iterdir() if p.is_file()} - {"cases.json", GENERATOR.name}
    assert files == {c["file"] for c in CASES}
    assert len({c["case"] for c in CASES}) == len(CASES)


def test_the_generator_reproduces_the_committed_corpus_byte_for_byte(tmp_path):
    subprocess.run([sys.executable, str(GENERATOR), str(tmp_path)], check=True, capture_output=True)
    written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in CORPUS.iterdir() if p.is_file() and p != GENERATOR}
    assert sorted(written) == sorted(committed)
    assert [name for name in written if written[name] != committed[name]] == []
