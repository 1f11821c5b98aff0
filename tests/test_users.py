"""Who may do what: roles, brands and the four-eyes rule, in the library and the CLI."""

import pytest
from dramatiq.brokers.stub import StubBroker

from bulkimport import dispatch, registry, users, workflow
from bulkimport.config import settings
from bulkimport.errors import JobNotFound, NotAllowed
from tests.conftest import EXAMPLE, PASSWORD, TOKENS, run_cli, who


@pytest.fixture
def broker(home, monkeypatch):
    stub = StubBroker()
    stub.declare_queue(settings().queue)
    monkeypatch.setattr(dispatch, "redis_broker", lambda: stub)
    return stub


def staged_job(created_by="ana", brand="acme") -> registry.Job:
    job = workflow.submit(EXAMPLE, dataset="products", brand=brand, user=who(created_by))
    registry.transition(job.id, "pending", "staged", actor="test")
    return registry.get(job.id)


def test_passwords_are_stored_as_argon2_hashes_and_checked(home):
    assert users.authenticate("olga", PASSWORD).role == "operator"
    assert users.authenticate("olga", "wrong password") is None
    assert users.authenticate("nobody", PASSWORD) is None
    stored = users.users_file().read_text()
    assert PASSWORD not in stored and "$argon2" in stored


def test_nobody_may_approve_a_job_they_uploaded(broker):
    job = staged_job(created_by="olga")
    with pytest.raises(NotAllowed, match="four eyes"):
        workflow.approve(job.id, user=who("olga"))
    assert registry.get(job.id).status == "staged"


def test_analysts_may_not_approve_and_operators_only_for_their_brands(broker):
    job = staged_job(brand="acme")
    with pytest.raises(NotAllowed, match="only an operator or admin may approve"):
        workflow.approve(job.id, user=who("ana"))
    with pytest.raises(JobNotFound, match="not found or not yours"):  # otto sees globex only
        workflow.approve(job.id, user=who("otto"))
    approved = workflow.approve(job.id, user=who("olga"))
    assert approved.status == "approved" and approved.approval["by"] == "olga"
    assert {"diff", "snapshot", "fingerprint", "at"} <= approved.approval.keys()


def test_users_may_not_import_for_brands_that_are_not_theirs(broker):
    with pytest.raises(NotAllowed, match="may not import data for brand 'initech'"):
        workflow.submit(EXAMPLE, dataset="products", brand="initech", user=who("ana"))
    assert registry.list_jobs() == []


def test_a_removed_user_acts_no_more_even_with_a_user_object_or_a_token_in_hand(broker):
    ana = who("ana")
    users.remove("ana")
    with pytest.raises(NotAllowed, match="users list"):
        workflow.submit(EXAMPLE, dataset="products", brand="acme", user=ana)
    assert users.authenticate_token(TOKENS["ana"]) is None


def test_tokens_are_stored_hashed_and_can_be_revoked(home):
    token = users.create_token("otto")
    assert users.authenticate_token(token).name == "otto"
    stored = users.users_file().read_text()
    assert token not in stored and token.split("_")[1] in stored, "the token id is kept, the secret only hashed"
    assert users.authenticate_token(token[:-1] + ("x" if token[-1] != "x" else "y")) is None
    assert users.authenticate_token("bi_nope_nope") is None and users.authenticate_token("") is None
    users.add("otto", "operator", ["globex", "acme"], PASSWORD)  # a changed role or password keeps tokens
    assert users.authenticate_token(token).brands == ("acme", "globex")
    assert users.revoke_tokens("otto") == 2
    assert users.authenticate_token(token) is None and users.authenticate_token(TOKENS["otto"]) is None


def test_a_user_sees_only_jobs_of_their_brands(broker):
    staged_job(brand="acme")
    staged_job(brand="globex")
    assert {j.brand for j in workflow.visible_jobs(who("otto"))} == {"globex"}
    assert {j.brand for j in workflow.visible_jobs(who("olga"))} == {"acme", "globex"}


def test_rejecting_needs_a_reason_and_an_operator(broker):
    job = staged_job()
    with pytest.raises(NotAllowed):
        workflow.reject(job.id, user=who("ana"), reason="no")
    with pytest.raises(Exception, match="reason is required"):
        workflow.reject(job.id, user=who("olga"), reason=" ")
    rejected = workflow.reject(job.id, user=who("olga"), reason="wrong price list")
    assert rejected.status == "rejected" and "wrong price list" in rejected.error


def test_cli_applies_the_same_rules(home):
    job = registry.create(
        job_id="j1",
        dataset="products",
        brand="acme",
        file_name="a.csv",
        file_path=str(EXAMPLE),
        file_sha256="0",
        file_bytes=1,
        created_by="ana",
    )
    registry.transition(job.id, "pending", "staged", actor="test")
    refused = run_cli("approve", "j1", check=False, user="ana")
    assert refused.returncode == 2 and "only an operator or admin may approve" in refused.stderr
    unproven = run_cli("approve", "j1", check=False)
    assert unproven.returncode == 2 and "not logged in" in unproven.stderr and "bulkimport login" in unproven.stderr
    listed = run_cli("users", "list").stdout.splitlines()
    assert "olga\toperator\t*" in listed


def test_users_can_be_added_and_removed_from_the_cli(home):
    import subprocess
    import sys

    from tests.conftest import REPO

    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "bulkimport",
            "users",
            "add",
            "nina",
            "--role",
            "analyst",
            "--brands",
            "acme,globex",
            "--password-stdin",
        ],
        input="a long secret\n",
        text=True,
        capture_output=True,
        cwd=REPO,
    )
    assert added.returncode == 0, added.stderr
    assert users.authenticate("nina", "a long secret").brands == ("acme", "globex")
    run_cli("users", "remove", "nina")
    assert "nina" not in {u.name for u in users.list_users()}
