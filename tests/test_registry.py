import threading

import pytest

from bulkimport import registry
from bulkimport.errors import InvalidTransition, JobNotFound

# Every test runs on SQLite, and on PostgreSQL too with BULKIMPORT_SCALE_OUT=1 (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("registry_backend")


def _job(job_id="j1"):
    return registry.create(
        job_id=job_id,
        dataset="products",
        brand="acme",
        file_name="a.csv",
        file_path="/x/a.csv",
        file_sha256="0" * 64,
        file_bytes=10,
        created_by="ana",
    )


def test_a_new_job_is_pending_with_an_upload_event(home):
    job = _job()
    assert job.status == registry.PENDING
    [event] = registry.events(job.id)
    assert (event.from_status, event.to_status, event.actor) == (None, "pending", "ana")


def test_transition_is_compare_and_set_and_records_who_and_when(home):
    _job()
    job = registry.transition("j1", registry.PENDING, registry.VALIDATING, actor="worker-1", count_attempt=True)
    assert job.status == "validating" and job.attempts == 1
    with pytest.raises(InvalidTransition, match="job j1 is validating; it must be pending"):
        registry.transition("j1", registry.PENDING, registry.VALIDATING, actor="worker-2")
    events = registry.events("j1")
    assert [(e.from_status, e.to_status, e.actor) for e in events][-1] == ("pending", "validating", "worker-1")
    assert len(events) == 2


def test_transition_sets_counts_and_rejects_unknown_fields(home):
    _job()
    registry.transition("j1", "pending", "validating", actor="w")
    job = registry.transition("j1", "validating", "staged", actor="w", rows_total=3, rows_valid=2, rows_rejected=1)
    assert (job.rows_total, job.rows_valid, job.rows_rejected) == (3, 2, 1)
    with pytest.raises(ValueError):
        registry.transition("j1", "staged", "approved", actor="op", file_path="/etc/passwd")


def test_registry_uses_wal_mode(home, registry_backend):
    if registry_backend != "sqlite":
        pytest.skip("WAL is SQLite's")
    _job()
    with registry.connect() as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_job_is_a_clear_error(home):
    with pytest.raises(JobNotFound, match="bulkimport jobs"):
        registry.get("nope")


def test_list_jobs_filters_by_status_and_brand(home):
    _job("a")
    _job("b")
    registry.transition("b", "pending", "failed", actor="x", error="boom")
    assert [j.id for j in registry.list_jobs(status="failed")] == ["b"]
    assert {j.id for j in registry.list_jobs(brand="acme")} == {"a", "b"}
    assert registry.count_by_status() == {"pending": 1, "failed": 1}


def test_a_running_job_is_taken_over_only_from_a_dead_worker(home):
    _job()
    first = registry.claim("j1", ("pending", "validating"), "validating", worker="h:1:10", live_workers={"h:1"})
    assert (first.status, first.claimed_by, first.attempts) == ("validating", "h:1:10", 1)
    # A redelivered message on another thread of a live worker must not run it twice at once.
    assert registry.claim("j1", ("pending", "validating"), "validating", worker="h:1:11", live_workers={"h:1"}) is None
    # Once that worker is gone, another takes it over and the attempt is counted.
    taken = registry.claim("j1", ("pending", "validating"), "validating", worker="h:2:20", live_workers={"h:2"})
    assert (taken.claimed_by, taken.attempts) == ("h:2:20", 2)
    assert registry.events("j1")[-1].note == "taken over from h:1:10"


def test_a_claim_ends_with_its_attempt(home):
    _job()
    registry.claim("j1", ("pending",), "validating", worker="h:1:10", live_workers={"h:1"})
    registry.transition("j1", "validating", "staged", actor="h:1:10")
    assert registry.get("j1").claimed_by is None
    registry.transition("j1", "staged", "approved", actor="olga")
    # The commit message may reach any thread of the same live worker.
    assert registry.claim("j1", ("approved",), "committing", worker="h:1:11", live_workers={"h:1"}) is not None


def test_only_one_of_many_racing_claims_wins(home):
    _job()
    winners = []

    def race(n):
        if registry.claim("j1", ("pending",), "validating", worker=f"h{n}:1:1", live_workers={f"h{n}:1"}):
            winners.append(n)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert registry.get("j1").attempts == 1
    assert [e.to_status for e in registry.events("j1")] == ["pending", "validating"]


def test_mappings_are_remembered_per_brand_and_an_empty_brand_list_sees_nothing(home):
    _job()
    registry.remember_mapping("products", "acme", ["SKU", "Preis"], {"Preis": "price"})
    registry.remember_mapping("products", "acme", ["SKU", "Preis"], {"Preis": "price", "SKU": "sku"})
    assert registry.remembered_mapping("products", "acme", ["SKU", "Preis"]) == {"Preis": "price", "SKU": "sku"}
    assert registry.remembered_mapping("products", "globex", ["SKU", "Preis"]) is None, "one brand's, not another's"
    assert registry.remembered_mapping("products", "acme", ["other"]) is None
    assert registry.list_jobs(brands=[]) == []
    assert [j.id for j in registry.list_jobs(brands=["acme"])] == ["j1"]


def _count_schema_runs(monkeypatch) -> list[int]:
    """Forget which registries this process has set up, and count each set-up from now on."""
    backend = type(registry._backend())
    monkeypatch.setattr(backend, "_ready", set())
    runs, create = [], backend._create_schema
    monkeypatch.setattr(backend, "_create_schema", staticmethod(lambda con: (runs.append(1), create(con))))
    return runs


def test_the_schema_is_set_up_once_per_process_not_on_every_connection(home, monkeypatch):
    runs = _count_schema_runs(monkeypatch)
    for n in range(5):
        _job(f"j{n}")
        registry.get(f"j{n}")
    assert len(runs) == 1


def test_a_registry_from_before_a_new_column_gains_it(home, monkeypatch):
    _job()
    with registry.transaction() as con:  # as if written by a version without dataset_version
        con.execute("ALTER TABLE jobs DROP COLUMN dataset_version")
    runs = _count_schema_runs(monkeypatch)  # a new process
    assert registry.get("j1").dataset_version is None
    registry.transition("j1", registry.PENDING, registry.VALIDATING, actor="w", dataset_version="v2")
    assert registry.get("j1").dataset_version == "v2" and len(runs) == 1
