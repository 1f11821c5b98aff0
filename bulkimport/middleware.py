"""Worker middleware: a heartbeat in Redis so senders can tell a worker is listening."""

from __future__ import annotations

import logging
import threading

import redis
from dramatiq import Middleware

from bulkimport import progress

log = logging.getLogger(__name__)


class WorkerHeartbeat(Middleware):
    """Publish ``bulkimport:worker:<host>:<pid>`` every few seconds while the worker runs."""

    def __init__(self, interval_s: float = 5.0):
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker):
        queues = sorted(broker.get_declared_queues())

        def run():
            while not self._stop.is_set():
                try:
                    progress.beat(queues, worker.worker_threads)
                except redis.RedisError as exc:
                    log.warning("heartbeat failed: %s", exc)
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=run, name="bulkimport-heartbeat", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()
        progress.forget_worker()


class Reaper(Middleware):
    """Every ``interval_s``, one worker (a Redis lock decides) re-sends stuck jobs: see bulkimport.healing.

    A tick that fails (a locked registry, PostgreSQL restarting) is logged and the next one
    waits longer, up to ``max_backoff_s``; the thread itself never stops until the worker does.
    """

    def __init__(self, interval_s: float = 30.0, max_backoff_s: float = 300.0):
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self._stop = threading.Event()

    def tick(self) -> None:
        from bulkimport import healing

        report = healing.reap_if_leader(self.interval_s)
        if report and (report.resent or report.failed):
            log.info("reaper: re-sent %s, failed %s", report.resent, report.failed)

    def run(self) -> None:
        wait = self.interval_s
        while not self._stop.wait(wait):
            try:
                self.tick()
                wait = self.interval_s
            except Exception:  # noqa: BLE001 - one failed tick must not end healing for this worker
                wait = min(self.max_backoff_s, wait * 2)
                log.exception("reaper tick failed; next try in %.0f s", wait)

    def after_worker_boot(self, broker, worker):
        threading.Thread(target=self.run, name="bulkimport-reaper", daemon=True).start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()


class KeepDatasetsCurrent(Middleware):
    """On worker boot, bring every dataset's lake tables in step with its definition (bulkimport.schema_evolution).

    Additive changes apply at once; breaking ones are logged and fail that dataset's jobs until a
    person migrates. A lake that cannot be reached is logged, never a reason not to start: each
    job checks its own dataset again.
    """

    def after_worker_boot(self, broker, worker):
        from bulkimport import schema_evolution

        try:
            schema_evolution.keep_all_current(actor=f"worker {progress.worker_id()}")
        except Exception as exc:  # noqa: BLE001 - a broken dataset module, say: jobs say why
            log.warning("could not compare the datasets with the lake on start: %s", exc)
