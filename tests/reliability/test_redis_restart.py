"""Redis restart and Redis outage: jobs finish; while it is gone the CLI and dashboard say so.

Redis runs with AOF on (as `bulkimport up` starts it) and keeps its data folder across
a restart, so queued messages survive it; the registry is the source of truth for the rest.
"""

from __future__ import annotations

import collections
import random
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from bulkimport import registry, sessions, ui, users, workflow
from bulkimport.config import masked
from bulkimport.errors import BulkImportError
from tests.conftest import EXAMPLE, REPO, run_cli, who
from tests.reliability.support import (
    SEED,
    Figures,
    ProductionModel,
    compare_production,
    ledger_order,
    production_rows,
    scale,
    staging_problems,
    timeout,
    wait_for,
    write_product_file,
)

pytestmark = [pytest.mark.e2e, timeout(300, 900)]

BRANDS = ("acme", "globex", "marker")
OUTAGE_S = scale(5, 30)


@pytest.fixture
def fast_healing(monkeypatch):
    monkeypatch.setenv("BULKIMPORT_REAP_INTERVAL", "1")
    monkeypatch.setenv("BULKIMPORT_CHUNK_ROWS", "1000")


def _submit_files(tmp_path, rng, count: int, rows: int) -> dict:
    files = {}
    for n in range(count):
        brand = BRANDS[n % len(BRANDS)]
        product_file = write_product_file(
            tmp_path / f"f{n}.csv", rng, [f"RS-{i:06d}" for i in range(rows * 2)], rows, tag=f"f{n}"
        )
        job = workflow.submit(product_file.path, dataset="products", brand=brand, user=who("ana"))
        files[job.id] = (brand, product_file)
    return files


def _approve_staged(files, errors: collections.Counter) -> None:
    for job_id in files:
        if registry.get(job_id).status == registry.STAGED:
            try:
                workflow.approve(job_id, user=who("olga"))
            except BulkImportError as exc:  # Redis down: the approval is undone, the operator tries again
                errors[type(exc).__name__] += 1


def test_jobs_queued_and_running_finish_across_redis_restarts(fast_healing, redis_server, workers, tmp_path):
    rng = random.Random(SEED)
    figures = Figures("redis-restart")
    workers.start(processes=1, threads=2)
    files = _submit_files(tmp_path, rng, scale(6, 12), scale(8_000, 15_000))
    errors = collections.Counter()

    def restart(when: str) -> None:
        redis_server.stop()
        time.sleep(rng.uniform(0.5, 2))
        redis_server.start()
        figures.failures_injected += 1
        figures.extra.setdefault("restarted_while", []).append(when)

    # Restart while one job runs and the rest wait in the queue.
    wait_for(
        lambda: any(registry.get(j).status == registry.VALIDATING and registry.get(j).claimed_by for j in files),
        60,
        "a job to be validating",
    )
    queued = sum(registry.get(j).status == registry.PENDING for j in files)
    restart(f"validating, {queued} queued")
    # And again while commits run.
    wait_for(
        lambda: (
            _approve_staged(files, errors)
            or any(registry.get(j).status in (registry.APPROVED, registry.COMMITTING) for j in files)
        ),
        300,
        "a commit to be under way",
    )
    restart("committing")
    started = time.monotonic()

    def finished() -> bool:
        _approve_staged(files, errors)
        return all(registry.get(j).status in registry.FINAL for j in files)

    wait_for(finished, scale(240, 600), "every job to finish", poll=0.5)
    final = {j: registry.get(j) for j in files}
    figures.trials = figures.failures_injected
    figures.jobs_completed = sum(j.status == registry.COMMITTED for j in final.values())
    expected = ProductionModel(files).expected(ledger_order())
    figures.rows_lost, figures.rows_duplicated, differences = compare_production(expected, production_rows())
    figures.extra.update(
        jobs=len(files),
        approval_refusals=dict(errors),
        finished_s_after_last_restart=round(time.monotonic() - started, 1),
    )
    figures.show()

    assert figures.jobs_completed == len(files), {j: (job.status, job.error) for j, job in final.items()}
    problems = [p for j, (_, product_file) in files.items() for p in staging_problems(final[j], product_file)]
    assert not problems, problems
    assert (figures.rows_lost, figures.rows_duplicated) == (0, 0), differences


def _banner_text() -> str:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=30)
    at.session_state[ui.SESSION] = sessions.start(users.get("ana"))
    at.run()
    assert not at.exception, at.exception
    return re.sub(r"\\([^A-Za-z0-9\s])", r"\1", "\n".join(e.value for e in at.error).replace("**", ""))


def test_while_redis_is_gone_cli_and_dashboard_say_so_and_jobs_resume_after(
    fast_healing, redis_server, workers, tmp_path
):
    rng = random.Random(SEED + 1)
    figures = Figures("redis-outage")
    workers.start(processes=1, threads=2)
    files = _submit_files(tmp_path, rng, 4, scale(8_000, 15_000))
    wait_for(lambda: any(registry.get(j).status == registry.VALIDATING for j in files), 60, "a job to be validating")
    before = {j: registry.get(j).status for j in files}

    redis_server.stop()
    gone = time.monotonic()
    submitted = run_cli("submit", str(EXAMPLE), "--dataset", "products", "--brand", "acme", check=False, user="ana")
    banner = _banner_text()
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - gone)))
    redis_server.start()
    back = time.monotonic()
    figures.failures_injected = 1

    assert submitted.returncode == 3, submitted.stderr
    shown = masked(redis_server.url)  # the broker named, its password never
    assert "unreachable" in submitted.stderr and shown in submitted.stderr, submitted.stderr
    assert redis_server.password not in submitted.stderr
    assert "Traceback" not in submitted.stderr
    assert "broker is unreachable" in banner and shown in banner and redis_server.password not in banner, banner
    [refused] = [j for j in registry.list_jobs() if j.id not in files]
    assert refused.status == registry.FAILED and "unreachable" in refused.error

    # After Redis returns: what was queued or running finishes; what could not be queued is retried.
    retried = run_cli("retry", refused.id, "--wait", "--timeout", "240", check=False, user="ana")
    wait_for(
        lambda: all(registry.get(j).status in (registry.STAGED, *registry.FINAL) for j in files),
        scale(240, 600),
        "the jobs to resume",
        poll=0.5,
    )
    resumed_after = time.monotonic() - back
    final = {j: registry.get(j) for j in files}
    figures.trials = 1
    figures.jobs_completed = sum(j.status == registry.STAGED for j in final.values()) + (
        registry.get(refused.id).status == registry.STAGED
    )
    figures.extra = {
        "outage_s": OUTAGE_S,
        "states_when_redis_went": dict(collections.Counter(before.values())),
        "cli_exit_code": submitted.returncode,
        "all_staged_s_after_return": round(resumed_after, 1),
    }
    figures.show()

    assert retried.returncode == 0, retried.stderr
    assert registry.get(refused.id).status == registry.STAGED
    assert all(job.status == registry.STAGED for job in final.values()), {
        j: (x.status, x.error) for j, x in final.items()
    }
    problems = [p for j, (_, product_file) in files.items() for p in staging_problems(final[j], product_file)]
    assert not problems, problems
