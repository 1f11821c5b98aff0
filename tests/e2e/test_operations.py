"""Operations with real processes: a killed worker's job is finished by another, poison files
stop after bounded attempts, cancel and retry."""

import time

import pytest

import bulkimport as bi
from bulkimport import progress, registry, workflow
from tests.conftest import EXAMPLE, who, write_products

pytestmark = pytest.mark.e2e


@pytest.fixture
def fast_healing(monkeypatch):
    monkeypatch.setenv("BULKIMPORT_REAP_INTERVAL", "2")
    monkeypatch.setenv("BULKIMPORT_CHUNK_ROWS", "5000")


def wait_for(predicate, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.usefixtures("scale_out")  # PostgreSQL and S3 with BULKIMPORT_SCALE_OUT=1
def test_a_job_whose_worker_is_killed_is_finished_by_another_worker(fast_healing, workers, tmp_path):
    big = write_products(tmp_path / "big.csv", 150_000, bad_every=1000)
    first = workers.start()
    job = workflow.submit(big, dataset="products", brand="acme", user=who("ana"))
    wait_for(lambda: progress.read(job.id).get("rows_read", 0) >= 10_000, what="the first chunks")
    workers.kill(first)
    killed_at = time.monotonic()
    workers.start()
    done = workflow.wait(job.id, timeout=240)
    recovery = time.monotonic() - killed_at
    print(f"\nrecovered from SIGKILL in {recovery:.1f}s (job {job.id}, attempt {done.attempts or 'n/a'})")
    assert done.status == "staged", done.error
    assert (done.rows_total, done.rows_valid, done.rows_rejected) == (150_000, 149_850, 150)
    assert bi.staged(job.id).count("*").fetchone()[0] == 149_850
    assert (
        bi.connect()
        .sql("SELECT count(DISTINCT sku) FROM staging.products WHERE job_id = ?", params=[job.id])
        .fetchone()[0]
        == 149_850
    )
    assert [e.to_status for e in registry.events(job.id)].count("validating") == 2


def test_a_file_that_kills_every_worker_fails_after_the_bounded_attempts(fast_healing, workers, tmp_path, monkeypatch):
    # A dataset whose check kills its own process, as the OOM killer would on a poison file.
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / "poison.py").write_text(
        "import os, signal\n"
        "import pandera.pandas as pa\n"
        "from pandera.typing import Series\n"
        "from bulkimport.datasets import Dataset\n"
        "class Poison(pa.DataFrameModel):\n"
        "    sku: Series[str]\n"
        "    @pa.check('sku')\n"
        "    def crash(cls, s):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "DATASET = Dataset(name='poison', description='kills its worker', model=Poison, key=('sku',),\n"
        "                  sql_types={'sku': 'VARCHAR'}, required=('sku',))\n"
    )
    monkeypatch.setenv("BULKIMPORT_DATASETS", str(folder))
    monkeypatch.setenv("BULKIMPORT_MAX_ATTEMPTS", "2")
    (tmp_path / "p.csv").write_text("sku\nAB-1\n")
    job = workflow.submit(tmp_path / "p.csv", dataset="poison", brand="acme", user=who("ana"))
    deadline = time.monotonic() + 180
    while registry.get(job.id).status != "failed":  # a supervisor restarting dead workers
        assert time.monotonic() < deadline, registry.get(job.id)
        if not any(p.poll() is None for p in workers.processes):
            workers.start(wait=False)
        time.sleep(0.5)
    failed = registry.get(job.id)
    assert failed.error.startswith("gave up after 2 attempts")


def test_a_cancelled_job_stops_and_stages_nothing(fast_healing, monkeypatch, workers, tmp_path):
    # Chunk by chunk on the careful path, where a long job spends its time; the fast path
    # stages this file in well under a second and looks for a cancel only between its steps.
    monkeypatch.setenv("BULKIMPORT_FAST_PATH", "0")
    workers.start()
    big = write_products(tmp_path / "big.csv", 150_000)
    job = workflow.submit(big, dataset="products", brand="acme", user=who("ana"))
    wait_for(lambda: progress.read(job.id).get("rows_read", 0) >= 5_000, what="the first chunk")
    workflow.cancel(job.id, user=who("ana"))
    wait_for(lambda: progress.read(job.id).get("phase") == "cancelled", what="the worker to notice")
    assert registry.get(job.id).status == "cancelled"
    assert bi.staged(job.id).count("*").fetchone()[0] == 0


def test_a_job_that_could_not_be_queued_can_be_retried_without_uploading_again(redis_server, workers):
    redis_server.stop()
    with pytest.raises(bi.BulkImportError):
        workflow.submit(EXAMPLE, dataset="products", brand="acme", user=who("ana"))
    [job] = registry.list_jobs()
    assert job.status == "failed"
    redis_server.start()
    workers.start()
    workflow.retry(job.id, user=who("ana"))
    assert workflow.wait(job.id, timeout=60).status == "staged"
