"""Small things of issue 15 through the real `bulkimport` command: no worker needed."""

import csv
import os
import socket
import subprocess
import sys

import pytest

from bulkimport import registry, users, workflow
from bulkimport.errors import FileRefused
from tests.conftest import REPO, TOKENS, run_cli

BINARY = REPO / "tests" / "data" / "csv" / "binary.csv"


def cli(
    *args: str, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, input=None, user: str | None = None
) -> subprocess.CompletedProcess:
    """The command as a script or cron job runs it: no terminal (as ``user``, by their token)."""
    env = dict(os.environ, **({"BULKIMPORT_TOKEN": TOKENS[user]} if user else {}))
    return subprocess.run(
        [sys.executable, "-m", "bulkimport", *args],
        stdin=None if input is not None else stdin,
        input=input,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty.csv: the file is empty"), (BINARY.read_bytes(), "empty.csv: this is not a text file")],
)
def test_an_empty_or_binary_file_is_refused_before_any_job_exists(redis_url, home, tmp_path, content, message):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    refused = run_cli("submit", str(path), "--dataset", "products", "--brand", "acme", check=False, user="ana")
    assert refused.returncode == 2
    assert message in refused.stderr
    assert registry.list_jobs() == [], "nothing queued, nothing in anyone's list"
    assert not list((home / "uploads").glob("*/*")), "and nothing kept"
    # One check, one message: the library (dashboard and API) says the same.
    upload = workflow.store_upload(path)
    with pytest.raises(FileRefused) as same:
        workflow.check_file(upload, "products")
    assert message in str(same.value)


def test_users_add_without_a_terminal_reads_the_password_from_standard_input_or_says_how(home):
    asked = cli("users", "add", "nina", "--role", "analyst", "--brands", "acme")
    assert asked.returncode == 2
    assert "Traceback" not in asked.stderr and "EOFError" not in asked.stderr
    assert "--password-stdin" in asked.stderr
    added = cli("users", "add", "nina", "--role", "analyst", "--brands", "acme", input="long enough secret\n")
    assert added.returncode == 0, added.stderr
    assert users.authenticate("nina", "long enough secret").name == "nina"


def test_export_to_standard_output_redirected_into_a_file(home, tmp_path):
    from bulkimport import lake
    from tests.test_fixing import staged  # a staged job without a worker

    with lake.session() as con:
        job = staged(con, REPO / "examples" / "products.csv", tmp_path)
    target = tmp_path / "rows.csv"
    with target.open("w") as out:
        written = cli("export", job.id, "--staged", "-", stdout=out, user="ana")
    assert written.returncode == 0, written.stderr
    rows = list(csv.reader(target.open()))
    assert rows[0][:3] == ["line", "brand", "sku"] and len(rows) == 8, "the header and the 7 staged rows"


def test_a_second_bulkimport_up_on_a_busy_port_says_which_setting_to_change(home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        refused = cli("up", "--port", str(port))
    assert refused.returncode == 2
    assert f"port {port} is already in use" in refused.stderr
    assert f"--port {port + 1}" in refused.stderr and "BULKIMPORT_DASHBOARD_PORT" in refused.stderr
