"""Item 5: exports wrote spreadsheet formulas unchanged, and the rejected-rows download checked only a
cell's first character, so `x;=cmd|...` ran in an Excel that splits on ';'."""

from __future__ import annotations

import csv
import io
import re

import openpyxl

import bulkimport as bi
from bulkimport import review_data
from tests.conftest import TOKENS, run_cli, who
from tests.security.support import staged

FORMULAS = [
    "=cmd|' /C calc'!A0",
    '+HYPERLINK("http://evil.example","x")',
    "-2+3",
    "@SUM(A1:A9)",
    "x;=cmd|' /C calc'!A0",
    "a,+b",
    "tab\t=1",
]
# A cell, or a part of one after ; , or tab, that a spreadsheet would run.
RUNS = re.compile(r"(^|[;,\t])[=+\-@\t\r]")
NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def would_run(cell: str) -> bool:
    return bool(RUNS.search(cell)) and not NUMBER.fullmatch(cell)


def risky_file(tmp_path):
    """Each formula as a product name: once in a valid row, once in a row rejected for its price."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sku", "name", "price", "currency", "stock"])
    for i, formula in enumerate(FORMULAS, start=1):
        writer.writerow([f"AB-{i:04d}", formula, "1.50", "EUR", i])
        writer.writerow([f"AC-{i:04d}", formula, "-1.00", "EUR", i])
    path = tmp_path / "risky.csv"
    path.write_text(out.getvalue())
    return path


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_no_csv_the_product_writes_holds_a_formula_and_numbers_stay_numbers(worker, tmp_path):
    job = staged(risky_file(tmp_path))
    assert (job.rows_valid, job.rows_rejected) == (len(FORMULAS), len(FORMULAS))
    outputs = {
        "cli staged": run_cli("export", job.id, "--staged", "-", user="ana").stdout,
        "cli rejected": run_cli("export", job.id, "--rejected", "-", user="ana").stdout,
        "dashboard rejected": review_data.download(job.id, "rejected", "csv", who("ana")).decode(),
        "dashboard staged": review_data.download(job.id, "staged", "csv", who("ana")).decode(),
    }
    bi.login(TOKENS["ana"])
    bi.export(job.id, "staged", tmp_path / "api.csv")
    outputs["api staged"] = (tmp_path / "api.csv").read_text()
    for where, text in outputs.items():
        rows = cells(text)
        live = [c for row in rows for c in row if would_run(c)]
        assert not live, f"{where}: {live}"
        assert "'=cmd|' /C calc'!A0" in text or "''=cmd" not in text
        assert any("x;'=cmd" in c for row in rows for c in row), f"{where}: the part after ';' is neutralised"
    staged_rows = cells(outputs["cli staged"])
    price = staged_rows[0].index("price")
    assert {row[price] for row in staged_rows[1:]} == {"1.50"}, "numbers stay numbers"
    rejected_rows = cells(outputs["cli rejected"])
    assert {row[rejected_rows[0].index("price")] for row in rejected_rows[1:]} == {"-1.00"}, "-1.00 stays a number"


def test_xlsx_exports_hold_text_cells_never_formulas(worker, tmp_path):
    job = staged(risky_file(tmp_path))
    run_cli("export", job.id, "--staged", str(tmp_path / "staged.xlsx"), "--format", "xlsx", user="ana")
    books = {
        "cli": openpyxl.load_workbook(tmp_path / "staged.xlsx"),
        "dashboard": openpyxl.load_workbook(io.BytesIO(review_data.download(job.id, "rejected", "xlsx", who("ana")))),
    }
    for where, book in books.items():
        values = [c for row in book.active.iter_rows() for c in row if c.value is not None]
        assert values and all(c.data_type == "s" for c in values), f"{where}: every cell is text"
        assert set(FORMULAS) <= {c.value for c in values}, f"{where}: values as written, no apostrophe"
