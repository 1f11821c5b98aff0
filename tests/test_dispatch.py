"""The sending side: messages by actor name, and no job stuck when the broker is down."""

import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from bulkimport import dispatch, registry, workflow
from bulkimport.config import settings
from bulkimport.errors import DispatchError
from tests.conftest import EXAMPLE, who


@pytest.fixture
def stub_broker(home, monkeypatch):
    broker = StubBroker()
    broker.declare_queue(settings().queue)  # StubBroker refuses undeclared queues
    monkeypatch.setattr(dispatch, "redis_broker", lambda: broker)
    return broker


def test_send_enqueues_the_actor_by_name_with_the_job_id(stub_broker):
    dispatch.send("commit_to_production", "abc123")
    [raw] = list(stub_broker.queues[settings().queue].queue)
    message = Message.decode(raw)
    assert (message.queue_name, message.actor_name, message.args) == ("bulkimport", "commit_to_production", ("abc123",))


def test_submit_records_a_pending_job_and_queues_validate_and_stage(stub_broker):
    job = workflow.submit(EXAMPLE, dataset="products", brand="acme", user=who("ana"))
    assert registry.get(job.id).status == "pending"
    assert job.file_name == "products.csv" and job.file_bytes == EXAMPLE.stat().st_size
    [raw] = list(stub_broker.queues[settings().queue].queue)
    message = Message.decode(raw)
    assert (message.actor_name, message.args) == ("validate_and_stage", (job.id,))


def test_unknown_actor_names_are_refused(stub_broker):
    with pytest.raises(ValueError):
        dispatch.send("drop_everything", "abc")


def test_submit_with_redis_down_fails_the_job_with_the_reason(home):
    with pytest.raises(DispatchError, match="is unreachable") as caught:
        workflow.submit(EXAMPLE, dataset="products", brand="acme", user=who("ana"))
    [job] = registry.list_jobs()
    assert job.status == "failed"
    assert job.error == str(caught.value)
    assert "Start Redis" in job.error


def test_approve_with_redis_down_puts_the_job_back_to_staged(home):
    registry.create(
        job_id="s1",
        dataset="products",
        brand="acme",
        file_name="a.csv",
        file_path="/x",
        file_sha256="0",
        file_bytes=1,
        created_by="ana",
    )
    registry.transition("s1", "pending", "staged", actor="test")
    with pytest.raises(DispatchError):
        workflow.approve("s1", user=who("olga"))
    job = registry.get("s1")
    assert job.status == "staged" and job.approved_by is None
    assert job.error.startswith("approval undone: could not queue commit_to_production")
    assert [e.to_status for e in registry.events("s1")][-2:] == ["approved", "staged"]


@pytest.mark.parametrize(
    "name, stored",
    [("../../etc/passwd", "passwd"), ("a b\x00c.csv", "a_bc.csv"), ("", "upload.csv"), (".hidden.csv", "hidden.csv")],
)
def test_uploaded_file_names_are_sanitised(name, stored):
    assert workflow.safe_file_name(name) == stored


def test_bad_brand_is_refused_before_anything_is_stored(stub_broker):
    with pytest.raises(Exception, match="brand"):
        workflow.submit(EXAMPLE, dataset="products", brand="a/b", user=who("ana"))
    assert registry.list_jobs() == []


def test_an_upload_over_the_cap_is_refused_and_nothing_is_kept(stub_broker, monkeypatch):
    import io

    from bulkimport.errors import UploadTooLarge

    monkeypatch.setenv("BULKIMPORT_UPLOAD_MAX_MB", "1")
    big = io.BytesIO(b"sku,name\n" + b"AB-01,x\n" * 200_000)  # ~1.6 MB, size unknown up front
    with pytest.raises(UploadTooLarge, match="larger than the upload limit of 1 MB"):
        workflow.submit(big, dataset="products", brand="acme", user=who("ana"), file_name="big.csv")
    assert registry.list_jobs() == []
    assert not any(settings().uploads.rglob("*.csv"))


def test_a_file_name_with_dots_and_nul_is_stored_inside_the_uploads_folder(stub_broker):
    import io

    upload = workflow.store_upload(io.BytesIO(EXAMPLE.read_bytes()), file_name="../../etc/pass\x00wd.csv")
    assert upload.path.is_relative_to(settings().uploads)
    assert upload.path.name == "passwd.csv"


def test_uploads_that_never_became_a_job_are_swept_once_a_day_old(stub_broker):
    import os
    import time

    abandoned = workflow.store_upload(EXAMPLE)  # previewed, then the tab was closed
    fresh = workflow.store_upload(EXAMPLE)  # still in someone's form
    job = workflow.submit(workflow.store_upload(EXAMPLE), dataset="products", brand="acme", user=who("ana"))
    day_old = time.time() - 86_400 - 60
    for folder in (abandoned.path.parent, settings().uploads / job.id):
        os.utime(folder, (day_old, day_old))

    removed = workflow.sweep_abandoned_uploads()

    assert [folder.name for folder in removed] == [abandoned.job_id]
    assert not abandoned.path.exists()
    assert fresh.path.exists()
    assert registry.get(job.id).file_path and (settings().uploads / job.id).is_dir()  # a job's file stays


def test_a_delivered_message_still_claims_its_job_while_redis_cannot_list_live_workers(stub_broker, monkeypatch):
    import redis

    from bulkimport import progress, runner

    job = workflow.submit(workflow.store_upload(EXAMPLE), dataset="products", brand="acme", user=who("ana"))

    def down():
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    monkeypatch.setattr(progress, "live_workers", down)
    claimed = runner._start(job.id, (registry.PENDING, registry.VALIDATING), registry.VALIDATING)
    assert claimed is not None and claimed.status == registry.VALIDATING and claimed.claimed_by
    # A job another worker holds is left alone: with no heartbeats to read, every holder counts as alive.
    monkeypatch.setattr(runner, "_worker", lambda: "another-host:1:1")
    assert runner._start(job.id, (registry.PENDING, registry.VALIDATING), registry.VALIDATING) is None
