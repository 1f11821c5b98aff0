"""The dashboard, driven through Streamlit's AppTest against real Redis and real workers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from bulkimport import api, progress, registry, ui, workflow

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
EXAMPLE = REPO / "examples" / "products.csv"
PAGES = ("views/upload.py", "views/jobs.py", "views/review.py")


def open_page(page: str, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception, at.exception
    at.switch_page(page)
    at.query_params.update(query)
    return at.run()


def texts(elements) -> str:
    """What the user reads: the elements' text without markdown emphasis."""
    return "\n".join(e.value for e in elements).replace("**", "")


def table_with(at: AppTest, column: str):
    """The first table on the page that has ``column``."""
    for frame in at.dataframe:
        value = frame.value
        if column in value.columns:
            return value
    raise AssertionError(f"no table with a {column!r} column; tables: {[list(f.value.columns) for f in at.dataframe]}")


def table_or_empty(at: AppTest) -> list[str]:
    """Job ids listed in the jobs table (none when the page says there are none)."""
    return [] if "No jobs yet." in texts(at.caption) else table_with(at, "status")["id"].tolist()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_broker_up_and_no_worker(redis_url, page):
    at = open_page(page)

    assert not at.exception, at.exception
    assert at.title[0].value in {"Upload a CSV", "Jobs", "Review"}
    assert "No worker is running" in texts(at.info)
    assert not at.error


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_the_broker_is_unreachable_when_redis_is_down(home, page):
    at = open_page(page)

    assert not at.exception, at.exception
    banner = texts(at.error)
    assert "broker is unreachable" in banner
    assert os.environ["REDIS_URL"] in banner
    assert "make run" in banner and "REDIS_URL" in banner


def test_uploaded_csv_is_listed_as_pending_and_banner_warns_no_worker_consumes_queue(redis_url):
    at = open_page("views/upload.py")
    at.text_input(key=ui.UPLOAD_BRAND).input("acme")
    at.text_input(key=ui.USER_NAME).input("ana")
    at.file_uploader(key=ui.UPLOAD_FILE).upload("products.csv", EXAMPLE.read_bytes(), "text/csv")
    at.run()
    at.button(key=ui.UPLOAD_SUBMIT).click()
    at.run()

    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    [job] = registry.list_jobs()
    assert (job.status, job.dataset, job.brand, job.created_by, job.file_name) == (
        "pending", "products", "acme", "ana", "products.csv")
    assert Path(job.file_path).read_bytes() == EXAMPLE.read_bytes()
    assert job.id in texts(at.success)
    assert any(link.proto.query_string == f"job={job.id}" for link in at.get("page_link")), "no link to review"
    recent = table_with(at, "status")
    assert recent.loc[recent["id"] == job.id, "status"].tolist() == ["pending"]
    assert f"Job {job.id} is queued, but no worker consumes the queue `bulkimport`" in texts(at.warning)

    at.run()
    assert "1 job(s) waiting, 1 message(s) queued, and no worker consumes the queue `bulkimport`" in texts(
        at.warning)

    at.switch_page("views/jobs.py").run()
    assert not at.exception, at.exception
    listed = table_with(at, "status")
    assert listed.loc[listed["id"] == job.id, ["status", "brand", "created_by"]].values.tolist() == [
        ["pending", "acme", "ana"]]
    assert "no worker consumes the queue" in texts(at.warning)


def test_upload_page_shows_why_a_brand_is_refused(redis_url):
    at = open_page("views/upload.py")
    at.text_input(key=ui.UPLOAD_BRAND).input("no spaces allowed")
    at.text_input(key=ui.USER_NAME).input("ana")
    at.file_uploader(key=ui.UPLOAD_FILE).upload("products.csv", EXAMPLE.read_bytes(), "text/csv")
    at.run()
    at.button(key=ui.UPLOAD_SUBMIT).click()
    at.run()

    assert "brand 'no spaces allowed' must be 1-64 letters" in texts(at.error)
    assert registry.list_jobs() == []


