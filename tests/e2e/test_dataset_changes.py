"""A dataset module that changes under running workers: versions bind approval to the definition that validated a
job, and a breaking change fails jobs at once until an admin migrates. Real Redis, real worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import bulkimport as bi
from bulkimport import dispatch, registry, schema_evolution, sessions, ui, users, workflow
from bulkimport.datasets import get_dataset
from bulkimport.errors import DatasetChanged
from tests.conftest import REPO, run_cli, who
from tests.test_schema_evolution import V1, V1_TYPES, V2, V2_TYPES, write_items

pytestmark = pytest.mark.e2e


@pytest.fixture
def items(home, tmp_path, monkeypatch, workers) -> Path:
    """A folder of dataset modules holding `items` (version 1), and a worker that reads it."""
    folder = tmp_path / "datasets"
    folder.mkdir()
    monkeypatch.setenv("BULKIMPORT_DATASETS", str(folder))
    write_items(folder, V1, V1_TYPES, ("code", "qty", "price"))
    workers.start()
    yield folder
    bi.close()


def staged(tmp_path: Path, name: str, lines: list[str], header: str = "code,qty,price") -> registry.Job:
    path = tmp_path / f"{name}.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    job = workflow.wait(workflow.submit(path, dataset="items", brand="acme", user=who("ana")).id, timeout=120)
    assert job.status == "staged", job.error
    return job


def test_a_dataset_changed_between_staging_and_approval_needs_a_recheck(items, tmp_path):
    job = staged(tmp_path, "first", ["A,1,1.50", "B,2,2.50"])
    assert job.dataset_version == get_dataset("items").version

    changed = write_items(items, V2, V2_TYPES, ("code", "qty"))
    assert workflow.dataset_changed(job)
    with pytest.raises(DatasetChanged, match=f"`bulkimport recheck {job.id}`"):
        workflow.approve(job.id, user=who("olga"))

    at = AppTest.from_file(REPO / "app.py", default_timeout=60)
    at.session_state[ui.SESSION] = sessions.start(users.get("olga"))
    at.switch_page("views/review.py")
    at.query_params["job"] = job.id
    at.run()
    assert not at.exception, at.exception
    warning = "\n".join(w.value for w in at.warning)
    assert f"The dataset items changed after this job was validated (version {job.dataset_version}" in warning
    keys = {b.key for b in at.button if b.key}
    assert ui.REVIEW_APPROVE not in keys and ui.REVIEW_RECHECK in keys
    at.button(key=ui.REVIEW_RECHECK).click().run()
    assert f"Job {job.id} sent to be checked again" in "\n".join(s.value for s in at.success)

    rechecked = workflow.wait(job.id, timeout=120)
    assert (rechecked.status, rechecked.dataset_version, rechecked.rows_valid) == ("staged", changed.version, 2)
    workflow.approve(job.id, user=who("olga"))
    assert workflow.wait(job.id, until=registry.FINAL, timeout=120).status == "committed"
    assert bi.production("items", "acme").select("code, colour").fetchall() == [("A", None), ("B", None)]
    assert schema_evolution.migrations("items")[-1]["changes"][-1] == "column price made optional"

    # Changed again after the approval, before the worker commits: the commit comes back for a re-check.
    second = staged(tmp_path, "second", ["C,3,,red"], header="code,qty,price,colour")
    approval = workflow.review_state(second)
    write_items(
        items, V2 + "\n    size: Series[float] = pa.Field(nullable=True)", {**V2_TYPES, "size": "DOUBLE"}, ("code",)
    )
    registry.transition(second.id, "staged", "approved", actor="olga", approved_by="olga", approval=approval)
    dispatch.send("commit_to_production", second.id)
    back = workflow.wait(second.id, until=("staged", "committed", "failed"), timeout=120)
    assert back.status == "staged" and "changed since job" in back.error and "recheck" in back.error
    assert registry.events(second.id)[-1].note == "dataset changed"
    assert bi.production("items", "acme").count("*").fetchone()[0] == 2, "nothing of it reached production"


def test_a_breaking_change_fails_jobs_at_once_naming_the_change_until_an_admin_migrates(items, tmp_path):
    [created] = schema_evolution.migrations("items")
    assert created["kind"] == "created" and created["applied_by"].startswith("worker "), "made on the worker's boot"
    first = staged(tmp_path, "first", ["A,1,1.50", "B,2,2.50"])
    workflow.approve(first.id, user=who("olga"))
    assert workflow.wait(first.id, until=registry.FINAL, timeout=120).status == "committed"

    write_items(items, "code: Series[str]\nqty: Series[int]", {"code": "VARCHAR", "qty": "INTEGER"}, ("code", "qty"))
    path = tmp_path / "second.csv"
    path.write_text("code,qty\nC,3\n")
    job = workflow.submit(path, dataset="items", brand="acme", user=who("ana"))
    failed = workflow.wait(job.id, timeout=120)
    assert failed.status == "failed" and failed.attempts == 1, "failed at once, not retried"
    assert "column price (DECIMAL(12,2)) removed" in failed.error
    assert "`bulkimport datasets migrate items`" in failed.error

    doctor = run_cli("doctor", check=False)
    assert (
        doctor.returncode == 1
        and "FAIL datasets           items: column price (DECIMAL(12,2)) removed" in doctor.stdout
    )
    assert "jobs of items fail until an admin runs `bulkimport datasets migrate items`" in doctor.stdout

    run_cli("datasets", "migrate", "items", "--yes", user="root")
    assert "ok   datasets" in run_cli("doctor", check=False).stdout
    workflow.retry(job.id, user=who("ana"))
    assert workflow.wait(job.id, timeout=120).status == "staged"
    workflow.approve(job.id, user=who("olga"))
    assert workflow.wait(job.id, until=registry.FINAL, timeout=120).status == "committed"
    assert bi.production("items", "acme").select("code, qty").fetchall() == [("A", 1), ("B", 2), ("C", 3)]
