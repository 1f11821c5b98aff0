"""What a file must look like, shown to people: the Datasets view (AppTest), `datasets list/show`, the templates."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd

from bulkimport import dataset_docs, ui, workflow
from bulkimport.datasets import get_dataset
from tests.conftest import EXAMPLE, run_cli
from tests.test_pages import open_view, table_with, texts

PRODUCTS = get_dataset("products")


def test_checks_read_as_plain_words():
    docs = {c.name: c for c in dataset_docs.columns(PRODUCTS)}
    assert docs["sku"].checks == ["matches ACME-1001 (^[A-Z0-9]{2,8}-[A-Z0-9]{2,12}$)"]
    assert docs["currency"].checks == ["one of EUR, USD, GBP, CHF, SEK, NOK, DKK, PLN, … (12 in all)"]
    assert docs["stock"].checks == ["0 or more"]
    assert docs["price"].checks == ["0 or more", "at most 9,999,999,999.99", "at most 2 decimals"]
    assert docs["name"].checks == ["1 to 200 characters"]
    assert (docs["sku"].required, docs["sku"].key, docs["ean"].required) == (True, True, False)
    assert docs["launch_date"].kind == "date (YYYY-MM-DD or DD.MM.YYYY or DD/MM/YYYY)"
    assert docs["price"].kind == "number, up to 2 decimals (1234.56 or 1.234,56)"
    assert docs["stock"].aliases == ["qty", "quantity", "on hand"]
    assert dataset_docs.pattern_example(r"^L-[0-9]{4}-[0-9]{3}$") == "L-1234-123"


def test_templates_have_the_header_and_the_workbook_explains_each_column(home, tmp_path):
    csv_text = dataset_docs.template_csv(PRODUCTS).decode()
    assert csv_text == "sku,name,price,currency,stock,ean,launch_date\n"

    book = openpyxl.load_workbook(io.BytesIO(dataset_docs.template_xlsx(PRODUCTS)))
    assert book.sheetnames == ["products", "Columns"]
    assert [c.value for c in book["products"][1]] == PRODUCTS.columns
    assert book["products"]["A1"].font.bold and not book["products"]["F1"].font.bold, "required columns in bold"
    explained = pd.DataFrame(
        book["Columns"].iter_rows(min_row=5, values_only=True), columns=[c.value for c in book["Columns"][4]]
    ).set_index("Column")
    assert list(explained.index) == PRODUCTS.columns
    assert explained.loc["currency", "Checks"].startswith("one of EUR, USD")
    assert explained.loc["sku", "Key"] == "yes" and explained.loc["ean", "Required"] == "no"
    assert explained.loc["stock", "Other header names accepted"] == "qty, quantity, on hand"

    # A filled-in template is read the way the worker reads a file: every column mapped, nothing missing.
    for name, data in (
        ("filled.csv", (csv_text + "ACME-1001,Cup,4.50,EUR,1,,\n").encode()),
        ("filled.xlsx", _filled_workbook()),
    ):
        upload = workflow.store_upload(io.BytesIO(data), name)
        found = workflow.preview(upload, "products")
        workflow.discard_upload(upload)
        assert found.missing == [] and set(found.mapping.values()) == set(PRODUCTS.columns), name
        assert found.sample["sku"].tolist() == ["ACME-1001"]


def _filled_workbook() -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(dataset_docs.template_xlsx(PRODUCTS)))
    book["products"].append(["ACME-1001", "Cup", 4.5, "EUR", 1, None, None])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_datasets_list_and_show_from_the_cli(home):
    listed = json.loads(run_cli("datasets", "list", "--json").stdout)
    assert [(d["name"], d["key"], d["version"]) for d in listed] == [("products", ["sku"], PRODUCTS.version)]
    shown = run_cli("datasets", "show", "products").stdout
    assert f"products (version {PRODUCTS.version})" in shown
    assert "lake: no tables yet" in shown
    assert "currency  text  [VARCHAR]  required\n    - one of EUR, USD, GBP" in shown
    assert (
        "stock  whole number  [BIGINT]  required\n    - 0 or more\n    also accepted as: qty, quantity, on hand"
        in shown
    )
    assert (
        run_cli("datasets", "template", "products", "-o", "-").stdout
        == "sku,name,price,currency,stock,ean,launch_date\n"
    )


def test_the_datasets_view_shows_columns_templates_and_the_lake_and_drafts_for_admins_only(redis_url):
    at = open_view("views/datasets.py", "ana")
    assert at.title[0].value == "Datasets"
    columns = table_with(at, "checks").set_index("column")
    assert columns.loc["sku", "checks"] == "matches ACME-1001 (^[A-Z0-9]{2,8}-[A-Z0-9]{2,12}$)"
    assert columns.loc["sku", "key"] == "yes" and columns.loc["ean", "required"] == "no"
    assert columns.loc["currency", "checks"].startswith("one of EUR, USD")
    assert columns.loc["price", "other header names"] == "unit price, price eur, price (eur), net price"
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Template (CSV)", "Template (Excel)"]
    assert f"version {PRODUCTS.version}" in texts(at.caption)
    # The dashboard brought the lake's tables in step on start.
    assert "The lake's tables follow this definition." in texts(at.success)
    assert not at.get("file_uploader"), "drafting is for admins"

    admin = open_view("views/datasets.py", "root")
    admin.text_input(key=ui.DATASETS_DRAFT_NAME).input("catalogue").run()
    admin.file_uploader(key=ui.DATASETS_DRAFT_FILE).upload("products.csv", EXAMPLE.read_bytes(), "text/csv").run()
    assert not admin.exception, admin.exception
    assert "Download catalogue.py" in [b.proto.label for b in admin.get("download_button")]
    [code] = admin.code
    assert "DATASET = Dataset(" in code.value and 'name="catalogue"' in code.value
    assert "all 16 rows of the sample pass it" in texts(admin.caption)
