"""Item 1 of issue 14: identity in the CLI and the Python API was a claim (`--as`, `created_by=`), and
reads showed every brand. Replayed through the real CLI, the API, a real worker and Redis."""

from __future__ import annotations

import csv
import io
import json
import os
import stat

import pytest

import bulkimport as bi
from bulkimport import registry, users
from bulkimport.errors import JobNotFound, NotAllowed
from tests.conftest import EXAMPLE, PASSWORD, TOKENS, run_cli
from tests.security.support import staged


def test_a_claimed_name_approves_nothing_and_the_ledger_names_who_proved_it(worker):
    users.add("gina", "operator", ["*"], PASSWORD)  # a real operator, who never acts here
    job = staged(EXAMPLE)

    claimed = run_cli("approve", job.id, "--as", "gina", "--wait", check=False)
    assert claimed.returncode == 2 and "--as is no longer accepted" in claimed.stderr
    unproven = run_cli("approve", job.id, "--wait", check=False)
    assert unproven.returncode == 2
    assert "not logged in" in unproven.stderr and "bulkimport login" in unproven.stderr
    forged = run_cli("approve", job.id, check=False, env_token="bi_0000_forged")
    assert forged.returncode == 2 and "not valid" in forged.stderr
    assert registry.get(job.id).status == "staged" and registry.get(job.id).approved_by is None

    done = json.loads(run_cli("approve", job.id, "--wait", "--json", user="olga").stdout)
    assert (done["status"], done["approved_by"]) == ("committed", "olga")
    ledger = bi.connect().sql(f"SELECT approved_by FROM audit.ledger WHERE job_id = '{job.id}'").fetchall()
    assert ledger == [("olga",)]
    assert {e.actor for e in registry.events(job.id) if e.to_status == "approved"} == {"olga"}


def test_cli_reads_show_only_the_users_brands_and_the_same_answer_for_others_and_unknown_ids(worker):
    acme = staged(EXAMPLE, "acme")
    globex = staged(EXAMPLE, "globex")

    listed = json.loads(run_cli("jobs", "--json", user="otto").stdout)  # otto: operator of globex only
    assert [j["id"] for j in listed] == [globex.id]
    assert {j["id"] for j in json.loads(run_cli("jobs", "--json", user="ana").stdout)} == {acme.id, globex.id}
    for command in (["status", acme.id], ["export", acme.id, "--staged", "-"], ["export", acme.id, "--rejected", "-"]):
        refused = run_cli(*command, check=False, user="otto")
        assert refused.returncode == 2 and f"job '{acme.id}': not found or not yours" in refused.stderr
        assert "ACME-1001" not in refused.stdout
    unknown = run_cli("status", "000000000000", check=False, user="otto")
    assert (
        unknown.stderr.replace("000000000000", acme.id) == refused.stderr.replace("export", "status")
        or "not found or not yours" in unknown.stderr
    )
    assert run_cli("jobs", check=False).returncode == 2, "reading needs proof too"


def test_api_reads_are_scoped_and_raw_sql_is_for_admins(worker):
    acme = staged(EXAMPLE, "acme")
    globex = staged(EXAMPLE, "globex")
    for job in (acme, globex):
        bi.login(TOKENS["olga"])
        bi.approve(job.id)
        assert bi.wait(job.id, until=["committed", "failed"], timeout=120).status == "committed"

    bi.login(TOKENS["otto"])
    assert bi.whoami().name == "otto"
    assert bi.jobs()["id"].tolist() == [globex.id]
    for read in (bi.job, bi.staged, bi.rejected, bi.diff, bi.changes, bi.events):
        with pytest.raises(JobNotFound, match="not found or not yours"):
            read(acme.id)
    with pytest.raises(bi.BulkImportError, match="neither a job id nor a time"):  # as for an unknown id
        bi.production("products", as_of=acme.id)
    with pytest.raises(JobNotFound, match="not found or not yours"):
        bi.export(acme.id, "staged", "-")
    assert set(bi.production("products").df()["brand"]) == {"globex"}
    with pytest.raises(NotAllowed, match="not found or not yours"):
        bi.production("products", brand="acme")
    assert set(bi.imports().df()["brand"]) == {"globex"}
    assert set(bi.history("products", "ACME-1001").df()["brand"]) == {"globex"}
    with pytest.raises(NotAllowed, match="for admins only"):
        bi.connect()

    bi.login(TOKENS["root"])
    assert bi.connect().sql("SELECT count(DISTINCT brand) FROM production.products").fetchone() == (2,)


def test_without_a_token_the_api_says_how_to_log_in(home, monkeypatch):
    bi.logout()
    monkeypatch.delenv("BULKIMPORT_TOKEN", raising=False)
    with pytest.raises(bi.BulkImportError, match=r"not logged in: call bi.login\(\)"):
        bi.jobs()
    with pytest.raises(bi.BulkImportError, match="not valid"):
        bi.login("bi_0000_forged")


def test_a_token_is_made_for_one_person_shown_once_saved_0600_and_revoked(home, redis_url, tmp_path):
    made = run_cli("users", "token", "ana")
    token = made.stdout.strip().splitlines()[-1]
    assert token == made.stdout.strip(), "the token alone on the last line, nothing else on stdout"
    assert token not in users.users_file().read_text(), "stored hashed"

    login = run_cli("login", "--token-stdin", check=False, stdin=token + "\n")
    assert login.returncode == 0, login.stderr
    saved = tmp_path / "config" / "bulkimport" / "token"  # under XDG_CONFIG_HOME (the home fixture's)
    assert saved.read_text().strip() == token
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert run_cli("whoami").stdout.split("\t")[:2] == ["ana", "analyst"], "the saved token proves who acts"

    run_cli("users", "token", "ana", "--revoke")
    revoked = run_cli("whoami", check=False)
    assert revoked.returncode == 2 and "not valid" in revoked.stderr
    run_cli("logout")
    assert not saved.exists()


def test_csv_export_as_the_owner_works_and_carries_no_other_brand(worker):
    staged(EXAMPLE, "acme")
    globex = staged(EXAMPLE, "globex")
    rows = list(csv.DictReader(io.StringIO(run_cli("export", globex.id, "--staged", "-", user="otto").stdout)))
    assert len(rows) == 7 and {r["brand"] for r in rows} == {"globex"}
    assert os.environ.get("BULKIMPORT_TOKEN") is None
