"""One error hierarchy: terminal errors fail a job at once and name it; transient ones retry quietly."""

import inspect
import logging

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from bulkimport import errors, registry, runner, workflow
from bulkimport.config import settings
from bulkimport.errors import BulkImportError, TerminalError, TransientError
from tests.conftest import EXAMPLE, who, write_csv


def test_every_error_is_terminal_or_transient():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, BulkImportError)]
    undecided = [c for c in classes if not issubclass(c, (TerminalError, TransientError))]
    assert undecided == [BulkImportError]


def test_an_error_about_a_job_carries_its_id_in_the_attribute_and_the_message():
    exc = errors.ApprovalOutdated("production changed; approve again", "j42")
    assert exc.job_id == "j42"
    assert str(exc) == "job j42: production changed; approve again"
    assert exc.reason == "production changed; approve again"
    # A message that already names the job does not name it twice.
    assert str(errors.RevertRefused("job j42 wrote rows that job j43 changed", "j42")).count("j42") == 1
    assert errors.FileRefused("not text").job_id is None


@pytest.fixture
def stub_worker(home, monkeypatch):
    """A real dramatiq worker over a StubBroker, running runner.validate_and_stage with quick retries."""
    broker = StubBroker()
    broker.declare_queue(settings().queue)
    monkeypatch.setattr("bulkimport.dispatch.redis_broker", lambda: broker)
    dramatiq.actor(
        runner.validate_and_stage,
        broker=broker,
        actor_name="validate_and_stage",
        queue_name=settings().queue,
        max_retries=settings().max_attempts - 1,
        min_backoff=10,
        max_backoff=20,
    )
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    yield broker
    worker.stop()


def _run(broker: StubBroker, path, caplog) -> registry.Job:
    job = workflow.submit(workflow.store_upload(path), dataset="products", brand="acme", user=who("ana"))
    with caplog.at_level(logging.INFO):
        broker.join(settings().queue, timeout=60_000, fail_fast=False)
    return registry.get(job.id)


def test_a_retried_attempt_logs_one_line_and_no_traceback_and_the_job_still_stages(stub_worker, monkeypatch, caplog):
    real = runner.stage_file
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the lake's disk went away for a moment")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "stage_file", flaky)
    job = _run(stub_worker, EXAMPLE, caplog)
    assert job.status == "staged" and len(calls) == 2
    assert [r for r in caplog.records if r.exc_info] == []
    retried = [r.getMessage() for r in caplog.records if "will retry" in r.getMessage()]
    assert retried == [f"job={job.id} attempt 1 failed, will retry: the lake's disk went away for a moment"]


def test_a_job_that_fails_every_attempt_ends_failed_with_the_reason(stub_worker, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(runner, "stage_file", broken)
    job = _run(stub_worker, EXAMPLE, caplog)
    limit = settings().max_attempts
    assert job.status == "failed"
    assert job.error == f"gave up after {limit} attempts: no space left on device"
    assert [r for r in caplog.records if r.exc_info] == []


def test_a_terminal_error_fails_the_job_at_once_without_its_id_twice(stub_worker, monkeypatch, caplog, tmp_path):
    def refused(con, job, *args, **kwargs):
        raise errors.FileRefused("no header matches the dataset", job.id)

    monkeypatch.setattr(runner, "stage_file", refused)
    job = _run(stub_worker, write_csv(tmp_path / "a.csv", ["x"]), caplog)
    assert (job.status, job.error) == ("failed", "no header matches the dataset")
    assert not any("will retry" in r.getMessage() for r in caplog.records)
