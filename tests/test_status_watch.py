"""Status wake-ups through Redis: what `--wait` and the dashboard's refreshing parts block on."""

from __future__ import annotations

import time

from bulkimport import progress


def test_a_watch_wakes_on_its_job_and_an_any_job_watch_on_every_job(redis_url):
    with progress.StatusWatch("job-a") as one, progress.StatusWatch() as every:
        progress.notify_status("job-b", "staged")
        assert every.wait(2) is True
        assert one.wait(0.2) is False  # another job's change is not this job's

        progress.notify_status("job-a", "validating")
        assert one.wait(2) is True
        assert every.wait(2) is True


def test_a_change_before_the_wait_is_kept_and_a_burst_is_one_wake_up(redis_url):
    with progress.StatusWatch() as watch:
        for status in ("validating", "staged", "approved"):  # all before anyone waits
            progress.notify_status("job-a", status)
        time.sleep(0.2)
        started = time.monotonic()
        assert watch.wait(5) is True
        assert time.monotonic() - started < 1, "the change waited in the subscription"
        assert watch.wait(0.3) is False, "the burst was taken as one wake-up"


def test_without_redis_a_watch_sleeps_the_timeout(home):  # home points REDIS_URL at a port nobody serves
    started = time.monotonic()
    with progress.StatusWatch() as watch:
        assert watch.wait(0.3) is False
    assert time.monotonic() - started >= 0.3
