"""The reaper thread outlives a failing registry: it logs, backs off and reaps again."""

from __future__ import annotations

import sqlite3
import threading

from bulkimport import healing
from bulkimport.middleware import Reaper


def test_the_reaper_carries_on_after_a_registry_error(monkeypatch, caplog):
    calls, recovered = [], threading.Event()

    def flaky_reap(interval_s):
        calls.append(interval_s)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        recovered.set()
        return healing.ReapReport(resent=["job1"])

    monkeypatch.setattr(healing, "reap_if_leader", flaky_reap)
    reaper = Reaper(interval_s=0.01, max_backoff_s=0.05)
    thread = threading.Thread(target=reaper.run, daemon=True)
    with caplog.at_level("INFO", logger="bulkimport.middleware"):
        thread.start()
        assert recovered.wait(5), "the reaper stopped after the registry error"
        reaper._stop.set()
        thread.join(5)
    assert len(calls) >= 2
    assert "reaper tick failed" in caplog.text and "database is locked" in caplog.text
    assert "re-sent ['job1']" in caplog.text


def test_backoff_grows_while_ticks_fail_and_stays_bounded(monkeypatch):
    waits = []
    reaper = Reaper(interval_s=1, max_backoff_s=4)

    def fail():
        raise RuntimeError("PostgreSQL is restarting")

    def record_wait(seconds):
        waits.append(seconds)
        return len(waits) > 5  # stop after a few ticks

    monkeypatch.setattr(reaper, "tick", fail)
    monkeypatch.setattr(reaper._stop, "wait", record_wait)
    reaper.run()
    assert waits == [1, 2, 4, 4, 4, 4]
