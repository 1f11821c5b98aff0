"""The dashboard, driven through Streamlit's AppTest against real Redis and real workers.

Every test logs in as one of the configured users (see conftest.USERS): ana is an
analyst of acme, globex and marker; olga an operator of every brand; otto an
operator of globex only; root an admin.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import redis
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from bulkimport import api, progress, registry, sessions, ui, users, workflow
from tests.conftest import PASSWORD, who

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
EXAMPLE = REPO / "examples" / "products.csv"
VIEWS = ("views/upload.py", "views/jobs.py", "views/review.py", "views/health.py", "views/datasets.py")
TITLES = {"Upload a CSV", "Jobs", "Review", "Health", "Datasets"}


def open_view(view: str, user: str | None = "ana", **query) -> AppTest:
    """The dashboard on ``view``, as ``user`` (logged in already), with ``?query``."""
    at = AppTest.from_file(APP, default_timeout=30)
    if user:
        at.session_state[ui.SESSION] = sessions.start(users.get(user))  # what the login page's cookie names
    at.switch_page(view)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def plain(markdown: str) -> str:
    """What the user reads of Markdown: no emphasis, no escapes."""
    return re.sub(r"\\([^A-Za-z0-9\s])", r"\1", markdown.replace("**", ""))


def texts(elements) -> str:
    """What the user reads in the elements."""
    return plain("\n".join(e.value for e in elements))


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page that has ``column``."""
    for frame in at.dataframe:
        value = frame.value
        if column in value.columns:
            return value
    raise AssertionError(f"no table with a {column!r} column; tables: {[list(f.value.columns) for f in at.dataframe]}")


def job_ids_listed(at: AppTest) -> list[str]:
    """Job ids in the jobs table (none when the page says there are none)."""
    return [] if "No jobs yet." in texts(at.caption) else table_with(at, "status")["id"].tolist()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def buttons(at: AppTest) -> set[str]:
    return {b.key for b in at.button if b.key}


