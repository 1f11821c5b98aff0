"""Reading plain lines in bulk gives exactly what reading one record at a time gives.

``read_chunks`` hands runs of plain lines (no quote, escape, NUL or bad byte) to a
bulk path that splits them on the delimiter; everything else goes through
``csv.reader`` one record at a time. The record-at-a-time path (``blocks=False``)
is the reference: for every corpus file, hostile variations of it and random text,
both must give the same rows, line numbers, raw text, rejects and chunk sizes,
also when the file is read in tiny blocks (a line or a \\r\\n split across blocks).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkimport.datasets import get_dataset
from bulkimport.errors import FileRefused
from bulkimport.stages import read

CORPUS = Path(__file__).resolve().parent / "data" / "csv"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
PRODUCTS = get_dataset("products")


def _read_all(path: Path, options: dict, chunk_rows: int, blocks: bool) -> dict:
    source = read.open_source(path, PRODUCTS, path.name, dict(options))
    chunks = list(read.read_chunks(path, PRODUCTS, chunk_rows, source, sheet=options.get("sheet"), blocks=blocks))
    frames = [c.frame for c in chunks]
    return {
        "frame": pd.concat(frames) if frames else None,
        "raws": {line: raw for c in chunks for line, raw in c.raws.items()},
        "rejects": [r for c in chunks for r in c.rejects],
        "sizes": [len(c.frame) + len(c.rejects) for c in chunks],
        "bytes_read": chunks[-1].bytes_read if chunks else 0,
    }


def _assert_same(path: Path, options: dict, chunk_rows: int) -> dict:
    try:
        bulk = _read_all(path, options, chunk_rows, blocks=True)
    except FileRefused as exc:
        with pytest.raises(FileRefused) as again:
            _read_all(path, options, chunk_rows, blocks=False)
        assert str(again.value) == str(exc)
        return {}
    single = _read_all(path, options, chunk_rows, blocks=False)
    if single["frame"] is None:
        assert bulk["frame"] is None
    else:
        pd.testing.assert_frame_equal(bulk["frame"], single["frame"])
    assert bulk["raws"] == single["raws"]
    assert sorted(bulk["rejects"], key=lambda r: (r.line, r.reason)) == sorted(
        single["rejects"], key=lambda r: (r.line, r.reason)
    )
    assert bulk["sizes"] == single["sizes"]  # chunks are filled to the same size
    # bytes_read only drives the progress bar; the bulk path counts whole lines, the other leaves out line ends
    assert single["bytes_read"] <= bulk["bytes_read"] <= path.stat().st_size
    return bulk


TEXT_CASES = [c for c in CASES if not c["file"].endswith(".xlsx")]


@pytest.mark.parametrize("case", TEXT_CASES, ids=[c["case"] for c in TEXT_CASES])
@pytest.mark.parametrize("block_chars", [7, 1 << 20])
def test_every_corpus_file_reads_the_same_in_bulk_and_one_record_at_a_time(case, block_chars, monkeypatch):
    monkeypatch.setattr(read.records, "BLOCK_CHARS", block_chars)
    if "max_line_chars" in case:
        monkeypatch.setattr(read.records, "MAX_LINE_CHARS", case["max_line_chars"])
    for chunk_rows in (2, 50_000):
        _assert_same(CORPUS / case["file"], case["options"], chunk_rows)


def test_a_large_plain_file_goes_through_the_bulk_path_and_agrees(tmp_path):
    rows = [f"SK-{i:06d},Name {i},{i % 90 + 1}.50,EUR,{i % 7},,2024-01-0{i % 9 + 1}" for i in range(30_000)]
    rows[100] = "SK-000100,only,three"  # missing cells
    rows[200] = ",,,,,,"  # blank
    rows[300] = 'SK-000300,"quoted, with comma",1.00,EUR,1,,'  # not plain: the csv path
    rows[400] = "SK-000400,extra,1.00,EUR,1,,,surplus"
    path = tmp_path / "plain.csv"
    path.write_text("sku,name,price,currency,stock,ean,launch_date\r\n" + "\r\n".join(rows) + "\r\n")
    bulk = _assert_same(path, {}, 5_000)
    source = read.open_source(path, PRODUCTS, path.name, {})
    in_blocks = sum(
        len(item.lines) for item in read.text_items(path, source.dialect) if isinstance(item, read.LineBlock)
    )
    # Every data line but the quoted one goes the bulk way, except the first line of each 1 MiB block
    # (read by csv.reader when a run of plain lines reaches the end of the block): this file has two blocks.
    assert 30_000 - 1 - 2 <= in_blocks <= 30_000 - 1
    assert {r.line: r.reason for r in bulk["rejects"]} == {102: "missing-cell", 202: "blank-row", 402: "extra-cell"}
    assert bulk["raws"][302] == rows[300]
    assert bulk["bytes_read"] == path.stat().st_size


LINES = st.lists(
    st.tuples(st.text(alphabet='ab,;"\t \x00é\\', max_size=12), st.sampled_from(["\n", "\r\n", "\r"])), max_size=40
)


@settings(max_examples=150, deadline=None)
@given(lines=LINES, block_chars=st.integers(1, 9), limit=st.integers(1, 20))
def test_buffered_lines_cut_text_into_lines_as_readline_does(lines, block_chars, limit):
    text = "".join(body + end for body, end in lines)
    expected, stream = [], io.StringIO(text, newline="")
    while line := stream.readline(limit):
        expected.append(line)
    old = read.records.BLOCK_CHARS
    read.records.BLOCK_CHARS = block_chars
    try:
        buffered = read.records._BufferedLines(io.StringIO(text, newline=""), '"')
        got = []
        while line := buffered.readline(limit):
            got.append(line)
    finally:
        read.records.BLOCK_CHARS = old
    assert got == expected


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.lists(st.text(alphabet='ab,"é \x00', max_size=5), min_size=1, max_size=9),
            st.sampled_from(["\n", "\r\n", "\r"]),
        ),
        max_size=30,
    ),
    block_chars=st.sampled_from([3, 11, 1 << 20]),
    chunk_rows=st.integers(1, 8),
)
def test_random_files_read_the_same_in_bulk_and_one_record_at_a_time(tmp_path_factory, lines, block_chars, chunk_rows):
    header = "sku,name,price,currency,stock,ean,launch_date\n"
    text = header + "".join(",".join(cells) + end for cells, end in lines)
    path = tmp_path_factory.mktemp("random") / "random.csv"
    path.write_bytes(text.encode("utf-8"))
    old = read.records.BLOCK_CHARS
    read.records.BLOCK_CHARS = block_chars
    try:
        _assert_same(path, {"delimiter": ",", "quote": '"'}, chunk_rows)
    finally:
        read.records.BLOCK_CHARS = old
