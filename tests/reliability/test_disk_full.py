"""A full disk and an unwritable home: a clear error, the job failed with the reason, production untouched.

Tests run as root, where chmod stops nothing. What really fails for root: a write past
RLIMIT_FSIZE (EFBIG, "File too large", what a full disk or quota looks like to the
program; Python ignores the SIGXFSZ that comes with it), and a path whose parent is a
regular file (ENOTDIR).
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkimport import registry, workflow
from tests.conftest import REPO, TOKENS, who
from tests.reliability.support import (
    SEED,
    Figures,
    ProductionModel,
    compare_production,
    ledger_order,
    production_rows,
    staging_problems,
    start_worker,
    timeout,
    wait_for,
    write_product_file,
)

pytestmark = [pytest.mark.e2e, timeout(300, 600)]

LIMIT = 2 << 20  # bytes a worker may write to one file: the registry and catalog stay well below it
BIG_ROWS = 40_000  # with 60-letter random names: a Parquet file of several MB


@pytest.fixture
def disk_settings(monkeypatch):
    monkeypatch.setenv("BULKIMPORT_CHUNK_ROWS", str(BIG_ROWS))  # one chunk, one Parquet file per write
    monkeypatch.setenv("BULKIMPORT_MAX_ATTEMPTS", "1")  # fail at once: no retry backoff to wait for
    monkeypatch.setenv("BULKIMPORT_REAP_INTERVAL", "1")


def _wait_final(job_id: str, until=(registry.STAGED, *registry.FINAL)) -> registry.Job:
    return wait_for(
        lambda: (j := registry.get(job_id)).status in until and j, 180, f"job {job_id} to finish", poll=0.25
    )


def _skus(n: int) -> list[str]:
    return [f"DF-{i:06d}" for i in range(n)]


def test_a_full_disk_while_staging_fails_the_job_with_the_reason(disk_settings, workers, tmp_path):
    figures = Figures("disk-full-staging")
    rng = random.Random(SEED)
    worker = start_worker(workers, file_size_limit=LIMIT)
    big = write_product_file(tmp_path / "big.csv", rng, _skus(BIG_ROWS), BIG_ROWS, tag="big", name_len=60)
    job = workflow.submit(big.path, dataset="products", brand="acme", user=who("ana"))
    done = _wait_final(job.id)
    figures.trials = figures.failures_injected = 1
    figures.extra = {"status": done.status, "error": repr((done.error or "")[:90])}
    figures.show()

    assert done.status == registry.FAILED
    assert "File too large" in done.error, done.error
    assert worker.poll() is None, "the worker survives a full disk"
    assert production_rows() == []


def test_a_full_disk_during_commit_leaves_production_as_it_was_and_retry_commits_later(
    disk_settings, workers, tmp_path
):
    figures = Figures("disk-full-commit")
    rng = random.Random(SEED)
    skus = _skus(BIG_ROWS)
    roomy = start_worker(workers)
    first = write_product_file(tmp_path / "first.csv", rng, skus[:2_000], 2_000, tag="first")
    second = write_product_file(tmp_path / "second.csv", rng, skus, BIG_ROWS, tag="second", name_len=60)
    files = {}
    job = workflow.submit(first.path, dataset="products", brand="acme", user=who("ana"))
    files[job.id] = ("acme", first)
    _wait_final(job.id)
    workflow.approve(job.id, user=who("olga"))
    assert _wait_final(job.id).status == registry.COMMITTED
    before = sorted(production_rows())
    big = workflow.submit(second.path, dataset="products", brand="acme", user=who("ana"))
    files[big.id] = ("acme", second)
    assert _wait_final(big.id).status == registry.STAGED

    workers.kill(roomy)  # the disk fills up: only a worker that cannot write big files is left
    tight = start_worker(workers, file_size_limit=LIMIT)
    workflow.approve(big.id, user=who("olga"))
    failed = _wait_final(big.id, registry.FINAL)
    after_failure = sorted(production_rows())
    assert failed.status == registry.FAILED, failed
    assert "File too large" in failed.error, failed.error
    assert tight.poll() is None, "the worker survives a full disk"
    assert after_failure == before, "nothing of the failed commit is visible in production"
    assert ledger_order() == [job.id]

    workers.kill(tight)  # space again
    start_worker(workers)
    workflow.retry(big.id, user=who("ana"))
    committed = _wait_final(big.id, registry.FINAL)
    expected = ProductionModel(files).expected(ledger_order())
    figures.trials = figures.failures_injected = 1
    figures.jobs_completed = sum(registry.get(j).status == registry.COMMITTED for j in files)
    figures.rows_lost, figures.rows_duplicated, differences = compare_production(expected, production_rows())
    figures.extra = {"error": repr(failed.error[:90]), "after_retry": committed.status}
    figures.show()
    assert committed.status == registry.COMMITTED, committed.error
    assert not staging_problems(committed, second)
    assert (figures.rows_lost, figures.rows_duplicated) == (0, 0), differences


def test_a_lake_data_folder_that_cannot_be_created_fails_the_job_naming_the_path(disk_settings, workers, tmp_path):
    started = time.monotonic()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the lake's data folder should be\n")
    bad = blocker / "data"
    worker = start_worker(workers, env={"BULKIMPORT_LAKE_DATA": str(bad)})
    example = write_product_file(tmp_path / "small.csv", random.Random(SEED), _skus(100), 100, tag="small")
    job = workflow.submit(example.path, dataset="products", brand="acme", user=who("ana"))
    done = _wait_final(job.id)
    Figures(
        "unwritable-lake-data",
        started=started,
        trials=1,
        failures_injected=1,
        extra={"status": done.status, "error": repr((done.error or "")[:90])},
    ).show()
    assert done.status == registry.FAILED
    assert str(bad) in done.error and "Not a directory" in done.error, done.error
    assert worker.poll() is None


def _cli_submit(path: Path, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bulkimport",
            "submit",
            str(path),
            "--dataset",
            "products",
            "--brand",
            "acme",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BULKIMPORT_TOKEN": TOKENS["ana"]},
        cwd=REPO,
        timeout=120,
        preexec_fn=limit,
    )


def test_an_uploads_folder_that_cannot_be_written_gives_a_clear_error_and_no_job(redis_server, home, tmp_path):
    (home / "uploads").write_text("a regular file where the uploads folder should be\n")
    small = write_product_file(tmp_path / "small.csv", random.Random(SEED), _skus(10), 10, tag="small")
    result = _cli_submit(small.path)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error:") and "uploads" in result.stderr, result.stderr
    assert registry.list_jobs() == []


def test_a_disk_that_fills_up_while_storing_an_upload_leaves_nothing_half_written(redis_server, home, tmp_path):
    big = write_product_file(
        tmp_path / "big.csv", random.Random(SEED), _skus(BIG_ROWS), BIG_ROWS, tag="big", name_len=60
    )
    started = time.monotonic()
    result = _cli_submit(big.path, file_size_limit=LIMIT)
    print(
        f"\nsubmit with a full disk: exit {result.returncode} in {time.monotonic() - started:.1f}s; "
        f"stderr ends {result.stderr[-200:]!r}"
    )
    left = [p for p in (home / "uploads").rglob("*") if p.is_file()] if (home / "uploads").exists() else []
    assert left == [], f"half-written uploads left behind: {left}"
    assert registry.list_jobs() == []
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "error:" in result.stderr
