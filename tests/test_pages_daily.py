"""The dashboard as people use it all day (issue 15), through AppTest against real Redis and real workers:
fixing rejected rows in the grid, repair suggestions, write modes, the same file twice, the small things."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkimport import api, registry, ui, workflow
from tests.conftest import who, write_csv
from tests.test_pages import EXAMPLE, buttons, metrics, open_view, staged_job, table_with, texts, upload

DAMAGED = (
    "sku,name,price,currency,stock,ean,launch_date\n"
    'ACME-3001,"Jug,4.00,EUR,5,,\n'  # an unterminated quote: one suggestion (drop it)
    "ACME-3002,Cup, large,4.50,EUR,10,,\n"  # a comma in an unquoted name: one suggestion (join the cells)
    "ACME-3003,Pot,4.00,EUR,5,,\n"
)


def edit_grid(at, job: registry.Job, changes: dict[int, dict]) -> None:
    """Edit cells of the fixing grid as a person would: ``{line: {column: value}}``."""
    grid = table_with(at, "accept")
    rows = {int(i): changes[line] for i, line in enumerate(grid["line"]) if line in changes}
    key = ui.fix_grid_key(registry.get(job.id))  # the page shows the job as it is now
    at.session_state[key] = {"edited_rows": rows, "added_rows": [], "deleted_rows": []}


def after_check(at, job_id: str) -> registry.Job:
    """Wait for the worker to check the fixed rows, then show the page again."""
    job = workflow.wait(job_id, until=(registry.STAGED, *registry.FINAL), timeout=120)
    at.run()
    assert not at.exception, at.exception
    return job


# ---------------------------------------------------------------- fixing in place


def test_a_rejected_row_fixed_in_the_grid_is_checked_by_the_worker_and_joins_the_staged_rows(worker):
    job = staged_job(created_by="ana")
    at = open_view("views/review.py", "ana", job=job.id)
    grid = table_with(at, "accept")
    assert grid["line"].tolist() == [6, 7, 8, 9, 10, 11, 12, 14, 17]
    row6 = grid[grid.line == 6].iloc[0]
    assert (row6["price"], row6["reason"], row6["problem"]) == (
        "-3.00",
        "constraint-error",
        "price: '-3.00' must be >= 0",
    )

    edit_grid(at, job, {6: {"price": "3.00"}, 8: {"stock": "eight"}})
    at.button(key=ui.REVIEW_FIX_CHECK).click().run()
    assert "ana fixed 2 rejected row(s): line 6 price '-3.00' → '3.00'; line 8 stock 'ten' → 'eight'" in texts(
        at.success
    )
    job = after_check(at, job.id)

    assert (job.rows_total, job.rows_valid, job.rows_rejected) == (16, 8, 8)
    shown = metrics(at)
    assert (shown["Rows valid"], shown["Rows rejected"], shown["Rows to insert"]) == ("8", "8", "8")
    grid = table_with(at, "accept")
    assert 6 not in grid["line"].tolist()
    assert grid[grid.line == 8].iloc[0]["problem"] == "stock: 'eight' is not a whole number"
    assert 6 in api.staged(job.id).df()["line"].tolist()
    timeline = table_with(at, "change")
    assert "staged -> fixing" in timeline["change"].tolist()
    assert any("1 fixed row(s) staged, 1 still rejected (line 8)" in note for note in timeline["note"])
    audit = api.fixes(job.id)
    assert sorted(zip(audit.line, audit.before, audit.after, audit.fixed_by, audit.outcome, strict=True)) == [
        (6, "-3.00", "3.00", "ana", "staged"),
        (8, "ten", "eight", "ana", "rejected"),
    ]


def test_nothing_is_sent_when_nothing_in_the_grid_changed(worker):
    job = staged_job(created_by="ana")
    at = open_view("views/review.py", "ana", job=job.id)
    at.button(key=ui.REVIEW_FIX_CHECK).click().run()
    assert "Nothing changed yet" in texts(at.warning)
    assert registry.get(job.id).status == "staged"


def test_a_suggestion_is_shown_with_the_change_and_accepted_by_a_tick_or_all_at_once(worker):
    job = staged_job(created_by="ana", source=DAMAGED.encode())
    at = open_view("views/review.py", "ana", job=job.id)
    grid = table_with(at, "accept")
    assert grid.set_index("line")["suggestion"].to_dict() == {
        2: "drop the stray quote at character 11",
        3: "join 'Cup' and ' large' into one cell: 'Cup, large'",
    }
    pairs = table_with(at, "")
    assert pairs[""].tolist() == ["as read", "suggested", "as read", "suggested"]
    assert pairs["name"].tolist() == ['"Jug', "Jug", "Cup", "Cup, large"]
    assert api.staged(job.id).df()["line"].tolist() == [4], "never applied on its own"

    edit_grid(at, job, {3: {"accept": True}})
    at.button(key=ui.REVIEW_FIX_CHECK).click().run()
    assert "line 3: accepted the suggestion (join 'Cup' and ' large'" in texts(at.success)
    job = after_check(at, job.id)
    assert api.staged(job.id).df()["line"].tolist() == [3, 4]
    assert api.fixes(job.id).suggestion.all()

    at.button(key=ui.REVIEW_FIX_ACCEPT_ALL).click().run()
    job = after_check(at, job.id)
    assert (job.rows_valid, job.rows_rejected) == (3, 0)
    assert "No row was rejected." in texts(at.success)


def test_who_fixed_rows_may_not_approve_them(worker):
    job = staged_job(created_by="ana")
    at = open_view("views/review.py", "olga", job=job.id)
    edit_grid(at, job, {6: {"price": "3.00"}})
    at.button(key=ui.REVIEW_FIX_CHECK).click().run()
    after_check(at, job.id)
    assert ui.REVIEW_APPROVE not in buttons(at)
    assert "You fixed rows of this job, so you may not approve it" in texts(at.info)
    assert ui.REVIEW_APPROVE in buttons(open_view("views/review.py", "root", job=job.id))


# ---------------------------------------------------------------- write modes


def test_upload_sends_the_chosen_write_mode_and_warns_what_replace_deletes(redis_url):
    at = open_view("views/upload.py", "ana")
    upload(at, "products.csv", EXAMPLE.read_bytes())
    assert at.radio(key=ui.UPLOAD_MODE).options == ["upsert", "append", "replace"]
    at.radio(key=ui.UPLOAD_MODE).set_value("replace").run()
    assert "the rows of brand acme in production.products whose key is not in this file are deleted" in texts(
        at.warning
    )
    at.button(key=ui.UPLOAD_SUBMIT).click().run()
    [job] = registry.list_jobs()
    assert job.mode == "replace"
    jobs = open_view("views/jobs.py", "ana")
    listed = table_with(jobs, "status")
    assert listed["mode"].tolist() == ["replace"]
    assert listed["rows_total"].tolist() == [""], "a pending job's counts are blank, not None"


def test_a_replace_shows_its_deletes_and_needs_a_confirmation_before_approval(worker, tmp_path):
    base = write_csv(tmp_path / "base.csv", [f"AB-000{i},p{i},{i}.00,EUR,1,," for i in range(1, 6)])
    first = workflow.submit(base, dataset="products", brand="acme", user=who("ana"))
    workflow.wait(first.id, timeout=120)
    workflow.approve(first.id, user=who("olga"))
    workflow.wait(first.id, until=registry.FINAL, timeout=120)
    catalogue = write_csv(tmp_path / "catalogue.csv", ["AB-0001,p1,1.00,EUR,1,,", "AB-0006,p6,6.00,EUR,1,,"])
    job = workflow.submit(catalogue, dataset="products", brand="acme", user=who("ana"), mode="replace")
    workflow.wait(job.id, timeout=120)

    at = open_view("views/review.py", "olga", job=job.id)
    shown = metrics(at)
    assert (shown["Rows to insert"], shown["Rows unchanged"], shown["Rows to delete"]) == ("1", "1", "4")
    assert table_with(at, "written_by")["sku"].tolist() == ["AB-0002", "AB-0003", "AB-0004", "AB-0005"]
    assert "approving deletes 4 of the 5 rows of brand acme in production.products (80%)" in texts(at.warning)
    assert at.button(key=ui.REVIEW_APPROVE).disabled
    at.checkbox(key=ui.REVIEW_CONFIRM_DELETES).check().run()
    assert not at.button(key=ui.REVIEW_APPROVE).disabled
    at.button(key=ui.REVIEW_APPROVE).click().run()
    assert workflow.wait(job.id, until=registry.FINAL, timeout=120).status == "committed"
    at.run()
    assert metrics(at)["Rows deleted"] == "4"
    assert "Committed as approved" in texts(at.info) and "4 to delete" in texts(at.info)
    assert "The commit stops if the data changed since" not in texts(at.info)
    assert sorted(api.production("products", "acme").df()["sku"]) == ["AB-0001", "AB-0006"]


# ---------------------------------------------------------------- the same file twice


def test_the_same_file_twice_needs_a_confirmation_naming_the_earlier_job(worker):
    earlier = staged_job(created_by="ana")
    at = open_view("views/upload.py", "ana")
    upload(at, "products.csv", EXAMPLE.read_bytes())
    assert f"is already staged as job {earlier.id} for products/acme, uploaded by ana" in texts(at.warning)
    assert at.button(key=ui.UPLOAD_SUBMIT).disabled
    at.checkbox(key=ui.UPLOAD_DUPLICATE_OK).check().run()
    at.button(key=ui.UPLOAD_SUBMIT).click().run()
    assert len(registry.list_jobs()) == 2

    other_brand = open_view("views/upload.py", "ana")
    other_brand.selectbox(key=ui.UPLOAD_BRAND).set_value("globex").run()
    upload(other_brand, "products.csv", EXAMPLE.read_bytes())
    assert "already" not in texts(other_brand.warning), "another brand's copy is not the same import"


# ---------------------------------------------------------------- small things


def test_the_timeline_names_workers_by_pid_and_host_not_by_raw_id(worker):
    job = staged_job(created_by="ana")
    at = open_view("views/review.py", "ana", job=job.id)
    who = table_with(at, "change")["who"].tolist()
    assert who[0] == "ana"
    assert all(w == "ana" or w.startswith("worker ") and " on " in w for w in who), who
    assert not any(w.count(":") for w in who)


def test_an_empty_or_binary_file_is_refused_before_a_job_exists_with_the_workers_message(redis_url, tmp_path):
    at = open_view("views/upload.py", "ana")
    upload(at, "empty.csv", b"")
    assert "empty.csv: the file is empty" in texts(at.error)
    assert at.button(key=ui.UPLOAD_SUBMIT).disabled
    binary = Path(__file__).parent / "data" / "csv" / "binary.csv"
    with pytest.raises(Exception, match="this is not a text file"):
        workflow.submit(binary, dataset="products", brand="acme", user=who("ana"))
    assert registry.list_jobs() == []
