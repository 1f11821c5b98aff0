"""What the preview shows of a damaged file, in the library, the CLI and the upload form (issue 16).

The readings weighed and why one was chosen; a header cell that lost its delimiter,
as a finding a person can override; a first line that is data, offered as "no
header: columns in dataset order" and refused without the flag.
"""

from __future__ import annotations

from pathlib import Path

from bulkimport import ui, workflow
from tests.conftest import run_cli
from tests.test_pages import open_view, table_with, texts, upload

COMMA_SPACE = (
    "sku, name, price, currency, stock, ean, launch_date\n"
    'ACME-1001, "Espresso cup, small", 4.50, EUR, 120, , \n'
    'ACME-1002, "Latte glass", 6.90, EUR, 80, , \n'
)
LOST_DELIMITER = (
    "sku,name,price,currency,stockean,launch_date\n"
    "ACME-1001,Espresso cup,4.50,EUR,120,4006381333931,2024-03-01\n"
    "ACME-1002,Latte glass,6.90,EUR,80,,\n"
)
HEADERLESS = "ACME-1001,Espresso cup,4.50,EUR,120,4006381333931,2024-03-01\nACME-1002,Latte glass,6.90,EUR,80,,\n"


def preview_of(tmp_path: Path, text: str, options: dict | None = None) -> workflow.Preview:
    path = tmp_path / "file.csv"
    path.write_text(text, encoding="utf-8")
    stored = workflow.store_upload(path)
    try:
        return workflow.preview(stored, "products", options)
    finally:
        workflow.discard_upload(stored)


def test_the_preview_lists_the_readings_weighed_and_why_it_chose_one(home, tmp_path):
    found = preview_of(tmp_path, COMMA_SPACE)

    chosen, *others = found.readings
    assert chosen["chosen"] and chosen["skip_initial_space"] and chosen["delimiter"] == ","
    assert chosen["rows_read_cleanly"] == chosen["sample_rows"] == 2
    assert "names 7 dataset column(s)" in chosen["why"]
    kept = next(r for r in others if r["delimiter"] == "," and r["quote"] == '"' and not r["skip_initial_space"])
    assert kept["why"] == "reads 0 of 2 sample rows cleanly, not 2", "quoted cells after a space are not read as quoted"
    assert found.sample["name"].tolist() == ["Espresso cup, small", "Latte glass"]


def test_a_header_cell_that_lost_its_delimiter_is_a_finding_that_can_be_overridden(home, tmp_path):
    found = preview_of(tmp_path, LOST_DELIMITER)
    assert found.header == ["sku", "name", "price", "currency", "stock", "ean", "launch_date"]
    assert found.missing == []
    assert found.dialect["header_split"] == [4, 5]
    assert "header cell 'stockean' was read as 'stock' and 'ean'" in found.notes[0]
    assert found.sample["ean"].tolist() == ["4006381333931", None]

    as_written = preview_of(tmp_path, LOST_DELIMITER, {"header_split": "none"})
    assert "stockean" in as_written.header and as_written.missing == ["stock"] and not as_written.notes


def test_the_cli_offers_no_header_for_a_headerless_file_and_reads_it_with_the_flag(home, tmp_path):
    path = tmp_path / "headerless.csv"
    path.write_text(HEADERLESS, encoding="utf-8")

    refused = run_cli("preview", str(path), "--dataset", "products", check=False)
    assert refused.returncode == 2
    assert "use --no-header" in refused.stderr

    read = run_cli("preview", str(path), "--dataset", "products", "--no-header")
    assert "no header line" in read.stdout
    assert "ACME-1001" in read.stdout and "ACME-1002" in read.stdout


def test_the_upload_form_offers_no_header_and_reads_every_line_as_a_row(redis_url):
    at = open_view("views/upload.py", "ana")
    upload(at, "headerless.csv", HEADERLESS.encode())
    assert "the dataset's checks in the dataset's column order" in texts(at.info)
    assert at.button(key=ui.UPLOAD_SUBMIT).disabled

    at.checkbox(key=ui.UPLOAD_NO_HEADER).check().run()

    assert not at.exception, at.exception
    assert "no header line" in texts(at.markdown)
    assert table_with(at, "line")["line"].tolist() == [1, 2], "the first line is a row"
    assert not at.button(key=ui.UPLOAD_SUBMIT).disabled


def test_the_upload_form_shows_a_lost_delimiter_and_can_read_the_header_as_written(redis_url):
    at = open_view("views/upload.py", "ana")
    upload(at, "lost.csv", LOST_DELIMITER.encode())
    assert "header cell 'stockean' was read as 'stock' and 'ean'" in texts(at.warning)
    assert table_with(at, "line")["stock"].tolist() == ["120", "80"]

    at.checkbox(key=ui.UPLOAD_HEADER_AS_WRITTEN).check().run()

    assert "Required column(s) missing: stock" in texts(at.error)
    assert at.button(key=ui.UPLOAD_SUBMIT).disabled
