"""The stages as plain functions: a real DuckLake on disk, no broker."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from bulkimport import lake, registry
from bulkimport.datasets import get_dataset
from bulkimport.errors import ApprovalOutdated, FileRefused, RevertRefused
from bulkimport.sql import current_snapshot
from bulkimport.stages.commit import commit_job, revert_job
from bulkimport.stages.review import diff, fingerprint, rejected_rows, staged_rows
from bulkimport.stages.stage import stage_file
from tests.conftest import EXAMPLE

HEADER = "sku,name,price,currency,stock,ean,launch_date\n"
PRODUCTS = get_dataset("products")


@pytest.fixture
def con(home):
    with lake.session() as con:
        yield con


def make_job(path: Path, job_id: str = "job1", brand: str = "acme") -> registry.Job:
    return registry.create(
        job_id=job_id,
        dataset="products",
        brand=brand,
        file_name=path.name,
        file_path=str(path),
        file_sha256="0" * 64,
        file_bytes=path.stat().st_size,
        created_by="ana",
    )


def stage(con, text_or_path, tmp_path, job_id="job1", brand="acme", chunk_rows=1000):
    if isinstance(text_or_path, Path):
        path = text_or_path
    else:
        path = tmp_path / f"{job_id}.csv"
        path.write_text(text_or_path, encoding="utf-8")
    job = make_job(path, job_id, brand)
    return job, stage_file(con, job, PRODUCTS, path, chunk_rows)


def test_example_file_counts_add_up_and_rejects_keep_line_column_and_reason(con, tmp_path):
    job, counts = stage(con, EXAMPLE, tmp_path)
    assert (counts.rows_total, counts.rows_valid, counts.rows_rejected) == (16, 7, 9)
    rejects = rejected_rows(con, job).df()
    by_line = {row.line: (row.column, row.reason, row.value) for row in rejects.itertuples()}
    assert by_line[6] == ("price", "constraint-error", "-3.00")
    assert by_line[8] == ("stock", "type-error", "ten")
    assert by_line[9][1] == "constraint-error"  # 7.499 has three decimals
    assert by_line[14] == ("sku", "duplicate-key", "ACME-1002")
    assert by_line[17][:2] == ("price", "missing-value")
    assert rejects.loc[rejects.line == 6, "raw"].item() == "ACME-1005,Knock box,-3.00,EUR,40,,"
    assert staged_rows(con, job, PRODUCTS).df()["line"].tolist() == [2, 3, 4, 5, 13, 15, 16]


def test_one_bad_cell_rejects_its_row_not_the_file(con, tmp_path):
    rows = "".join(f"AB-{i:04d},n{i},1.00,EUR,{i},,\n" for i in range(30_000))
    text = HEADER + rows + "AB-X999,late bad row,1.00,EUR,notanumber,,\n"
    job, counts = stage(con, text, tmp_path, chunk_rows=7_000)
    assert (counts.rows_total, counts.rows_valid, counts.rows_rejected) == (30_001, 30_000, 1)
    assert rejected_rows(con, job).df()["line"].tolist() == [30_002]


def test_duplicate_keys_across_chunks_reject_every_copy_after_the_first(con, tmp_path):
    text = HEADER + "AB-0001,first,1.00,EUR,1,,\n" + "AB-0002,x,1.00,EUR,1,,\n" * 2 + "AB-0001,again,2.00,EUR,1,,\n"
    job, counts = stage(con, text, tmp_path, chunk_rows=2)
    assert (counts.rows_valid, counts.rows_rejected) == (2, 2)
    rejects = rejected_rows(con, job).df()
    assert rejects["line"].tolist() == [4, 5]
    assert set(rejects["reason"]) == {"duplicate-key"}
    assert "already appears on line 2" in rejects.loc[rejects.line == 5, "detail"].item()


def test_structural_errors_reject_the_row_with_a_reason(con, tmp_path):
    text = (
        HEADER
        + "AB-0001,ok,1.00,EUR,1,,\n"
        + "AB-0002,short,1.00\n"
        + "\n"
        + "AB-0003,long,1.00,EUR,1,,,surprise\n"
        + 'AB-0004,"multi\nline",1.00,EUR,1,,\n'
        + "AB-0005,last,1.00,EUR,1,,\n"
    )
    job, counts = stage(con, text, tmp_path)
    rejects = {r.line: r.reason for r in rejected_rows(con, job).df().itertuples()}
    assert rejects == {3: "missing-cell", 4: "blank-row", 5: "extra-cell"}
    assert staged_rows(con, job, PRODUCTS).df()["line"].tolist() == [2, 6, 8]  # the quoted newline spans 6-7
    assert counts.rows_total == counts.rows_valid + counts.rows_rejected == 6


def test_semicolon_files_are_sniffed(con, tmp_path):
    text = HEADER.replace(",", ";") + "AB-0001;ok;1.00;EUR;1;;\n"
    _, counts = stage(con, text, tmp_path)
    assert counts.rows_valid == 1


def test_missing_required_column_refuses_the_file_naming_what_was_expected(con, tmp_path):
    with pytest.raises(FileRefused, match=r"lacks required column\(s\) price \(closest in file: 'prices'\)"):
        stage(con, "sku,name,prices,currency,stock\nAB-0001,x,1,EUR,1\n", tmp_path)


def test_empty_file_is_refused(con, tmp_path):
    with pytest.raises(FileRefused, match="empty"):
        stage(con, "", tmp_path)


def test_staging_twice_replaces_the_first_attempt(con, tmp_path):
    job, _ = stage(con, EXAMPLE, tmp_path)
    stage_file(con, job, PRODUCTS, EXAMPLE, 1000)
    assert staged_rows(con, job, PRODUCTS).count("*").fetchone()[0] == 7
    assert rejected_rows(con, job).count("*").fetchone()[0] == 9


def test_commit_merges_by_brand_and_key_and_is_idempotent(con, tmp_path):
    first, _ = stage(con, HEADER + "AB-0001,cup,1.00,EUR,1,,\nAB-0002,jug,2.00,EUR,2,,\n", tmp_path, "first")
    assert commit_job(con, first, PRODUCTS, "op").rows_inserted == 2
    second, _ = stage(
        con,
        HEADER + "AB-0001,cup,1.50,EUR,1,,\nAB-0002,jug,2.00,EUR,2,,\nAB-0003,new,3.00,EUR,3,,\n",
        tmp_path,
        "second",
    )
    other_brand, _ = stage(con, HEADER + "AB-0001,cup,9.99,EUR,1,,\n", tmp_path, "other", brand="globex")
    assert diff(con, second, PRODUCTS).to_dict() == {
        "rows_to_insert": 1,
        "rows_to_update": 1,
        "rows_unchanged": 1,
        "changed_columns": {"price": 1},
        "rows_to_delete": 0,
        "rows_conflicting": 0,
        "production_rows": 0,
    }
    result = commit_job(con, second, PRODUCTS, "op")
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (1, 1, 1)
    again = commit_job(con, second, PRODUCTS, "op")
    assert again.already_committed
    commit_job(con, other_brand, PRODUCTS, "op")
    rows = con.sql("SELECT brand, sku, price, job_id FROM production.products ORDER BY brand, sku").fetchall()
    assert [(b, s, float(p), j) for b, s, p, j in rows] == [
        ("acme", "AB-0001", 1.5, "second"),
        ("acme", "AB-0002", 2.0, "first"),
        ("acme", "AB-0003", 3.0, "second"),
        ("globex", "AB-0001", 9.99, "other"),
    ]
    assert con.sql("SELECT count(*) FROM audit.ledger").fetchone()[0] == 3


def test_extensions_load_from_installed_packages_not_the_network(home):
    with lake.session() as con:
        loaded = dict(
            con.sql(
                "SELECT extension_name, loaded FROM duckdb_extensions() "
                "WHERE extension_name IN ('ducklake', 'sqlite_scanner')"
            ).fetchall()
        )
        assert loaded == {"ducklake": True, "sqlite_scanner": True}
        assert con.sql("SELECT current_setting('allow_unsigned_extensions')").fetchone()[0] is False


def test_commit_stops_when_production_changed_since_approval(con, tmp_path):
    first, _ = stage(con, HEADER + "AB-0001,cup,1.00,EUR,1,,\n", tmp_path, "first")
    second, _ = stage(con, HEADER + "AB-0001,cup,1.50,EUR,1,,\n", tmp_path, "second")
    approval = {"fingerprint": fingerprint(con, second, PRODUCTS), "snapshot": current_snapshot(con)}
    commit_job(con, first, PRODUCTS, "op")  # another import lands on the same key first
    approved = registry.transition("second", "pending", "approved", actor="op", approval=approval)
    with pytest.raises(ApprovalOutdated, match=r"production changed since this job was approved \(job first"):
        commit_job(con, approved, PRODUCTS, "op")
    assert con.sql("SELECT price FROM production.products").fetchall() == [(Decimal("1.00"),)]
    fresh = {"fingerprint": fingerprint(con, second, PRODUCTS)}
    reapproved = replace(approved, approval=fresh)
    assert commit_job(con, reapproved, PRODUCTS, "op").rows_updated == 1


def test_revert_restores_previous_values_and_removes_inserted_rows(con, tmp_path):
    first, _ = stage(con, HEADER + "AB-0001,cup,1.00,EUR,1,,\nAB-0002,jug,2.00,EUR,2,,\n", tmp_path, "first")
    commit_job(con, first, PRODUCTS, "op")
    before = con.sql("SELECT * FROM production.products ORDER BY sku").fetchall()
    second, _ = stage(
        con,
        HEADER + "AB-0001,cup,1.50,EUR,9,,\nAB-0003,new,3.00,EUR,3,,\nAB-0002,jug,2.00,EUR,2,,\n",
        tmp_path,
        "second",
    )
    commit_job(con, second, PRODUCTS, "op")
    result = revert_job(con, second, PRODUCTS, "op")
    assert (result.rows_deleted, result.rows_restored) == (1, 1)
    assert con.sql("SELECT * FROM production.products ORDER BY sku").fetchall() == before
    assert revert_job(con, second, PRODUCTS, "op").already_reverted


def test_revert_refuses_when_a_later_job_changed_the_same_rows(con, tmp_path):
    first, _ = stage(con, HEADER + "AB-0001,cup,1.00,EUR,1,,\n", tmp_path, "first")
    commit_job(con, first, PRODUCTS, "op")
    later, _ = stage(con, HEADER + "AB-0001,cup,1.25,EUR,1,,\n", tmp_path, "later")
    commit_job(con, later, PRODUCTS, "op")
    with pytest.raises(RevertRefused, match="job later committed later"):
        revert_job(con, first, PRODUCTS, "op")


def test_commit_hashes_nothing_when_no_later_snapshot_touched_the_jobs_rows(con, tmp_path, monkeypatch):
    job, _ = stage(con, HEADER + "AB-0001,cup,1.00,EUR,1,,\n", tmp_path, "quiet")
    other, _ = stage(con, HEADER + "AB-0009,mug,2.00,EUR,1,,\n", tmp_path, "elsewhere", brand="globex")
    approval = {"fingerprint": fingerprint(con, job, PRODUCTS), "snapshot": current_snapshot(con)}
    commit_job(con, other, PRODUCTS, "op")  # a later snapshot, but of another job and brand

    def no_hashing(*args):
        raise AssertionError("the approval's fingerprint was recomputed")

    monkeypatch.setattr("bulkimport.stages.commit.fingerprint", no_hashing)
    approved = registry.transition("quiet", "pending", "approved", actor="op", approval=approval)
    assert commit_job(con, approved, PRODUCTS, "op").rows_inserted == 1


def test_commit_stops_when_the_jobs_staged_rows_changed_since_approval(con, tmp_path):
    job, _ = stage(con, HEADER + "AB-0001,cup,1.00,EUR,1,,\n", tmp_path, "restaged")
    approval = {"fingerprint": fingerprint(con, job, PRODUCTS), "snapshot": current_snapshot(con)}
    path = tmp_path / "restaged.csv"
    path.write_text(HEADER + "AB-0001,cup,9.00,EUR,1,,\n")
    stage_file(con, job, PRODUCTS, path, 100)  # staged again after the approval
    approved = registry.transition("restaged", "pending", "approved", actor="op", approval=approval)
    with pytest.raises(ApprovalOutdated):
        commit_job(con, approved, PRODUCTS, "op")


def test_a_date_outside_the_years_pandas_keeps_rejects_its_row_not_the_file(con, tmp_path):
    job, counts = stage(
        con, HEADER + "AB-0001,cup,1.00,EUR,1,,0999-01-01\nAB-0002,jug,2.00,EUR,2,,2024-01-01\n", tmp_path, "old-date"
    )
    assert (counts.rows_valid, counts.rows_rejected) == (1, 1)
    [(line, reason)] = rejected_rows(con, job).project("line, reason").fetchall()
    assert (line, reason) == (2, "type-error")