def test_jobs_page_shows_live_progress_of_a_job_being_validated(redis_url):
    job = workflow.submit(EXAMPLE, dataset="products", brand="acme", created_by="ana")
    # What a worker does when it starts on the job, through the same registry and progress calls.
    registry.transition(job.id, "pending", "validating", actor="worker-1")
    progress.publish(job.id, {"phase": "validating", "rows_read": 8, "rows_valid": 5, "rows_rejected": 3,
                              "bytes_read": job.file_bytes // 2, "bytes_total": job.file_bytes})

    at = open_page("views/jobs.py")

    assert not at.exception, at.exception
    [bar] = at.get("progress")
    assert 45 <= bar.value <= 50, "half the file read: the bar is half full"
    assert f"{job.id}: validating, 8 rows read (5 valid, 3 rejected)" in bar.text
    at.selectbox(key=ui.JOBS_STATUS).select("staged").run()
    assert job.id not in table_or_empty(at)
    at.selectbox(key=ui.JOBS_STATUS).select("validating").run()
    assert job.id in table_or_empty(at)


def test_review_shows_counts_and_rejects_and_only_an_operator_approves_into_production(worker):
    job = workflow.submit(EXAMPLE, dataset="products", brand="acme", created_by="ana")
    assert workflow.wait(job.id, timeout=120).status == "staged"

    at = open_page("views/review.py", job=job.id)

    assert not at.exception, at.exception
    assert at.selectbox(key=ui.REVIEW_JOB).value == job.id
    shown = metrics(at)
    assert (shown["Rows total"], shown["Rows valid"], shown["Rows rejected"]) == ("16", "7", "9")
    assert shown["Rows to insert"] == "7"
    rejected = table_with(at, "reason")
    assert rejected["line"].nunique() == 9
    assert {"line", "column", "reason", "value", "detail", "raw"} <= set(rejected.columns)
    valid = table_with(at, "sku")
    assert len(valid) == 7
    assert at.get("download_button"), "no download button for the rejected rows"
    assert "products.csv" in texts(at.caption) and "ana" in texts(at.caption)

    at.text_input(key=ui.USER_NAME).input("ana")
    at.button(key=ui.REVIEW_APPROVE).click()
    at.run()
    assert "ana is an analyst; only an operator or admin may approve jobs" in texts(at.error)
    assert registry.get(job.id).status == "staged"

    at.text_input(key=ui.USER_NAME).input("olga")
    at.button(key=ui.REVIEW_APPROVE).click()
    at.run()

    assert not at.exception, at.exception
    assert "Approved by olga" in texts(at.success)
    assert workflow.wait(job.id, until=registry.FINAL, timeout=120).status == "committed"
    assert api.production("products", "acme").count("*").fetchone()[0] == 7

    at.run()
    assert metrics(at)["Rows inserted"] == "7"
    timeline = table_with(at, "change")
    assert "committing -> committed" in timeline["change"].tolist()
    assert "olga" in timeline["actor"].tolist()


def test_submit_with_broker_down_shows_error_and_job_is_failed(home):
    at = open_page("views/upload.py")
    at.text_input(key=ui.UPLOAD_BRAND).input("acme")
    at.text_input(key=ui.USER_NAME).input("ana")
    at.file_uploader(key=ui.UPLOAD_FILE).upload("products.csv", EXAMPLE.read_bytes(), "text/csv")
    at.run()
    at.button(key=ui.UPLOAD_SUBMIT).click()
    at.run()

    assert not at.exception, at.exception
    [job] = registry.list_jobs()
    assert job.status == "failed"
    assert "unreachable" in job.error
    errors = texts(at.error)
    assert f"could not queue validate_and_stage for job {job.id}" in errors
    assert f"Job {job.id} failed" in errors
    recent = table_with(at, "status")
    assert recent.loc[recent["id"] == job.id, "status"].tolist() == ["failed"]


def test_approval_with_broker_down_is_undone_and_job_can_still_be_rejected(workers, redis_url):
    workers.start()
    job = workflow.submit(EXAMPLE, dataset="products", brand="acme", created_by="ana")
    assert workflow.wait(job.id, timeout=120).status == "staged"
    workers.stop()
    redis.Redis.from_url(redis_url).shutdown(nosave=True)

    at = open_page("views/review.py", job=job.id)
    assert "broker is unreachable" in texts(at.error)
    at.text_input(key=ui.USER_NAME).input("olga")
    at.button(key=ui.REVIEW_APPROVE).click()
    at.run()

    assert not at.exception, at.exception
    assert "The approval was undone" in texts(at.error)
    assert registry.get(job.id).status == "staged"
    assert "approval undone" in texts(at.warning)
    assert at.button(key=ui.REVIEW_APPROVE), "the job can be approved again"

    at.text_input(key=ui.REVIEW_REASON).input("prices are net")
    at.button(key=ui.REVIEW_REJECT).click()
    at.run()

    assert not at.exception, at.exception
    rejected = registry.get(job.id)
    assert rejected.status == "rejected" and "prices are net" in rejected.error
    assert "Rejected by olga" in texts(at.success)
    assert api.production("products", "acme").count("*").fetchone()[0] == 0


def test_dashboard_never_loads_actor_code(home):
    """The old bug: the web process ran the task in-process. Every page, in a fresh interpreter."""
    script = textwrap.dedent(f"""
        import sys
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(APP)!r}, default_timeout=30).run()
        for page in {PAGES!r}:
            at.switch_page(page).run()
            assert not at.exception, at.exception
        print(sorted(m for m in sys.modules if m in ("bulkimport.actors", "bulkimport.runner")))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def fresh_server():
    """Streamlit's process-wide page mode as a just-started server has it (not yet decided)."""
    PagesManager.uses_pages_directory = None
    yield
    PagesManager.uses_pages_directory = None


def test_deep_link_on_a_fresh_server_shows_the_banner(home, fresh_server):
    """A folder named pages/ would put a fresh server in Streamlit's legacy pages-directory mode:
    a deep link would run the view alone, without app.py and its banner. The views live in views/."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.switch_page("views/review.py").run()

    assert not at.exception, at.exception
    assert at.title[0].value == "Review"
    assert "broker is unreachable" in texts(at.error)
