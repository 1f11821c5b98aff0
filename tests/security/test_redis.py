"""Item 7: the Redis `bulkimport up` started had no password, and a forged dead letter made the reaper
fail another brand's running job with the forger's text."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import redis
from dramatiq import Message

from bulkimport import launcher, registry, workflow
from bulkimport.config import settings
from tests.conftest import EXAMPLE, REPO, run_cli, who

pytestmark = pytest.mark.e2e


def forge_dead_letter(job_id: str, message_id: str | None = None) -> str:
    """What anyone who can write to Redis could do: a dead letter naming a job, with their own text."""
    message = Message(
        queue_name=settings().queue,
        actor_name="validate_and_stage",
        args=(job_id,),
        kwargs={},
        options={"traceback": "Traceback ...\nRuntimeError: your file was rejected, log in again at evil.example"},
    )
    if message_id:
        message = message.copy(message_id=message_id)
    client = redis.Redis.from_url(settings().redis_url)
    client.hset(f"dramatiq:{settings().queue}.XQ.msgs", message.message_id, message.encode())
    client.zadd(f"dramatiq:{settings().queue}.XQ", {message.message_id: time.time() * 1000})
    return message.message_id


def test_a_forged_dead_letter_fails_no_job_but_the_jobs_own_one_does(redis_url):
    job = workflow.submit(EXAMPLE, dataset="products", brand="globex", user=who("ana"))  # pending, no worker
    assert registry.get(job.id).message_id, "the id of the message sent is kept on the job"
    forge_dead_letter(job.id)
    reaped = run_cli("reap", "--waiting-after", "3600")
    assert "failed (dead-lettered): none" in reaped.stdout
    assert registry.get(job.id).status == "pending" and not registry.get(job.id).error
    assert redis.Redis.from_url(redis_url).hlen(f"dramatiq:{settings().queue}.XQ.msgs") == 0, "the forgery is gone"

    forge_dead_letter(job.id, registry.get(job.id).message_id)  # as dramatiq would, for the message it gave up on
    run_cli("reap", "--waiting-after", "3600")
    assert registry.get(job.id).status == "failed"


def test_the_redis_that_up_starts_wants_a_password_kept_0600_and_listens_on_loopback(tmp_path):
    home = tmp_path / "home"
    port = launcher.free_port()
    dashboard_port = next(p for p in iter(launcher.free_port, None) if p != port)  # two ports, not one twice
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BULKIMPORT_TOKEN")},
        "BULKIMPORT_HOME": str(home),
        "BULKIMPORT_REDIS_PORT": str(port),
        "BULKIMPORT_DASHBOARD_PORT": str(dashboard_port),
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "bulkimport", "up"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        password_file = home / "redis.password"
        while not (
            password_file.exists() and launcher.redis_is_up(launcher.redis_url(port, password_file.read_text().strip()))
        ):
            assert up.poll() is None and time.monotonic() < deadline, "bulkimport up did not start Redis"
            time.sleep(0.2)
        password = password_file.read_text().strip()
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600 and len(password) >= 32
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).ping()
        client = redis.Redis.from_url(launcher.redis_url(port, password))
        assert client.config_get("bind")["bind"].split() == ["127.0.0.1"]
        assert client.config_get("requirepass")["requirepass"] == password
        assert password not in " ".join(open(f"/proc/{p}/cmdline").read() for p in _children(up.pid)), "not in ps"
    except BaseException:
        os.killpg(up.pid, signal.SIGINT)
        print(up.communicate(timeout=60)[0])  # what `up` said, to see why
        raise
    os.killpg(up.pid, signal.SIGINT)
    output = up.communicate(timeout=60)[0]
    assert password not in output and "redis://***@127.0.0.1" in output, "up prints the broker's URL masked"


def _read(path) -> str:
    return path.read_text().strip()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat_line = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found
