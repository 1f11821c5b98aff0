"""Issue 15 through the CLI and the Python API, with a real redis-server and real worker processes:
fixing rejected rows (the downloaded error file, repair suggestions), write modes, the same file twice."""

import csv
import json

import pytest

import bulkimport as bi
from bulkimport.errors import DuplicateFile, InvalidTransition
from tests.conftest import EXAMPLE, TOKENS, run_cli, write_csv

pytestmark = pytest.mark.e2e


def submit(path, *extra: str, brand: str = "acme") -> dict:
    result = run_cli(
        "submit", str(path), "--dataset", "products", "--brand", brand, "--wait", "--json", *extra, user="ana"
    )
    return json.loads(result.stdout)


def status(job_id: str) -> dict:
    return json.loads(run_cli("status", job_id, "--json", user="root").stdout)


def committed(path, *extra: str) -> dict:
    job = submit(path, *extra)
    run_cli("approve", job["id"], "--wait", "--confirm-deletes", user="olga")
    return status(job["id"])


def test_the_downloaded_error_file_fixed_in_a_spreadsheet_comes_back_with_bulkimport_fix(worker, tmp_path):
    job = submit(EXAMPLE)
    errors = tmp_path / "fix-me.csv"
    run_cli("export", job["id"], "--rejected", str(errors), user="root")
    rows = list(csv.DictReader(errors.open(encoding="utf-8")))
    for row in rows:
        if row["line"] == "6":
            row["price"] = "3.00"
        if row["line"] == "8":
            row["stock"] = "8"
        if row["line"] == "10":
            row["sku"] = "acme-1009"  # still wrong
    with errors.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    fixed = run_cli("fix", job["id"], "--from", str(errors), "--wait", user="ana")
    assert "ana fixed 3 rejected row(s): line 6 price '-3.00' → '3.00'" in fixed.stderr
    assert "staged now: line(s) 6, 8" in fixed.stdout and "still rejected: line(s) 10" in fixed.stdout
    after = status(job["id"])
    assert (after["status"], after["rows_total"], after["rows_valid"], after["rows_rejected"]) == ("staged", 16, 9, 7)
    timeline = run_cli("status", job["id"], user="root").stdout
    assert "staged -> fixing  by ana" in timeline and "2 fixed row(s) staged, 1 still rejected (line 10)" in timeline
    assert "by worker " in timeline and " on " in timeline

    run_cli("approve", job["id"], "--wait", user="olga")
    assert bi.production("products", "acme").count("*").fetchone()[0] == 9
    assert sorted(bi.fixes(job["id"]).line) == [6, 8, 10]


def test_repair_suggestions_are_listed_and_accepted_with_the_cli(worker, tmp_path):
    damaged = write_csv(
        tmp_path / "damaged.csv",
        ['AB-0001,"Jug,4.00,EUR,5,,', "AB-0002,Cup, large,4.50,EUR,10,,", "AB-0003,Pot,4.00,EUR,5,,"],
    )
    job = submit(damaged)
    assert (job["rows_valid"], job["rows_rejected"]) == (1, 2)
    shown = run_cli("status", job["id"], user="root").stdout
    assert "line 2: drop the stray quote at character 9" in shown
    assert "line 3: join 'Cup' and ' large' into one cell: 'Cup, large'" in shown
    assert bi.staged(job["id"]).count("*").fetchone()[0] == 1, "suggestions are never applied on their own"

    run_cli("fix", job["id"], "--accept-suggestions", "--wait", user="ana")
    assert (status(job["id"])["rows_valid"], status(job["id"])["rows_rejected"]) == (3, 0)
    audit = bi.fixes(job["id"])
    assert audit.suggestion.all() and set(audit.fixed_by) == {"ana"}
    assert "accepted the suggestion" in run_cli("status", job["id"], user="root").stdout


