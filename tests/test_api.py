"""The notebook API: a real DuckLake on disk, jobs staged and committed with the plain stage functions.

The last test runs a real worker and reads in a loop while it commits.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import bulkimport as bi
from bulkimport import api, lake, registry
from bulkimport.datasets import get_dataset
from bulkimport.errors import BulkImportError, JobNotFound
from bulkimport.stages import commit as commit_stage
from bulkimport.stages.commit import commit_job
from bulkimport.stages.stage import stage_file
from tests.conftest import EXAMPLE, TOKENS

HEADER = "sku,name,price,currency,stock,ean,launch_date\n"
PRODUCTS = get_dataset("products")


@pytest.fixture(autouse=True)
def fresh_connections():
    """The API keeps a lake connection per process; each test has its own BULKIMPORT_HOME."""
    yield
    api.close()
    bi.logout()


@pytest.fixture(autouse=True)
def as_root(home):
    """Most tests read as root (the home fixture logs in so), an admin who sees every brand; the tests
    of scoping log in as others."""


@pytest.fixture
def con(home):
    with lake.session() as con:
        yield con


@pytest.fixture
def imp(con, tmp_path):
    """``imp(job_id, csv text or path, brand=..., commit=True)``: stage a job (and commit it) like a worker does."""

    def run(job_id: str, source: str | Path, brand: str = "acme", commit: bool = True) -> registry.Job:
        path = source if isinstance(source, Path) else tmp_path / f"{job_id}.csv"
        if not isinstance(source, Path):
            path.write_text(HEADER + source, encoding="utf-8")
        job = registry.create(
            job_id=job_id,
            dataset="products",
            brand=brand,
            file_name=path.name,
            file_path=str(path),
            file_sha256="0" * 64,
            file_bytes=path.stat().st_size,
            created_by="ana",
        )
        registry.transition(job_id, "pending", "validating", actor="test")
        counts = stage_file(con, job, PRODUCTS, path, 1000)
        registry.transition(
            job_id,
            "validating",
            "staged",
            actor="test",
            rows_total=counts.rows_total,
            rows_valid=counts.rows_valid,
            rows_rejected=counts.rows_rejected,
        )
        if commit:
            registry.transition(job_id, "staged", "approved", actor="olga", approved_by="olga")
            registry.transition(job_id, "approved", "committing", actor="test")
            result = commit_job(con, registry.get(job_id), PRODUCTS, "olga")
            registry.transition(
                job_id,
                "committing",
                "committed",
                actor="test",
                rows_inserted=result.rows_inserted,
                rows_updated=result.rows_updated,
            )
        return registry.get(job_id)

    return run


def prices(relation) -> dict[tuple[str, str], float]:
    return {(r["brand"], r["sku"]): float(r["price"]) for r in relation.df().to_dict("records")}


@pytest.fixture
def three_imports(imp):
    """first: 2 products; second: one price changes, one product is new; third: staged, not approved."""
    first = imp("first", "AB-0001,cup,1.00,EUR,1,,\nAB-0002,jug,2.00,EUR,2,,\n")
    second = imp("second", "AB-0001,cup,1.50,EUR,1,,\nAB-0002,jug,2.00,EUR,2,,\nAB-0003,new,3.00,EUR,3,,\n")
    third = imp("third", "AB-0001,cup,1.75,EUR,1,,\nAB-0004,lid,0.50,EUR,9,,\n", commit=False)
    return first, second, third


AFTER_FIRST = {("acme", "AB-0001"): 1.0, ("acme", "AB-0002"): 2.0}
AFTER_SECOND = {("acme", "AB-0001"): 1.5, ("acme", "AB-0002"): 2.0, ("acme", "AB-0003"): 3.0}


# ---------------------------------------------------------------- jobs


def test_jobs_lists_newest_first_and_filters_by_status_dataset_and_brand(imp):
    imp("one", "AB-0001,cup,1.00,EUR,1,,\n")
    imp("two", "AB-0001,cup,1.00,EUR,1,,\n", brand="globex", commit=False)
    everything = bi.jobs()
    assert isinstance(everything, pd.DataFrame)
    assert everything["id"].tolist() == ["two", "one"]
    assert {"id", "dataset", "brand", "status", "rows_valid", "rows_rejected", "created_at"} <= set(everything)
    assert str(everything["created_at"].dtype).startswith("datetime64")
    assert bi.jobs(status="staged")["id"].tolist() == ["two"]
    assert bi.jobs(brand="acme")["id"].tolist() == ["one"]
    assert bi.jobs(dataset="products", status="committed")["id"].tolist() == ["one"]
    assert bi.jobs(dataset="nothing").empty


def test_job_and_its_events_tell_status_counts_and_who_did_what(imp):
    imp("one", EXAMPLE)
    job = bi.job("one")
    assert (job.status, job.rows_total, job.rows_valid, job.rows_rejected) == ("committed", 16, 7, 9)
    timeline = bi.events("one")
    assert timeline["to_status"].tolist() == ["pending", "validating", "staged", "approved", "committing", "committed"]
    assert timeline.loc[timeline.to_status == "approved", "actor"].item() == "olga"
    with pytest.raises(JobNotFound):
        bi.job("nope")


# ---------------------------------------------------------------- one job's rows


def test_staged_and_rejected_rows_convert_to_pandas_polars_and_arrow(imp):
    imp("one", EXAMPLE, commit=False)
    staged = bi.staged("one")
    assert staged.df()["line"].tolist() == [2, 3, 4, 5, 13, 15, 16]
    assert isinstance(staged.pl(), pl.DataFrame) and staged.pl().height == 7
    assert staged.arrow().read_all().num_rows == 7 and isinstance(staged.to_arrow_table(), pa.Table)
    rejected = bi.rejected("one")
    assert {"line", "column", "reason", "value", "detail", "raw"} <= set(rejected.columns)
    assert sorted(set(rejected.df()["line"])) == [6, 7, 8, 9, 10, 11, 12, 14, 17]
    by_reason = dict(rejected.aggregate("reason, count(DISTINCT line)", "reason").fetchall())
    assert by_reason["duplicate-key"] == 1 and by_reason["type-error"] >= 1


def test_diff_counts_what_approval_would_do_and_what_a_commit_did(three_imports):
    third = bi.diff("third")
    assert (third.rows_to_insert, third.rows_to_update, third.rows_unchanged) == (1, 1, 0)
    # A committed job: what its commit did, not a comparison with today's production.
    second = bi.diff("second")
    assert (second.rows_to_insert, second.rows_to_update, second.rows_unchanged) == (1, 1, 1)
    assert getattr(second, "changed_columns", {"price": 1}) == {"price": 1}
    first = bi.diff("first")
    assert (first.rows_to_insert, first.rows_to_update, first.rows_unchanged) == (2, 0, 0)


def test_changes_show_each_row_with_its_production_value_before(three_imports):
    pending = bi.changes("third").df()
    assert pending[["change", "sku"]].values.tolist() == [["update", "AB-0001"], ["insert", "AB-0004"]]
    update = pending.iloc[0]
    assert list(update["changed_columns"]) == ["price"]
    assert (float(update["price_before"]), float(update["price"])) == (1.5, 1.75)
    assert pd.isna(pending.iloc[1]["price_before"])
    # Once committed, a job is compared with production just before its commit.
    done = bi.changes("second").df()
    assert done[["change", "sku"]].values.tolist() == [
        ["update", "AB-0001"],
        ["unchanged", "AB-0002"],
        ["insert", "AB-0003"],
    ]
    assert float(done.iloc[0]["price_before"]) == 1.0


# ---------------------------------------------------------------- production and time travel


def test_production_now_and_for_one_brand(imp):
    imp("one", "AB-0001,cup,1.00,EUR,1,,\n")
    imp("two", "AB-0001,mug,9.00,EUR,1,,\n", brand="globex")
    assert prices(bi.production("products")) == {("acme", "AB-0001"): 1.0, ("globex", "AB-0001"): 9.0}
    assert prices(bi.production("products", brand="globex")) == {("globex", "AB-0001"): 9.0}
    assert bi.production("products", "acme").df()["job_id"].tolist() == ["one"]


def test_production_as_of_a_job_is_the_state_right_after_its_commit(three_imports):
    assert prices(bi.production("products", as_of="first")) == AFTER_FIRST
    assert prices(bi.production("products", as_of="second")) == AFTER_SECOND
    assert prices(bi.production("products")) == AFTER_SECOND


def test_production_before_a_job_is_the_state_just_before_its_commit(three_imports):
    assert prices(bi.production("products", before_job="second")) == AFTER_FIRST
    assert bi.production("products", before_job="first").count("*").fetchone() == (0,)


def test_time_travel_by_snapshot_id_and_by_timestamp(three_imports):
    listed = bi.imports("products").df().set_index("job_id")
    first, second = listed.loc["first"], listed.loc["second"]
    assert prices(bi.production("products", as_of=int(first.commit_snapshot_id))) == AFTER_FIRST
    assert prices(bi.production("products", as_of=int(second.before_snapshot_id))) == AFTER_FIRST
    # A commit's time is the moment its snapshot was taken; anything between two commits sees the first.
    assert prices(bi.production("products", as_of=first.committed_at)) == AFTER_FIRST
    between = first.committed_at + (second.committed_at - first.committed_at) / 2
    assert prices(bi.production("products", as_of=between.to_pydatetime())) == AFTER_FIRST
    assert prices(bi.production("products", as_of=second.committed_at.isoformat())) == AFTER_SECOND
    assert bi.production("products", as_of=dt.date(2000, 1, 1)).count("*").fetchone() == (0,)
    assert bi.production("products", as_of=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).count("*").fetchone() == (3,)


def test_time_travel_says_why_when_there_is_nothing_to_travel_to(three_imports):
    with pytest.raises(BulkImportError, match="job third is staged, not committed"):
        bi.production("products", as_of="third")
    with pytest.raises(BulkImportError, match="job third is staged, not committed"):
        bi.production("products", before_job="third")
    with pytest.raises(JobNotFound):
        bi.production("products", before_job="nope")
    with pytest.raises(BulkImportError, match="neither a job id nor a time"):
        bi.production("products", as_of="nope")
    with pytest.raises(BulkImportError, match="there is no lake snapshot 9999"):
        bi.production("products", as_of=9999)
    with pytest.raises(ValueError, match="not both"):
        bi.production("products", as_of="first", before_job="second")


def test_imports_list_each_commit_with_the_snapshot_it_made(three_imports):
    listed = bi.imports().df()
    assert listed["job_id"].tolist() == ["first", "second"]
    assert listed[["rows_inserted", "rows_updated", "rows_unchanged"]].values.tolist() == [[2, 0, 0], [1, 1, 1]]
    assert (listed["approved_by"] == "olga").all()
    assert (listed["before_snapshot_id"] < listed["commit_snapshot_id"]).all()
    assert listed["reverted_at"].isna().all()
    assert bi.snapshot("second") == listed["commit_snapshot_id"].iloc[1]
    assert bi.snapshot(before_job="second") == listed["before_snapshot_id"].iloc[1]
    assert bi.imports(brand="globex").df().empty
    # The snapshot ids work in raw SQL too.
    n = int(listed["commit_snapshot_id"].iloc[0])
    raw = bi.connect().sql(f"SELECT count(*) FROM production.products AT (VERSION => {n})").fetchone()
    assert raw == (2,)


def test_history_shows_how_one_row_changed_import_by_import(imp, three_imports):
    imp("fourth", "AB-0001,cup,1.50,EUR,1,,\n")  # same values as now: changes nothing
    imp("fifth", "AB-0001,big cup,1.50,EUR,4,,\n")
    imp("other", "AB-0001,mug,9.00,EUR,1,,\n", brand="globex")
    history = bi.history("products", "AB-0001", brand="acme").df()
    assert history[["job_id", "change", "name", "stock"]].values.tolist() == [
        ["first", "insert", "cup", 1],
        ["second", "update", "cup", 1],
        ["fifth", "update", "big cup", 4],
    ]
    assert [float(p) for p in history["price"]] == [1.0, 1.5, 1.5]
    assert (history["action"] == "commit").all() and (history["actor"] == "olga").all()
    assert history["changed_at"].is_monotonic_increasing
    snapshots = bi.imports().df().set_index("job_id")["commit_snapshot_id"]
    assert history["snapshot_id"].tolist() == [snapshots["first"], snapshots["second"], snapshots["fifth"]]
    everywhere = bi.history("products", ("AB-0001",)).df()
    assert sorted(set(everywhere["brand"])) == ["acme", "globex"]
    assert bi.history("products", {"sku": "AB-9999"}).df().empty
    with pytest.raises(BulkImportError, match="give 1 value"):
        bi.history("products", ("AB-0001", "extra"))


def test_connect_gives_raw_sql_over_the_lake(three_imports):
    con = bi.connect()
    assert con is bi.connect()
    assert con.sql("SELECT count(*) FROM audit.ledger").fetchone() == (2,)
    assert con.sql("SELECT count(*) FROM staging.products WHERE job_id = 'third'").fetchone() == (2,)


def test_reading_a_fresh_lake_gives_empty_results_not_errors(home):
    assert bi.jobs().empty
    assert bi.production("products").count("*").fetchone() == (0,)
    assert bi.imports().df().empty
    assert bi.history("products", "AB-0001").df().empty


# ---------------------------------------------------------------- reads while a worker commits


def write_products(path: Path, n: int, price: str, extra: int = 0) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(n + extra):
            out.write(f"AB-{i:06d},product {i},{price},EUR,{i % 50},,2024-01-01\n")
    return path


@pytest.mark.e2e
def test_reads_in_a_loop_never_block_or_fail_while_a_worker_commits(worker, tmp_path):
    n = 200_000
    bi.login(TOKENS["ana"])
    first = bi.submit(write_products(tmp_path / "a.csv", n, "1.00"), dataset="products", brand="acme")
    assert bi.wait(first.id, timeout=180).status == "staged"
    bi.login(TOKENS["olga"])  # four eyes: someone else approves
    bi.approve(first.id)
    assert bi.wait(first.id, until=["committed", "failed"], timeout=180).status == "committed"
    bi.login(TOKENS["ana"])
    second = bi.submit(write_products(tmp_path / "b.csv", n, "2.00", extra=1000), dataset="products", brand="acme")
    assert bi.wait(second.id, timeout=180).status == "staged"
    bi.login(TOKENS["olga"])

    def production_totals():
        count, total = bi.production("products", "acme").aggregate("count(*), sum(price)").fetchone()
        return count, int(total)

    before, after = (n, 1 * n), (n + 1000, 2 * (n + 1000))
    assert production_totals() == before
    reads, failures = [], []
    bi.approve(second.id)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status_before = registry.get(second.id).status
        try:
            totals = production_totals()
            staged_rows = bi.staged(second.id).count("*").fetchone()[0]
            as_of_first = bi.production("products", as_of=first.id).count("*").fetchone()[0]
            listed = len(bi.jobs())
        except Exception as exc:  # noqa: BLE001 - every failure is the finding
            failures.append(repr(exc))
            continue
        status_after = registry.get(second.id).status
        reads.append((status_before, status_after, totals, staged_rows, as_of_first, listed))
        if status_before in ("committed", "failed"):
            break

    assert registry.get(second.id).status == "committed", registry.get(second.id).error
    assert failures == []
    # Every read saw production whole, before or after the commit: never half a merge.
    assert {r[2] for r in reads} == {before, after}
    assert {r[3:] for r in reads} == {(n + 1000, n, 2)}
    # And reads went on while the worker was committing.
    assert any(r[0] == r[1] == "committing" for r in reads), sorted({(r[0], r[1]) for r in reads})
    assert production_totals() == after


def test_history_and_imports_show_a_revert(con, imp, three_imports):
    commit_stage.revert_job(con, registry.get("second"), PRODUCTS, "root")
    assert prices(bi.production("products")) == AFTER_FIRST
    history = bi.history("products", "AB-0001", brand="acme").df()
    assert history[["job_id", "action", "actor", "change"]].values.tolist() == [
        ["first", "commit", "olga", "insert"],
        ["second", "commit", "olga", "update"],
        ["second", "revert", "root", "update"],
    ]
    assert [float(p) for p in history["price"]] == [1.0, 1.5, 1.0]
    gone = bi.history("products", "AB-0003").df()
    assert gone[["job_id", "action", "change"]].values.tolist() == [
        ["second", "commit", "insert"],
        ["second", "revert", "delete"],
    ]
    listed = bi.imports().df().set_index("job_id")
    assert listed.loc["second", "reverted_by"] == "root" and pd.isna(listed.loc["first", "reverted_by"])
    # Time travel still sees what each commit did.
    assert prices(bi.production("products", as_of="second")) == AFTER_SECOND
