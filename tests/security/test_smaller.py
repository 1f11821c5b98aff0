"""Item 10: secrets.toml not git-ignored, the dashboard on every interface, OIDC without email_verified,
analysts seeing every brand's counts and the worker pids on the Health page."""

from __future__ import annotations

import subprocess
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bulkimport import launcher, sessions, ui, users, workflow
from tests.conftest import EXAMPLE, REPO, who


def test_the_oidc_secrets_file_is_never_committed():
    assert subprocess.run(["git", "check-ignore", "-q", ".streamlit/secrets.toml"], cwd=REPO).returncode == 0


def test_the_dashboard_listens_on_loopback_unless_told_otherwise(dashboard, monkeypatch):
    port = int(dashboard.rsplit(":", 1)[1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                listening.append(local.rsplit(":", 1)[0])
    assert listening == ["0100007F"], f"listens on {listening}, not only 127.0.0.1"
    monkeypatch.setenv("BULKIMPORT_DASHBOARD_ADDRESS", "0.0.0.0")
    command = launcher.dashboard_command(8501)
    assert command[command.index("--server.address") + 1] == "0.0.0.0"
    # The tables' own "Download as CSV" writes cells as they are: off, so every download is a safe one.
    assert command[command.index("--client.disableDataExport") + 1] == "true"


def test_an_oidc_identity_counts_only_with_email_verified_true(home):
    at = AppTest.from_file(REPO / "app.py", default_timeout=30)
    at.secrets = {
        "auth": {
            "redirect_uri": "http://localhost:8501/oauth2callback",
            "cookie_secret": "x" * 32,
            "client_id": "bulkimport",
            "client_secret": "s3cret",
            "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
        },
        "oidc_users": {"olga@example.com": "olga"},
    }
    for claims in ({}, {"email_verified": False}, {"email_verified": "true"}):
        at.user = {"is_logged_in": True, "email": "olga@example.com", **claims}
        at.run()
        assert [t.value for t in at.title] == ["bulkimport"], claims
    at.user = {"is_logged_in": True, "email": "olga@example.com", "email_verified": True}
    at.run()
    assert at.title[0].value == "Upload a CSV"


def test_the_health_page_shows_an_analyst_only_their_brands_and_no_worker_pids(worker):
    workflow.submit(EXAMPLE, dataset="products", brand="initech", user=who("root"))  # not one of ana's brands
    workflow.submit(EXAMPLE, dataset="products", brand="acme", user=who("ana"))
    at = AppTest.from_file(REPO / "app.py", default_timeout=60)
    at.session_state[ui.SESSION] = sessions.start(users.get("ana"))
    at.switch_page("views/health.py").run()
    assert not at.exception, at.exception
    frames = {tuple(f.value.columns): f.value for f in at.dataframe}
    [per_status] = [f for columns, f in frames.items() if columns == ("status", "jobs")]
    assert per_status["jobs"].sum() == 1, "only the acme job is counted"
    [live] = [f for columns, f in frames.items() if "queues" in columns]
    assert not {"pid", "host", "worker"} & set(live.columns) - {"worker"} and "pid" not in live.columns
    assert all(str(w).startswith("worker ") for w in live["worker"]), "no host:pid ids"
    [checks] = [f for columns, f in frames.items() if "check" in columns]
    assert "detail" not in checks.columns