def test_the_api_fixes_rows_by_line_and_refuses_what_cannot_be_fixed(worker):
    bi.login(TOKENS["ana"])
    job = bi.submit(EXAMPLE, dataset="products", brand="acme")
    bi.wait(job.id)
    with pytest.raises(bi.BulkImportError, match="line.s. 2 of job .* are not rejected"):
        bi.fix(job.id, {2: {"price": "1.00"}})
    bi.fix(job.id, {6: {"price": "3.00"}, 17: {"price": "1.25"}})
    assert bi.job(job.id).status in ("fixing", "staged")
    done = bi.wait(job.id)
    assert (done.rows_valid, done.rows_rejected) == (9, 7)
    assert bi.staged(job.id).filter("line = 17").select("price").fetchone()[0] == pytest.approx(1.25)
    bi.login(TOKENS["root"])
    bi.fix(job.id, {7: {"currency": "EUR"}})  # an admin fixes a row ...
    bi.wait(job.id)
    with pytest.raises(bi.BulkImportError, match="root fixed rows of this job and so may not approve it"):
        bi.approve(job.id)  # ... and so, like the uploader, may not approve it
    bi.login(TOKENS["olga"])
    bi.approve(job.id)
    bi.wait(job.id, until=["committed", "failed"])
    with pytest.raises(InvalidTransition, match="only the rejected rows of a staged job can be fixed"):
        bi.fix(job.id, {8: {"stock": "1"}})


def test_replace_deletes_with_confirmation_shows_the_mode_everywhere_and_revert_restores(worker, tmp_path):
    base = committed(write_csv(tmp_path / "base.csv", [f"AB-000{i},p{i},{i}.00,EUR,1,," for i in range(1, 6)]))
    catalogue = write_csv(tmp_path / "catalogue.csv", ["AB-0001,p1,1.50,EUR,1,,", "AB-0006,p6,6.00,EUR,1,,"])
    job = submit(catalogue, "--mode", "replace")
    assert job["mode"] == "replace"
    assert "replace" in run_cli("status", job["id"], user="root").stdout.splitlines()[0]
    listed = run_cli("jobs", user="root").stdout.splitlines()
    assert listed[0].split("\t")[3] == "mode" and listed[1].split("\t")[3] == "replace"
    assert bi.diff(job["id"]).rows_to_delete == 4

    refused = run_cli("approve", job["id"], check=False, user="olga")
    assert refused.returncode == 2
    assert "approving deletes 4 of the 5 rows of brand acme in production.products (80%)" in refused.stderr
    assert "--confirm-deletes" in refused.stderr
    assert status(job["id"])["status"] == "staged"
    done = json.loads(run_cli("approve", job["id"], "--wait", "--confirm-deletes", "--json", user="olga").stdout)
    assert (done["status"], done["rows_inserted"], done["rows_updated"], done["rows_deleted"]) == ("committed", 1, 1, 4)
    assert sorted(bi.production("products", "acme").df()["sku"]) == ["AB-0001", "AB-0006"]

    run_cli("revert", job["id"], "--wait", user="olga")
    restored = bi.production("products", "acme").df()
    assert sorted(restored["sku"]) == [f"AB-000{i}" for i in range(1, 6)]
    assert set(restored["job_id"]) == {base["id"]}


def test_append_rejects_keys_already_in_production_as_conflicts(worker, tmp_path):
    committed(write_csv(tmp_path / "base.csv", ["AB-0001,cup,1.00,EUR,1,,"]))
    job = submit(
        write_csv(tmp_path / "more.csv", ["AB-0001,cup,9.99,EUR,1,,", "AB-0002,jug,2.00,EUR,1,,"]), "--mode", "append"
    )
    assert (job["mode"], job["rows_valid"], job["rows_rejected"]) == ("append", 1, 1)
    conflict = bi.rejected(job["id"]).df().iloc[0]
    assert (conflict.line, conflict.reason) == (2, "conflict") and "already in production" in conflict.detail
    run_cli("approve", job["id"], "--wait", user="olga")
    prices = dict(bi.production("products", "acme").select("sku, price").fetchall())
    assert {k: float(v) for k, v in prices.items()} == {"AB-0001": 1.0, "AB-0002": 2.0}


def test_the_api_refuses_the_same_file_twice_unless_allowed(worker):
    bi.login(TOKENS["ana"])
    first = bi.submit(EXAMPLE, dataset="products", brand="acme")
    bi.wait(first.id)
    with pytest.raises(DuplicateFile, match=f"already staged as job {first.id}") as refused:
        bi.submit(EXAMPLE, dataset="products", brand="acme")
    assert refused.value.job_id == first.id
    assert len(bi.jobs()) == 1
    again = bi.submit(EXAMPLE, dataset="products", brand="acme", allow_duplicate=True)
    assert bi.wait(again.id).status == "staged"
    other_brand = bi.submit(EXAMPLE, dataset="products", brand="globex")
    assert other_brand.brand == "globex"