def upload(at: AppTest, name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    at.file_uploader(key=ui.UPLOAD_FILE).upload(name, data, mime).run()
    assert not at.exception, at.exception
    return at


def edit_mapping(at: AppTest, changes: dict[str, str]) -> AppTest:
    """Choose a dataset column (or "(ignore)") for file columns in the mapping table, as a user would."""
    table = at.data_editor(key=ui.UPLOAD_MAPPING).value
    rows = {int(i): {"dataset column": changes[name]} for i, name in enumerate(table["file column"]) if name in changes}
    at.session_state[ui.UPLOAD_MAPPING] = {"edited_rows": rows, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception, at.exception
    return at


def staged_job(
    created_by: str = "ana", brand: str = "acme", source: Path | bytes = EXAMPLE, mode: str = "upsert"
) -> registry.Job:
    """A job a real worker has validated and staged (the same file again, if a test wants it twice)."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    job = workflow.submit(
        source,
        dataset="products",
        brand=brand,
        user=who(created_by),
        file_name="products.csv",
        mode=mode,
        allow_duplicate=True,
    )
    assert workflow.wait(job.id, timeout=120).status == "staged"
    return job


# ---------------------------------------------------------------- login


def test_nothing_of_the_dashboard_without_a_live_session(home):
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["bulkimport"]
    assert not at.file_uploader and not at.dataframe, "nothing of the dashboard before login"
    assert "bulkimport up" in texts(at.error), "run alone, the app says where its login page is"

    at = open_view("views/upload.py", "ana")
    assert at.title[0].value == "Upload a CSV"
    who = texts(at.sidebar.markdown)
    assert "ana · analyst" in who and "acme, globex, marker" in who
    sessions.end(at.session_state[ui.SESSION])  # logged out in another tab
    at.run()
    assert [t.value for t in at.title] == ["bulkimport"] and not at.file_uploader


def test_an_idle_session_ends(home, monkeypatch):
    at = open_view("views/jobs.py", "ana")
    assert at.title[0].value == "Jobs"
    monkeypatch.setenv("BULKIMPORT_SESSION_IDLE_MINUTES", "0")
    at.run()
    assert [t.value for t in at.title] == ["bulkimport"]


def test_a_user_removed_from_the_users_file_is_logged_out_on_the_next_click(home):
    at = open_view("views/jobs.py", "otto")
    assert at.title[0].value == "Jobs"
    users.remove("otto")
    at.run()
    assert [t.value for t in at.title] == ["bulkimport"]


OIDC = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "bulkimport",
        "client_secret": "s3cret",
        "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
    },
    "oidc_users": {"olga@example.com": "olga"},
}


def test_with_oidc_configured_the_provider_identity_is_mapped_to_a_configured_user(home):
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets = OIDC
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, at.exception
    assert [b.label for b in at.button] == ["Log in"], "the provider's button, no password form"
    assert not at.text_input

    at.user = {"is_logged_in": True, "email": "olga@example.com", "name": "Olga"}  # no email_verified claim
    at.run()
    assert [t.value for t in at.title] == ["bulkimport"], "an address the provider did not verify counts for nothing"
    assert "does not say this address is verified" in texts(at.error)

    at.user = {"is_logged_in": True, "email": "olga@example.com", "email_verified": False}
    at.run()
    assert [t.value for t in at.title] == ["bulkimport"]

    at.user = {"is_logged_in": True, "email": "olga@example.com", "name": "Olga", "email_verified": True}
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Upload a CSV"
    assert "olga · operator" in texts(at.sidebar.markdown)

    users.add("ana@example.com", "analyst", ["acme"], PASSWORD)  # no mapping entry: a user named by the address
    at.user = {"is_logged_in": True, "email": "ana@example.com", "email_verified": True}
    at.run()
    assert "ana@example.com · analyst" in texts(at.sidebar.markdown)

    at.user = {"is_logged_in": True, "email": "mallory@example.com", "email_verified": True}
    at.run()
    assert "signed in as mallory@example.com, but no bulkimport user matches it" in texts(at.error)
    assert [t.value for t in at.title] == ["bulkimport"]


# ---------------------------------------------------------------- every view


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders_with_broker_up_and_no_worker(redis_url, view):
    at = open_view(view)

    assert at.title[0].value in TITLES
    assert "No worker is running" in texts(at.info)


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_says_the_broker_is_unreachable_when_redis_is_down(home, view):
    at = open_view(view)

    banner = texts(at.error)
    assert "broker is unreachable" in banner
    assert os.environ["REDIS_URL"] in banner
    assert "make run" in banner and "REDIS_URL" in banner


@pytest.fixture
def fresh_server():
    """Streamlit's process-wide page mode as a just-started server has it (not yet decided)."""
    PagesManager.uses_pages_directory = None
    yield
    PagesManager.uses_pages_directory = None


def test_deep_link_on_a_fresh_server_shows_the_banner(home, fresh_server):
    """A folder named pages/ would put a fresh server in Streamlit's legacy pages-directory mode:
    a deep link would run the view alone, without app.py and its banner. The views live in views/."""
    at = open_view("views/review.py", job="0123456789ab")

    assert at.title[0].value == "Review"
    assert "broker is unreachable" in texts(at.error)


def test_dashboard_never_loads_actor_code(home):
    """The old bug: the web process ran the task in-process. Every view, in a fresh interpreter."""
    script = textwrap.dedent(f"""
        import sys
        from streamlit.testing.v1 import AppTest
        from bulkimport import sessions, ui, users
        at = AppTest.from_file({str(APP)!r}, default_timeout=30)
        at.session_state[ui.SESSION] = sessions.start(users.get("root"))
        at.run()
        for view in {VIEWS!r}:
            at.switch_page(view).run()
            assert not at.exception, at.exception
            assert at.title[0].value != "bulkimport", "not logged in"
        print(sorted(m for m in sys.modules if m in ("bulkimport.actors", "bulkimport.runner")))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------- upload


def test_upload_shows_dialect_mapping_and_first_rows_then_queues_a_pending_job(redis_url):
    at = open_view("views/upload.py", "ana")
    brand = at.selectbox(key=ui.UPLOAD_BRAND)
    assert brand.options == ["acme", "globex", "marker"], "an analyst picks one of their brands, no free text"
    brand.select("globex").run()
    upload(at, "products.csv", EXAMPLE.read_bytes())

    shown = texts(at.markdown)
    assert "Read products.csv with encoding utf-8, delimiter ',', quote '\"', escape none, header on line 1" in shown
    mapping = at.data_editor(key=ui.UPLOAD_MAPPING).value
    assert dict(zip(mapping["file column"], mapping["dataset column"], strict=True)) == {
        "sku": "sku",
        "name": "name",
        "price": "price",
        "currency": "currency",
        "stock": "stock",
        "ean": "ean",
        "launch_date": "launch_date",
    }
    sample = table_with(at, "line")
    assert sample["line"].tolist() == list(range(2, 12)), "the first 10 records, by line in the file"
    assert sample["sku"].iloc[0] == "ACME-1001"
    assert not at.error
    assert [p.name for p in (home_of() / "uploads").iterdir()], "the file is stored while it is previewed"

    at.button(key=ui.UPLOAD_SUBMIT).click().run()

    assert not at.exception, at.exception
    [job] = registry.list_jobs()
    assert (job.status, job.dataset, job.brand, job.created_by, job.file_name, job.mapping) == (
        "pending",
        "products",
        "globex",
        "ana",
        "products.csv",
        None,
    )
    assert Path(job.file_path).read_bytes() == EXAMPLE.read_bytes()
    assert f"job {job.id} is queued for validation" in texts(at.success)
    assert f"Job {job.id} is queued, but no worker consumes the queue `bulkimport`" in texts(at.warning)
    assert any(link.proto.query_string == f"job={job.id}" for link in at.get("page_link")), "no link to review"
    recent = table_with(at, "status")
    assert recent.loc[recent["id"] == job.id, "status"].tolist() == ["pending"]
    assert "was submitted as job" in texts(at.caption) and not at.data_editor, "the same file is not offered again"

    at.run()
    assert "1 job(s) waiting, 1 message(s) queued, and no worker consumes the queue `bulkimport`" in texts(at.warning)
    at.switch_page("views/jobs.py").run()
    listed = table_with(at, "status")
    assert listed.loc[listed["id"] == job.id, ["status", "brand", "created_by"]].values.tolist() == [
        ["pending", "globex", "ana"]
    ]


def home_of() -> Path:
    return Path(os.environ["BULKIMPORT_HOME"])


MESSY = (
    "Export from the ERP, 2024-05-01\n"
    "\n"
    "Artikel;Nme;Price (EUR);Currency;Stock;Notes\n"
    "AB-0001;Cup;1.50;EUR;3;x\n"
    "AB-0002;Jug;2.00;EUR;4;y\n"
).encode("cp1252")


def test_a_mapping_the_user_fixes_is_sent_with_the_job_and_offered_next_time(redis_url):
    at = open_view("views/upload.py", "ana")
    upload(at, "erp.csv", MESSY)

    assert "delimiter ';'" in texts(at.markdown) and "header on line 3 (2 line(s) above it skipped)" in texts(
        at.markdown
    )
    assert "'Nme' looks like name" in texts(at.info), "a close name is offered ..."
    mapping = at.data_editor(key=ui.UPLOAD_MAPPING).value.set_index("file column")
    assert mapping.loc["Nme", "dataset column"] == "(ignore)", "... not applied"
    assert mapping.loc["Price (EUR)", "dataset column"] == "price", "names match ignoring case and punctuation"
    assert "Required column(s) missing: sku, name" in texts(at.error)
    assert at.button(key=ui.UPLOAD_SUBMIT).disabled

    edit_mapping(at, {"Artikel": "sku", "Nme": "name"})

    assert not at.error, texts(at.error)
    assert table_with(at, "line")["sku"].tolist() == ["AB-0001", "AB-0002"], "the rows as read with the new mapping"
    assert not at.button(key=ui.UPLOAD_SUBMIT).disabled
    at.button(key=ui.UPLOAD_SUBMIT).click().run()
    [job] = registry.list_jobs()
    assert job.mapping == {
        "Artikel": "sku",
        "Nme": "name",
        "Price (EUR)": "price",
        "Currency": "currency",
        "Stock": "stock",
        "Notes": None,
    }

    # A worker remembers a chosen mapping once it has read the file (runner.validate_and_stage does this).
    header = ["Artikel", "Nme", "Price (EUR)", "Currency", "Stock", "Notes"]
    registry.remember_mapping("products", "acme", header, job.mapping)
    again = open_view("views/upload.py", "ana")
    upload(again, "erp-june.csv", MESSY)
    assert "This mapping is the one chosen last time for a file with this header (brand acme)." in texts(again.info)
    assert not again.error and not again.button(key=ui.UPLOAD_SUBMIT).disabled
    again.button(key=ui.UPLOAD_SUBMIT).click().run()
    assert registry.list_jobs()[0].mapping == job.mapping, "what was on screen is what the worker applies"

    other_brand = open_view("views/upload.py", "ana")
    other_brand.selectbox(key=ui.UPLOAD_BRAND).select("globex").run()
    upload(other_brand, "erp-june.csv", MESSY)
    assert "chosen last time" not in texts(other_brand.info), "one brand's mapping is never proposed to another"
    assert "Required column(s) missing" in texts(other_brand.error)


def test_advanced_overrides_change_how_the_file_is_read_and_go_with_the_job(redis_url):
    at = open_view("views/upload.py", "root")
    at.text_input(key=ui.UPLOAD_BRAND).input("newbrand")  # an admin types any brand
    upload(at, "products.csv", EXAMPLE.read_bytes())

    at.text_input(key=ui.UPLOAD_DELIMITER).input(";").run()
    assert "delimiter ';'" in texts(at.markdown)
    assert "Required column(s) missing" in texts(at.error), "read with ';' the header is one column"
    assert at.button(key=ui.UPLOAD_SUBMIT).disabled

    at.text_input(key=ui.UPLOAD_DELIMITER).input("").run()
    at.text_input(key=ui.UPLOAD_ENCODING).input("latin-1").run()
    assert "encoding iso8859-1" in texts(at.markdown), "latin-1 by its codec name"
    assert not at.error
    at.button(key=ui.UPLOAD_SUBMIT).click().run()
    [job] = registry.list_jobs()
    assert (job.brand, job.options["encoding"]) == ("newbrand", "latin-1")


def test_an_xlsx_upload_offers_its_sheets(redis_url):
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active.append(["nothing to import here"])
    sheet = book.create_sheet("Prices")
    sheet.append(["SKU", "Name", "Price", "Currency", "Stock"])
    sheet.append(["ACME-2001", "Mug", 3.5, "EUR", 10])
    data = io.BytesIO()
    book.save(data)

    at = open_view("views/upload.py", "ana")
    upload(at, "prices.xlsx", data.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert at.selectbox(key=ui.UPLOAD_SHEET).options == ["Notes", "Prices"]
    assert "Required column(s) missing" in texts(at.error), "the first sheet holds no products"

    at.selectbox(key=ui.UPLOAD_SHEET).select("Prices").run()
    assert "Excel workbook, header on row 1" in texts(at.markdown)
    assert not at.error
    assert table_with(at, "line")["sku"].tolist() == ["ACME-2001"]
    at.button(key=ui.UPLOAD_SUBMIT).click().run()
    [job] = registry.list_jobs()
    assert job.options == {"sheet": "Prices"}


def test_a_file_removed_from_the_uploader_is_discarded(redis_url):
    at = open_view("views/upload.py", "ana")
    upload(at, "products.csv", EXAMPLE.read_bytes())
    assert len(list((home_of() / "uploads").iterdir())) == 1

    at.file_uploader(key=ui.UPLOAD_FILE).clear().run()

    assert list((home_of() / "uploads").iterdir()) == []
    assert registry.list_jobs() == []


def test_submit_with_broker_down_shows_error_and_job_is_failed(home):
    at = open_view("views/upload.py", "ana")
    upload(at, "products.csv", EXAMPLE.read_bytes())
    at.button(key=ui.UPLOAD_SUBMIT).click().run()

    assert not at.exception, at.exception
    [job] = registry.list_jobs()
    assert job.status == "failed" and "unreachable" in job.error
    errors = texts(at.error)
    assert f"could not queue validate_and_stage for job {job.id}" in errors
    assert f"Job {job.id} failed" in errors


# ---------------------------------------------------------------- jobs


def test_jobs_page_shows_live_progress_of_a_job_being_validated(redis_url):
    job = workflow.submit(EXAMPLE, dataset="products", brand="acme", user=who("ana"))
    # What a worker does when it starts on the job, through the same registry and progress calls.
    registry.transition(job.id, "pending", "validating", actor="worker-1")
    progress.publish(
        job.id,
        {
            "phase": "validating",
            "rows_read": 8,
            "rows_valid": 5,
            "rows_rejected": 3,
            "bytes_read": job.file_bytes // 2,
            "bytes_total": job.file_bytes,
        },
    )

    at = open_view("views/jobs.py", "ana")

    [bar] = at.get("progress")
    assert 45 <= bar.value <= 50, "half the file read: the bar is half full"
    assert f"{job.id}: validating, 8 rows read (5 valid, 3 rejected)" in plain(bar.text)
    progress.publish(job.id, {"rows_read": 16, "bytes_read": job.file_bytes})
    at.run()
    [bar] = at.get("progress")
    assert bar.value == 100 and "16 rows read" in plain(bar.text)
    at.selectbox(key=ui.JOBS_STATUS).select("staged").run()
    assert job.id not in job_ids_listed(at)
    at.selectbox(key=ui.JOBS_STATUS).select("validating").run()
    assert job.id in job_ids_listed(at)


def test_users_see_only_the_jobs_of_their_brands(redis_url):
    acme = workflow.submit(EXAMPLE, dataset="products", brand="acme", user=who("ana"))
    globex = workflow.submit(EXAMPLE, dataset="products", brand="globex", user=who("ana"))

    assert set(job_ids_listed(open_view("views/jobs.py", "ana"))) == {acme.id, globex.id}
    assert job_ids_listed(open_view("views/jobs.py", "otto")) == [globex.id]
    otto = open_view("views/jobs.py", "otto")
    assert otto.selectbox(key=ui.JOBS_BRAND).options == ["globex"]
    assert job_ids_listed(open_view("views/upload.py", "otto")) == [globex.id]

    review = open_view("views/review.py", "otto", job=acme.id)
    assert f"Job `{acme.id}`: not found or not yours." in texts(review.warning)
    assert "products.csv" not in texts(review.caption) and not review.metric and not review.dataframe
    assert review.selectbox(key=ui.REVIEW_JOB).options == [ui.job_label(globex)]
    missing = open_view("views/review.py", "otto", job="000000000000")
    assert "Job `000000000000`: not found or not yours." in texts(missing.warning), "the same answer: ids not probed"


# ---------------------------------------------------------------- review


def test_review_an_analyst_sees_rows_and_download_but_only_another_operator_approves_and_can_revert(worker):
    job = staged_job(created_by="ana")

    at = open_view("views/review.py", "ana", job=job.id)
    assert at.selectbox(key=ui.REVIEW_JOB).value == job.id
    shown = metrics(at)
    assert (shown["Rows total"], shown["Rows valid"], shown["Rows rejected"]) == ("16", "7", "9")
    assert (shown["Rows to insert"], shown["Rows to update"], shown["Rows unchanged"]) == ("7", "0", "0")
    rejected = table_with(at, "raw")
    assert rejected["line"].nunique() == 9
    assert {"line", "column", "reason", "value", "detail", "raw"} <= set(rejected.columns)
    assert len(table_with(at, "brand")) == 7
    downloads = [b.proto.label for b in at.get("download_button")]
    assert any("rejected rows to fix" in label for label in downloads)
    assert any("Valid rows as Excel" in label for label in downloads), downloads
    assert "products.csv" in texts(at.caption) and "ana" in texts(at.caption)
    assert ui.REVIEW_APPROVE not in buttons(at) and ui.REVIEW_REJECT not in buttons(at)
    assert "An operator or admin of brand acme approves or rejects this job; you are an analyst." in texts(at.info)

    at = open_view("views/review.py", "olga", job=job.id)
    at.button(key=ui.REVIEW_APPROVE).click().run()

    assert not at.exception, at.exception
    assert "Approved by olga" in texts(at.success)
    assert workflow.wait(job.id, until=registry.FINAL, timeout=120).status == "committed"
    assert api.production("products", "acme").count("*").fetchone()[0] == 7
    at.run()
    assert metrics(at)["Rows inserted"] == "7"
    assert "Approved by olga" in texts(at.info) and "7 rows to insert, 0 to update" in texts(at.info)
    timeline = table_with(at, "change")
    assert "committing -> committed" in timeline["change"].tolist() and "olga" in timeline["who"].tolist()
    assert ui.REVIEW_REVERT not in buttons(open_view("views/review.py", "ana", job=job.id)), "analysts do not revert"

    # A second file changes two prices: the review shows what the commit would change, cell by cell.
    changed = (
        EXAMPLE.read_text()
        .replace("ACME-1001,Espresso cup,4.50", "ACME-1001,Espresso cup,4.95")
        .replace("ACME-1003,Milk jug 350 ml,12.00", "ACME-1003,Milk jug 350 ml,13.00")
    )
    second = staged_job(created_by="ana", source=changed.encode())
    review = open_view("views/review.py", "olga", job=second.id)
    shown = metrics(review)
    assert (shown["Rows to insert"], shown["Rows to update"], shown["Rows unchanged"]) == ("0", "2", "5")
    assert "price in 2 row(s)" in texts(review.caption)
    pairs = table_with(review, "")
    assert pairs[""].tolist() == ["before", "after", "before", "after"]
    assert pairs["price"].tolist() == [4.5, 4.95, 12.0, 13.0]

    at.button(key=ui.REVIEW_REVERT).click().run()
    assert f"Revert of job {job.id} queued by olga" in texts(at.success)
    # Only that it was queued: the revert itself is the worker's business (tests/e2e/test_review.py). Known backend
    # bug: the job keeps the commit's claim (claimed_by), so a revert message that reaches another live worker
    # thread is skipped as "claimed" and the job stays reverting.
    assert registry.get(job.id).status in ("reverting", "reverted")
    assert ui.REVIEW_REVERT not in buttons(at)


def test_an_operator_cannot_approve_their_own_upload_but_may_reject_it_with_a_reason(worker):
    job = staged_job(created_by="olga", brand="globex")

    at = open_view("views/review.py", "olga", job=job.id)
    assert ui.REVIEW_APPROVE not in buttons(at)
    assert "You uploaded this job, so you may not approve it: a second operator or admin must (four eyes)" in texts(
        at.info
    )

    at.button(key=ui.REVIEW_REJECT).click().run()
    assert "Say why before rejecting" in texts(at.error)
    assert registry.get(job.id).status == "staged"
    at.text_input(key=ui.REVIEW_REASON).input("prices are net")
    at.button(key=ui.REVIEW_REJECT).click().run()

    assert "Rejected by olga" in texts(at.success)
    rejected = registry.get(job.id)
    assert rejected.status == "rejected" and "prices are net" in rejected.error
    assert ui.REVIEW_APPROVE in buttons(open_view("views/review.py", "otto", job=staged_job("olga", "globex").id))


def test_a_commit_that_lost_a_race_shows_why_it_needs_approving_again(worker):
    job = staged_job()
    workflow.approve(job.id, user=who("olga"))
    assert workflow.wait(job.id, until=registry.FINAL, timeout=120).status == "committed"
    second = staged_job()
    # What a worker does when production changed after the approval (runner.commit_to_production).
    registry.transition(
        second.id,
        "staged",
        "approved",
        actor="olga",
        approved_by="olga",
        approval={"diff": {"rows_to_insert": 0}, "by": "olga", "at": registry.now()},
    )
    registry.transition(second.id, "approved", "committing", actor="worker")
    registry.transition(
        second.id,
        "committing",
        "staged",
        actor="worker",
        approved_by=None,
        approval=None,
        error="production changed since the approval: 3 rows differ",
        note="approval outdated",
    )

    at = open_view("views/review.py", "olga", job=second.id)

    assert "The approved commit did not run: production changed after the approval." in texts(at.error)
    assert "3 rows differ" in texts(at.error)
    assert ui.REVIEW_APPROVE in buttons(at)


def test_approval_with_broker_down_is_undone_and_job_can_still_be_rejected(workers, redis_url):
    workers.start()
    job = staged_job()
    workers.stop()
    redis.Redis.from_url(redis_url).shutdown(nosave=True)

    at = open_view("views/review.py", "olga", job=job.id)
    assert "broker is unreachable" in texts(at.error)
    at.button(key=ui.REVIEW_APPROVE).click().run()

    assert not at.exception, at.exception
    assert "The approval was undone" in texts(at.error)
    assert registry.get(job.id).status == "staged"
    assert "approval undone" in texts(at.warning)
    assert ui.REVIEW_APPROVE in buttons(at), "the job can be approved again"

    at.text_input(key=ui.REVIEW_REASON).input("prices are net")
    at.button(key=ui.REVIEW_REJECT).click().run()
    assert registry.get(job.id).status == "rejected"
    assert api.production("products", "acme").count("*").fetchone()[0] == 0


def test_the_uploader_cancels_a_pending_job_and_others_of_the_brand_cannot(redis_url):
    users.add("alex", "analyst", ["acme"], PASSWORD)
    job = workflow.submit(EXAMPLE, dataset="products", brand="acme", user=who("ana"))

    assert ui.REVIEW_CANCEL not in buttons(open_view("views/review.py", "alex", job=job.id))
    at = open_view("views/review.py", "ana", job=job.id)
    at.button(key=ui.REVIEW_CANCEL).click().run()

    assert f"Job {job.id} cancelled by ana" in texts(at.success)
    assert registry.get(job.id).status == "cancelled"
    assert ui.REVIEW_CANCEL not in buttons(at)


def test_a_failed_job_shows_its_error_with_the_traceback_folded_and_can_be_retried(redis_url):
    job = workflow.submit(EXAMPLE, dataset="products", brand="acme", user=who("ana"))
    trace = 'Traceback (most recent call last):\n  File "runner.py", line 1\nOSError: disk full'
    registry.transition(
        job.id, "pending", "failed", actor="worker", error=f"gave up after 3 attempts: disk full\n{trace}"
    )
    redis.Redis.from_url(redis_url).delete("dramatiq:bulkimport")

    at = open_view("views/review.py", "olga", job=job.id)
    assert "gave up after 3 attempts: disk full" in texts(at.error)
    assert "Traceback" not in texts(at.error), "the traceback waits behind an expander"
    [details] = at.expander
    assert "OSError: disk full" in details.code[0].value

    at.button(key=ui.REVIEW_RETRY).click().run()
    assert f"Job {job.id} sent again by olga" in texts(at.success)
    assert registry.get(job.id).status == "pending"
    assert progress.queue_stats().waiting == 1


# ---------------------------------------------------------------- health


def test_health_page_and_banner_follow_a_worker_starting(workers, redis_url):
    job = workflow.submit(EXAMPLE, dataset="products", brand="acme", user=who("ana"))
    at = open_view("views/health.py", "olga")

    assert "1 job(s) waiting, 1 message(s) queued, and no worker consumes the queue `bulkimport`" in texts(at.warning)
    assert "No worker is alive" in texts(at.warning)
    assert metrics(at)["Waiting"] == "1"
    statuses = table_with(at, "jobs")
    assert statuses.values.tolist() == [["pending", 1]]
    checks = table_with(at, "check")
    assert {"redis", "lake", "registry", "workers"} <= set(checks["check"])

    process = workers.start()
    assert workflow.wait(job.id, timeout=120).status == "staged"
    at.run()

    assert "no worker consumes" not in texts(at.warning)
    listed = table_with(at, "worker")
    assert len(listed) >= 1 and set(listed["queues"]) == {"bulkimport"}
    assert process.pid in set(listed["pid"]) or any(_child_pid(p, process.pid) for p in listed["pid"])
    assert metrics(at)["Waiting"] == "0"

    otto = open_view("views/health.py", "otto")  # an operator of globex only
    assert "No jobs yet." in texts(otto.caption), "another brand's jobs are not counted for him"
    workers_seen = table_with(otto, "queues")
    assert "pid" not in workers_seen.columns and "host" not in workers_seen.columns
    assert "detail" not in table_with(otto, "check").columns, "no paths or URLs of the host"


def _child_pid(pid, parent: int) -> bool:
    try:
        return int(Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[1]) == parent
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------- helpers


def test_updates_are_shown_before_and_after_with_only_changed_cells_highlighted():
    before = pd.DataFrame({"sku": ["A-1", "A-2"], "price": [1.0, 2.0], "ean": [None, "x"]})
    after = pd.DataFrame({"sku": ["A-1", "A-2"], "price": [1.5, 2.0], "ean": [None, None]})

    styled = ui.changes_side_by_side(before, after, key=["sku"])

    assert styled.data[""].tolist() == ["before", "after", "before", "after"]
    highlighted = {(row, styled.data.columns[col]) for (row, col), props in styled._compute().ctx.items() if props}
    assert highlighted == {(0, "price"), (1, "price"), (2, "ean"), (3, "ean")}, "never the key, never equal cells"
