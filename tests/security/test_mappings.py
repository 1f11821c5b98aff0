"""Item 2: a mapping one brand chose was applied silently to another brand's file with the same header."""

from __future__ import annotations

import json

import bulkimport as bi
from tests.conftest import TOKENS, run_cli, write_csv
from tests.security.support import staged

ROWS = [
    "SKU-0001,Cup,1.00,EUR,1,4006381333931,2024-03-01",
    "SKU-0002,Jug,2.00,EUR,2,5901234123457,2024-03-02",
    "SKU-0003,Lid,3.00,EUR,3,1234567890123,2024-03-03",  # a wrong EAN-13 check digit
    "SKU-0004,Mug,4.00,EUR,4,4006381333931,2024-02-30",  # no such date
]


def test_one_brands_mapping_is_never_applied_to_another_brands_file(worker, tmp_path):
    path = write_csv(tmp_path / "catalogue.csv", ROWS)
    # acme's analyst ignores ean and launch_date for their file (as the dashboard's mapping table can).
    mapping = {"sku": "sku", "name": "name", "price": "price", "currency": "currency", "stock": "stock"}
    acme = staged(path, "acme", mapping={**mapping, "ean": None, "launch_date": None})
    assert (acme.rows_valid, acme.rows_rejected) == (4, 0)

    done = run_cli("submit", str(path), "--dataset", "products", "--brand", "globex", "--wait", "--json", user="ana")
    globex = json.loads(done.stdout)
    assert (globex["rows_valid"], globex["rows_rejected"]) == (2, 2), "header matching: ean and dates checked"
    assert globex["mapping"]["ean"] == "ean" and globex["mapping"]["launch_date"] == "launch_date"
    assert (
        "mapping: by header names and aliases"
        in run_cli(
            "submit", str(path), "--dataset", "products", "--brand", "globex", "--allow-duplicate", user="ana"
        ).stderr
    ), "the CLI says which mapping it used"

    bi.login(TOKENS["olga"])
    bi.approve(globex["id"])
    assert bi.wait(globex["id"], until=["committed", "failed"], timeout=120).status == "committed"
    rows = bi.production("products", brand="globex").df()
    assert rows["ean"].notna().all() and rows["launch_date"].notna().all()
    assert sorted(rows["sku"]) == ["SKU-0001", "SKU-0002"], "rows that should be rejected are not inserted"


def test_a_remembered_mapping_is_proposed_at_preview_to_its_own_brand_only(worker, tmp_path):
    path = write_csv(tmp_path / "erp.csv", ["AB-0001,Cup,1.00,EUR,1"], header="Artikel,Naam,Prijs,Munt,Voorraad")
    mapping = {"Artikel": "sku", "Naam": "name", "Prijs": "price", "Munt": "currency", "Voorraad": "stock"}
    staged(path, "acme", mapping=mapping)

    own = run_cli("preview", str(path), "--dataset", "products", "--brand", "acme", user="ana")
    assert "the mapping brand acme chose last time" in own.stdout and "--map 'Artikel=sku'" in own.stdout
    other = run_cli("preview", str(path), "--dataset", "products", "--brand", "globex", check=False, user="ana")
    assert "chose last time" not in other.stdout and other.returncode == 2, "globex gets header matching"
    refused = run_cli("preview", str(path), "--dataset", "products", "--brand", "acme", check=False, user="otto")
    assert refused.returncode == 2 and "may not import data for brand 'acme'" in refused.stderr
    jobs_before = len(bi.jobs())
    done = run_cli(
        "submit",
        *(str(path), "--dataset", "products", "--brand", "acme", "--allow-duplicate", "--wait", "--json"),
        check=False,
        user="ana",
    )
    # Without --map nothing remembered is applied: header matching finds no sku, refused before a job exists.
    assert done.returncode == 2 and "lacks required column(s) sku" in done.stderr, done.stderr
    assert len(bi.jobs()) == jobs_before
