"""Upload abuse: a file over the size cap is refused before it is kept; hostile file names stay inside uploads/.

Through the dashboard's upload view (AppTest, logged in as ana) as a user would, and through
``workflow.store_upload`` for the names a browser would never send.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bulkimport import registry, sessions, ui, users, workflow
from bulkimport.config import settings
from bulkimport.errors import BulkImportError
from tests.conftest import EXAMPLE, REPO
from tests.reliability.support import Figures

SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}$")
HOSTILE_NAMES = (
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "a/../../b.csv",
    "evil\x00.csv",
    "\x00",
    "..",
    ".",
    "",
    "/",
    "....csv",
    ".bashrc",
    "C:\\Users\\x\\evil.csv",
    "ü" * 300 + ".csv",
    "line\nbreak.csv",
    "%2e%2e%2fetc.csv",
    "../" * 50 + "deep.csv",
    "x" * 5000 + ".csv",
    "nul\x00/../../escape.csv",
    "\u202egnp.csv",
)


def _upload_view() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=30)
    at.session_state[ui.SESSION] = sessions.start(users.get("ana"))
    at.switch_page("views/upload.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _kept_files() -> list:
    uploads = settings().uploads
    return [p for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []


def _upload_too_big(monkeypatch) -> tuple[AppTest, int]:
    monkeypatch.setenv("BULKIMPORT_UPLOAD_MAX_MB", "1")
    big = EXAMPLE.read_bytes() + b"AB-0001,x,1.00,EUR,1,,\n" * 100_000  # ~2.3 MB
    at = _upload_view()
    at.file_uploader(key=ui.UPLOAD_FILE).upload("big.csv", big, "text/csv").run()
    return at, len(big)


def test_a_dashboard_upload_over_the_cap_is_refused_and_nothing_is_kept(monkeypatch, redis_url):
    at, size = _upload_too_big(monkeypatch)
    Figures(
        "upload-cap",
        trials=1,
        failures_injected=1,
        extra={"bytes": size, "cap_mb": 1, "kept_files": len(_kept_files()), "jobs": len(registry.list_jobs())},
    ).show()
    assert not at.exception, at.exception[0].message
    assert "upload limit" in "\n".join(e.value for e in at.error)
    assert _kept_files() == []
    assert registry.list_jobs() == []


def test_a_dashboard_upload_over_the_cap_says_so_plainly(monkeypatch, redis_url):
    at, _ = _upload_too_big(monkeypatch)
    assert not at.exception, at.exception[0].message
    shown = "\n".join(e.value for e in at.error)
    assert "upload limit" in shown and "1 MB" in shown, shown


class _CountingStream(io.BytesIO):
    """A browser upload whose size is known up front (Streamlit's UploadedFile has .size)."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.size = len(data)
        self.bytes_read = 0

    def read(self, n=-1):
        block = super().read(n)
        self.bytes_read += len(block)
        return block


def test_an_upload_over_the_cap_of_known_size_is_refused_before_a_byte_is_read(monkeypatch, home):
    monkeypatch.setenv("BULKIMPORT_UPLOAD_MAX_MB", "1")
    stream = _CountingStream(b"x" * (2 << 20))
    with pytest.raises(BulkImportError, match="upload limit"):
        workflow.store_upload(stream, file_name="big.csv")
    assert stream.bytes_read == 0
    assert _kept_files() == []


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n)[:24])
def test_a_hostile_file_name_is_stored_under_a_safe_name_inside_the_uploads_folder(home, name):
    data = EXAMPLE.read_bytes()
    upload = workflow.store_upload(io.BytesIO(data), file_name=name)
    uploads = settings().uploads.resolve()
    assert upload.path.resolve().parent.parent == uploads, upload.path
    assert upload.path.parent.name == upload.job_id
    assert SAFE_NAME.match(upload.path.name), upload.path.name
    assert upload.path.read_bytes() == data
    assert [p.resolve() for p in _kept_files()] == [upload.path.resolve()]


def test_a_hostile_name_through_the_dashboard_is_stored_inside_uploads_and_queued(redis_url):
    at = _upload_view()
    # (Streamlit itself refuses a name with NUL before the view sees it; the library cases above cover NUL.)
    at.file_uploader(key=ui.UPLOAD_FILE).upload("../../../etc/cron.d/..x.csv", EXAMPLE.read_bytes(), "text/csv").run()
    assert not at.exception, at.exception
    at.button(key=ui.UPLOAD_SUBMIT).click().run()
    assert not at.exception, at.exception
    [job] = registry.list_jobs()
    path = Path(job.file_path).resolve()
    assert job.status == registry.PENDING
    assert path.parent == settings().uploads.resolve() / job.id
    assert SAFE_NAME.match(path.name), path.name
    assert path.read_bytes() == EXAMPLE.read_bytes()
