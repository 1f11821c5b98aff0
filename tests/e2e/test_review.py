"""Approval bound to what was reviewed, and revert, through a real broker and worker."""

import pytest

import bulkimport as bi
from bulkimport import dispatch, registry, workflow
from tests.conftest import who, write_csv

pytestmark = pytest.mark.e2e


def stage(tmp_path, name, rows, brand="acme"):
    job = workflow.submit(write_csv(tmp_path / f"{name}.csv", rows), dataset="products", brand=brand, user=who("ana"))
    job = workflow.wait(job.id, timeout=120)
    assert job.status == "staged", job.error
    return job


def test_a_commit_that_lost_the_race_returns_to_staged_for_re_approval(worker, tmp_path):
    base = stage(tmp_path, "base", ["AB-0001,cup,1.00,EUR,1,,"])
    workflow.approve(base.id, user=who("olga"))
    assert workflow.wait(base.id, timeout=60).status == "committed"

    slow = stage(tmp_path, "slow", ["AB-0001,cup,1.50,EUR,1,,"])
    fast = stage(tmp_path, "fast", ["AB-0001,cup,1.75,EUR,1,,"])
    # Approve `slow` as reviewed now, then let `fast` reach production first.
    approval = workflow.review_state(slow)
    workflow.approve(fast.id, user=who("olga"))
    assert workflow.wait(fast.id, timeout=60).status == "committed"
    registry.transition(slow.id, "staged", "approved", actor="olga", approved_by="olga", approval=approval)
    dispatch.send("commit_to_production", slow.id)
    back = workflow.wait(slow.id, until=("staged", "committed", "failed"), timeout=60)
    assert back.status == "staged"
    assert f"job {fast.id} committed since" in back.error and "approve again" in back.error
    assert [float(p) for (p,) in bi.production("products", "acme").select("price").fetchall()] == [1.75]

    workflow.approve(slow.id, user=who("olga"))
    assert workflow.wait(slow.id, timeout=60).status == "committed"
    assert [float(p) for (p,) in bi.production("products", "acme").select("price").fetchall()] == [1.5]


def test_revert_restores_the_exact_previous_rows_and_refuses_when_a_later_job_touched_them(worker, tmp_path):
    first = stage(tmp_path, "first", ["AB-0001,cup,1.00,EUR,1,,", "AB-0002,jug,2.00,EUR,2,,"])
    workflow.approve(first.id, user=who("olga"))
    workflow.wait(first.id, timeout=60)
    before = bi.production("products", "acme").order("sku").fetchall()

    second = stage(tmp_path, "second", ["AB-0001,cup,1.25,EUR,5,,", "AB-0003,new,3.00,EUR,3,,"])
    workflow.approve(second.id, user=who("olga"))
    workflow.wait(second.id, timeout=60)
    third = stage(tmp_path, "third", ["AB-0003,new,3.50,EUR,3,,"])
    workflow.approve(third.id, user=who("olga"))
    workflow.wait(third.id, timeout=60)

    workflow.revert(second.id, user=who("olga"))
    refused = workflow.wait(second.id, until=("committed", "reverted", "failed"), timeout=60)
    assert refused.status == "committed" and f"job {third.id} committed later" in refused.error

    workflow.revert(third.id, user=who("olga"))
    assert workflow.wait(third.id, until=("committed", "reverted", "failed"), timeout=60).status == "reverted"
    workflow.revert(second.id, user=who("olga"))
    assert workflow.wait(second.id, until=("committed", "reverted", "failed"), timeout=60).status == "reverted"
    assert bi.production("products", "acme").order("sku").fetchall() == before
    timeline = [(e.to_status, e.actor) for e in registry.events(second.id) if e.actor == "olga"]
    assert timeline == [("approved", "olga"), ("reverting", "olga"), ("reverting", "olga")]
