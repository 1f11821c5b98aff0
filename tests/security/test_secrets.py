"""Item 3: the Redis password showed on the Health page, in `bulkimport doctor` and in a job's error."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from bulkimport import registry, sessions, ui, users
from bulkimport.config import masked
from tests.conftest import EXAMPLE, REPO, run_cli


def page_text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "success") for e in at.get(kind)]
    parts += [frame.value.to_csv() for frame in at.dataframe]
    return "\n".join(map(str, parts))


def test_the_redis_password_is_never_shown_printed_or_stored(redis_server, worker, monkeypatch):
    secret = redis_server.password
    doctor = run_cli("doctor")
    assert secret not in doctor.stdout + doctor.stderr and "redis://***@127.0.0.1" in doctor.stdout

    for name in ("ana", "root"):  # an analyst and an admin: nobody is shown it
        at = AppTest.from_file(REPO / "app.py", default_timeout=60)
        at.session_state[ui.SESSION] = sessions.start(users.get(name))
        at.switch_page("views/health.py").run()
        assert not at.exception, at.exception
        assert secret not in page_text(at)

    redis_server.stop()  # queuing fails: the error names the broker, never its password
    failed = run_cli(
        "submit", str(EXAMPLE), "--dataset", "products", "--brand", "acme", "--json", check=False, user="ana"
    )
    assert failed.returncode == 3 and secret not in failed.stdout + failed.stderr
    assert "redis://***@127.0.0.1" in failed.stderr
    [job] = registry.list_jobs()
    assert job.status == "failed" and "unreachable" in job.error and secret not in json.dumps(job.to_dict())
    assert all(secret not in (e.note or "") for e in registry.events(job.id))


@pytest.mark.parametrize(
    "text",
    [
        "redis://:s3cret@127.0.0.1:6399/0",
        "redis://default:s3cret@redis.example:6379/1",
        "rediss://user:s3cret@redis.example:6380",
        "postgresql://bulk:s3cret@db.example/jobs",
        "postgres://bulk:s3cret@db.example:5432/jobs?sslmode=require",
        "http://AKIA123:s3cret@minio.example:9000",
        "error talking to https://key:s3cret@s3.example/bucket (timeout) and redis://:s3cret@h:1/0",
    ],
)
def test_every_urls_userinfo_is_masked(text):
    shown = masked(text)
    assert "s3cret" not in shown and "***@" in shown
    assert masked(shown) == shown
