"""A private bulkimport installation for the end-to-end contender and --latency: Redis, users, one real worker.

Everything lives under one folder (BULKIMPORT_HOME) and a Redis on a free port,
so nothing touches the machine's own installation. Commands run as the real
`bulkimport` CLI does, as one of two users: an analyst who uploads and an
operator who approves (nobody approves their own upload).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.measure import REPO, timed

BRAND = "acme"
UPLOADER, APPROVER = "ana", "olga"
PASSWORD = "bench password"
USERS = ((UPLOADER, "analyst"), (APPROVER, "operator"))


def bulkimport_command() -> list[str]:
    """The `bulkimport` entry point of this environment, as a user types it."""
    found = shutil.which("bulkimport", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "bulkimport"]


def _identity(name: str) -> tuple[list[str], dict[str, str]]:
    """How a command says who runs it: a personal token (BULKIMPORT_TOKEN) where bulkimport has them
    (issue 14), else ``--as NAME``. Returns (arguments to add, environment to add)."""
    from bulkimport import users

    if hasattr(users, "create_token"):
        return [], {"BULKIMPORT_TOKEN": users.create_token(name)}
    return ["--as", name], {}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a running process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class Running:
    """The running installation: run CLI commands as a user, read the worker's memory and log."""

    def __init__(self, worker: subprocess.Popen, log: Path, identities: dict[str, tuple[list[str], dict[str, str]]]):
        self.worker = worker
        self.log = log
        self.identities = identities

    def cli(
        self, args: list[str], as_user: str | None = None, timeout: float = 600
    ) -> tuple[subprocess.CompletedProcess, float]:
        """Run `bulkimport ARGS` (as ``as_user``); the finished process and the seconds it took."""
        extra_args, extra_env = self.identities[as_user] if as_user else ([], {})
        command = [*bulkimport_command(), *args, *extra_args]
        env = {**os.environ, **extra_env}
        return timed(
            lambda: subprocess.run(
                command, capture_output=True, text=True, env=env, cwd=REPO, stdin=subprocess.DEVNULL, timeout=timeout
            )
        )

    def worker_peaks_mb(self) -> list[float]:
        """Peak memory of each of the worker's processes (dramatiq forks them from its main process)."""
        return [vm_hwm_mb(pid) for pid in _children(self.worker.pid)]

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _wait_for_worker(process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    from bulkimport import progress

    deadline = time.monotonic() + timeout
    while not any(w["pid"] in _children(process.pid) for w in progress.health().workers_on_queue):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start; {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@contextmanager
def running(home: Path) -> Iterator[Running]:
    """Redis on a free port, the two users, and one worker process (as `bulkimport up` starts it), under ``home``.

    Sets BULKIMPORT_HOME and REDIS_URL in this process, so the library reads the same lake and registry.
    """
    home.mkdir(parents=True, exist_ok=True)
    os.environ["BULKIMPORT_HOME"] = str(home)
    from bulkimport import launcher

    port = launcher.free_port()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    from bulkimport import users
    from bulkimport.config import settings

    for name, role in USERS:
        users.add(name, role, [BRAND], PASSWORD)
    identities = {name: _identity(name) for name, _ in USERS}
    started: list[subprocess.Popen] = []
    log = home / "worker.log"
    try:
        started.append(launcher.start_redis(port, home / "redis"))
        with open(log, "wb") as out:
            worker = subprocess.Popen(
                launcher.worker_command(1, settings().worker_threads),
                env=dict(os.environ),
                stdout=out,
                stderr=out,
                cwd=REPO,
                start_new_session=True,
            )
        started.append(worker)
        _wait_for_worker(worker, log)
        yield Running(worker, log, identities)
    finally:
        launcher.stop(started)
