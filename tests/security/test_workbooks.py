"""Item 6: a 1.1 MB workbook with a 64 MB shared-strings part passed the bomb guard; `preview` took 155 s
and 565 MB, the worker 183 s for one row, and previews ran inside the dashboard process."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from bulkimport import registry, sessions, ui, users
from tests.conftest import REPO, run_cli
from tests.security.support import workbook_with_shared_strings


def test_a_workbook_inflating_past_the_cap_is_refused_before_it_is_opened(worker, tmp_path):
    bomb = tmp_path / "prices.xlsx"
    bomb.write_bytes(workbook_with_shared_strings(4_300_000))  # ~69 MB of shared strings
    assert bomb.stat().st_size < 2_000_000

    refused = run_cli("preview", str(bomb), "--dataset", "products", check=False)
    assert refused.returncode == 2 and "BULKIMPORT_XLSX_MAX_MB" in refused.stderr
    # The file check before a job exists refuses it too: no job, nothing queued, nothing read.
    done = run_cli(
        "submit", str(bomb), "--dataset", "products", "--brand", "acme", "--wait", "--json", check=False, user="ana"
    )
    assert done.returncode == 2 and "BULKIMPORT_XLSX_MAX_MB" in done.stderr, done.stderr
    assert registry.list_jobs() == []


def test_too_many_shared_strings_are_refused_even_when_the_count_the_file_declares_is_small(
    home, monkeypatch, tmp_path
):
    monkeypatch.setenv("BULKIMPORT_XLSX_MAX_STRINGS", "1000")
    book = tmp_path / "many.xlsx"
    book.write_bytes(workbook_with_shared_strings(5_000))  # declares uniqueCount="5"
    refused = run_cli("preview", str(book), "--dataset", "products", check=False)
    assert refused.returncode == 2 and "more than 1,000 shared strings" in refused.stderr
    book.write_bytes(workbook_with_shared_strings(10))
    assert run_cli("preview", str(book), "--dataset", "products").returncode == 0, "a normal workbook reads"


def test_a_dashboard_preview_runs_in_a_limited_child_and_the_page_stays_up(redis_url, monkeypatch, tmp_path):
    monkeypatch.setenv("BULKIMPORT_PREVIEW_MEMORY_MB", "400")  # below what reading anything needs
    at = AppTest.from_file(REPO / "app.py", default_timeout=120)
    at.session_state[ui.SESSION] = sessions.start(users.get("ana"))
    at.switch_page("views/upload.py").run()
    started = time.monotonic()
    at.file_uploader(key=ui.UPLOAD_FILE).upload("prices.xlsx", workbook_with_shared_strings(10), "application/zip")
    at.run()
    assert not at.exception, at.exception
    assert "needed more than 400 MB of memory" in "\n".join(e.value for e in at.error).replace("\\", "")
    assert at.button(key=ui.UPLOAD_SUBMIT).disabled and registry.list_jobs() == []
    assert time.monotonic() - started < 120
