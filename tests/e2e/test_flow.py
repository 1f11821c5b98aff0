"""The whole flow through a real redis-server and real dramatiq worker processes."""

import csv
import io
import json
import time

import pytest
import redis

import bulkimport as bi
from bulkimport import dispatch, progress, registry, workflow
from bulkimport.config import settings
from tests.conftest import EXAMPLE, run_cli, who

# With BULKIMPORT_SCALE_OUT=1 the registry and lake catalog are in PostgreSQL, data and uploads in S3.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("scale_out")]

STATUS_FIELDS = {
    "id",
    "dataset",
    "brand",
    "status",
    "file_name",
    "file_sha256",
    "rows_total",
    "rows_valid",
    "rows_rejected",
    "error",
    "created_by",
    "approved_by",
    "created_at",
    "updated_at",
}


def submit_and_wait(path=EXAMPLE, brand="acme", *extra: str) -> dict:
    result = run_cli(
        "submit", str(path), "--dataset", "products", "--brand", brand, "--wait", "--json", *extra, user="ana"
    )
    return json.loads(result.stdout)


def test_a_csv_goes_from_upload_to_production_and_a_second_import_duplicates_nothing(worker, scale_out):
    job = submit_and_wait()
    if scale_out:  # the upload went to object storage, where a worker on any host finds it
        assert registry.get(job["id"]).file_path.startswith("s3://")
        with registry.connect() as con:
            assert type(con).__name__ == "_PgConnection"
    assert job["status"] == "staged"
    assert (job["rows_total"], job["rows_valid"], job["rows_rejected"]) == (16, 7, 9)
    assert job["rows_valid"] + job["rows_rejected"] == job["rows_total"]

    status = json.loads(run_cli("status", job["id"], "--json", user="ana").stdout)
    assert STATUS_FIELDS <= status.keys()

    rejected = list(csv.DictReader(io.StringIO(run_cli("export", job["id"], "--rejected", "-", user="ana").stdout)))
    assert {int(r["line"]) for r in rejected} == {6, 7, 8, 9, 10, 11, 12, 14, 17}
    # Ready to fix and re-upload: the file's own columns, then where and why.
    assert list(rejected[0].keys()) == [
        "sku",
        "name",
        "price",
        "currency",
        "stock",
        "ean",
        "launch_date",
        "line",
        "reason",
        "column",
        "detail",
    ]
    knock_box = next(r for r in rejected if r["line"] == "6")
    assert (knock_box["sku"], knock_box["price"], knock_box["reason"]) == ("ACME-1005", "-3.00", "constraint-error")
    duplicate = next(r for r in rejected if r["line"] == "14")
    assert (duplicate["sku"], duplicate["reason"]) == ("ACME-1002", "duplicate-key")
    staged = list(
        csv.DictReader(io.StringIO(run_cli("export", job["id"], "--staged", "-", "--format", "csv", user="ana").stdout))
    )
    assert len(staged) == 7

    approved = run_cli("approve", job["id"], "--wait", "--json", user="olga")
    committed = json.loads(approved.stdout)
    assert (committed["status"], committed["approved_by"], committed["rows_inserted"]) == ("committed", "olga", 7)
    assert bi.production("products", "acme").count("*").fetchone()[0] == 7

    # The same file again is refused unless asked for: it would change nothing.
    refused = run_cli("submit", str(EXAMPLE), "--dataset", "products", "--brand", "acme", check=False, user="ana")
    assert refused.returncode == 2
    assert f"is already committed as job {job['id']}" in refused.stderr and "--allow-duplicate" in refused.stderr
    assert len(registry.list_jobs()) == 1
    again = submit_and_wait(EXAMPLE, "acme", "--allow-duplicate")
    assert again["status"] == "staged"
    assert bi.diff(again["id"]).to_dict() == {
        "rows_to_insert": 0,
        "rows_to_update": 0,
        "rows_unchanged": 7,
        "changed_columns": {},
        "rows_to_delete": 0,
        "rows_conflicting": 0,
        "production_rows": 0,
    }
    json.loads(run_cli("approve", again["id"], "--wait", "--json", user="olga").stdout)
    rows = bi.connect().sql("SELECT count(*), count(DISTINCT sku) FROM production.products WHERE brand = 'acme'")
    assert rows.fetchone() == (7, 7)
    history = [e.to_status for e in registry.events(job["id"])]
    assert history == ["pending", "validating", "staged", "approved", "committing", "committed"]


def test_a_job_waits_pending_without_a_worker_and_runs_when_one_starts(workers):
    result = run_cli("submit", str(EXAMPLE), "--dataset", "products", "--brand", "acme", "--json", user="ana")
    job_id = json.loads(result.stdout)["id"]
    health = progress.health()
    assert health.redis_ok and health.workers_on_queue == [] and health.queue_depth == 1
    assert registry.get(job_id).status == "pending"
    workers.start()
    assert workflow.wait(job_id, timeout=60).status == "staged"


def _handled(messages, home, job_id: str, timeout: float = 60) -> None:
    """Wait until the worker has taken and acknowledged each message, and said it had nothing to do for the job.

    A message stays in its queue's hash in Redis until a worker acknowledges it; a failed one would come
    back in the delay queue (a retry) or the dead-letter queue instead."""
    client = redis.Redis.from_url(settings().redis_url)
    queue = f"dramatiq:{settings().queue}"
    ignored = f"job={job_id} is committed (claimed by"

    def log_lines() -> int:
        return sum(log.read_text(errors="replace").count(ignored) for log in home.glob("worker-*.log"))

    deadline = time.monotonic() + timeout
    while any(client.hexists(f"{queue}.msgs", m.options["redis_message_id"]) for m in messages) or log_lines() < len(
        messages
    ):
        assert time.monotonic() < deadline, "the redelivered messages were not handled in time"
        time.sleep(0.1)
    assert (client.hlen(f"{queue}.DQ.msgs"), client.hlen(f"{queue}.XQ.msgs")) == (0, 0), "a redelivery failed"
    assert log_lines() == len(messages)


def test_redelivered_messages_change_nothing(worker, home):
    job = submit_and_wait()
    workflow.approve(job["id"], user=who("olga"))
    assert workflow.wait(job["id"], timeout=60).status == "committed"
    before = bi.production("products").order("sku").fetchall()
    # At-least-once delivery: the same messages may arrive again.
    again = [dispatch.send("validate_and_stage", job["id"]), dispatch.send("commit_to_production", job["id"])]
    _handled(again, home, job["id"])
    assert registry.get(job["id"]).status == "committed"
    assert bi.production("products", "acme").order("sku").fetchall() == [r for r in before if r[0] == "acme"]
    assert bi.connect().sql("SELECT count(*) FROM audit.ledger WHERE job_id = ?", params=[job["id"]]).fetchone() == (1,)


def test_with_redis_stopped_submit_and_approve_say_why_and_leave_no_job_stuck(redis_server, workers):
    workers.start()
    job = submit_and_wait()
    workers.stop()
    redis_server.stop()

    refused = run_cli("approve", job["id"], check=False, user="olga")
    assert refused.returncode != 0
    assert "is unreachable" in refused.stderr and "REDIS_URL" in refused.stderr
    assert registry.get(job["id"]).status == "staged"

    failed = run_cli(
        "submit",
        str(EXAMPLE),
        "--dataset",
        "products",
        "--brand",
        "acme",
        "--json",
        "--allow-duplicate",
        check=False,
        user="ana",
    )
    assert failed.returncode != 0 and "is unreachable" in failed.stderr
    newest = registry.list_jobs()[0]
    assert newest.status == "failed" and "is unreachable" in newest.error
