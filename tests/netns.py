"""Hosts on one machine: Linux network namespaces joined by a bridge, for tests/e2e/test_multi_host.py.

A services namespace holds a bridge with the address the others reach it at; each
worker namespace is joined to that bridge by a veth pair (both ends created inside
the namespaces, so nothing of the lab appears in the root namespace). Processes are
started with ``ip netns exec``; a worker host also gets a UTS namespace of its own
(``unshare --uts``) and its own host name, so worker ids (``host:pid:thread``) say
which host did what.

``python -m tests.netns agent`` is the driver's side inside the services namespace:
it reads one JSON request per line (``{"op": ..., "args": [...]}``) and answers one
JSON line, so the test (in the root namespace, which cannot reach the lab) can read
the registry and the lake and submit or approve without a process start per call.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_PREFIXES = ("198.18.", "198.19.")  # 198.18.0.0/15, the benchmarking range: only inside namespaces


def run(argv: list[str], check: bool = True, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def problem() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    for tool in ("ip", "unshare", "runuser"):
        if not shutil.which(tool):
            return f"`{tool}` not found (Debian: apt-get install iproute2 util-linux)"
    probe = f"bi-probe-{os.getpid()}"
    made = run(["ip", "netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    try:
        inside = run(["ip", "netns", "exec", probe, "unshare", "--uts", "true"], check=False)
        if inside.returncode != 0:
            return f"cannot run in a network namespace: {inside.stderr.strip()}"
    finally:
        run(["ip", "netns", "del", probe], check=False)
    return None


def root_lab_addresses() -> list[str]:
    """Lines of ``ip -o addr`` in the root namespace with a lab address (must be none)."""
    lines = run(["ip", "-o", "addr"]).stdout.splitlines()
    return [line for line in lines if any(f"inet {p}" in line for p in LAB_PREFIXES)]


class Namespace:
    """One network namespace, and the processes started in it."""

    def __init__(self, name: str):
        self.name = name
        self.created = False

    def create(self) -> None:
        run(["ip", "netns", "add", self.name])
        self.created = True
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(["ip", "-n", self.name, *args], check=check)

    def argv(self, *argv: str, hostname: str | None = None) -> list[str]:
        """``argv`` run inside; with ``hostname``, in a UTS namespace of its own that has that host name."""
        if hostname:
            return [
                "ip",
                "netns",
                "exec",
                self.name,
                "unshare",
                "--uts",
                "sh",
                "-c",
                'hostname "$0" && exec "$@"',
                hostname,
                *argv,
            ]
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: list[str], env: dict, log: Path, hostname: str | None = None, **kwargs) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(
                self.argv(*argv, hostname=hostname),
                env=env,
                stdout=out,
                stderr=out,
                cwd=REPO,
                start_new_session=True,
                **kwargs,
            )

    def pids(self) -> list[int]:
        if not self.created:
            return []
        result = run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in result.stdout.split()]

    def signal_all(self, sig: int = signal.SIGKILL) -> list[int]:
        """Send ``sig`` to every process in the namespace; returns their pids."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def kill_all(self, timeout: float = 10) -> None:
        """SIGKILL every process in the namespace until none is left."""
        deadline = time.monotonic() + timeout
        while self.signal_all(signal.SIGKILL) and time.monotonic() < deadline:
            time.sleep(0.1)

    def delete(self) -> None:
        if self.created:
            self.kill_all()
            run(["ip", "netns", "del", self.name], check=False)
            self.created = False


class Agent:
    """``python -m tests.netns agent`` in a namespace: call(op, *args) -> its JSON answer."""

    def __init__(self, namespace: Namespace, env: dict, log: Path):
        self.log = log
        with open(log, "ab") as err:
            self.process = subprocess.Popen(
                namespace.argv(sys.executable, "-m", "tests.netns", "agent"),
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=REPO,
                start_new_session=True,
                text=True,
                bufsize=1,
            )
        self.replies: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.call("ping", timeout=120)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.replies.put(line)
        self.replies.put(None)

    def call(self, op: str, *args, timeout: float = 300):
        self.process.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.process.stdin.flush()
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"agent: no answer to {op} within {timeout:.0f}s; see {self.log}") from None
        if line is None:
            raise AssertionError(f"agent exited ({self.process.poll()}): {self.log.read_text()[-3000:]}")
        reply = json.loads(line)
        if "error" in reply:
            raise AgentError(reply["error"])
        return reply["result"]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class AgentError(AssertionError):
    """An exception in the agent; its text is the traceback's last line."""


# ---------------------------------------------------------------- the agent's side


def _ops() -> dict:
    from bulkimport import progress, registry, users, workflow
    from bulkimport.lake import session
    from tests.reliability.support import ledger_order, production_rows

    def submit(path: str, brand: str, user: str) -> dict:
        return workflow.submit(Path(path), dataset="products", brand=brand, user=users.get(user)).to_dict()

    def approve(job_id: str, user: str) -> dict:
        return workflow.approve(job_id, user=users.get(user)).to_dict()

    def jobs() -> list[dict]:
        return [j.to_dict() for j in registry.list_jobs(limit=10_000)]

    def running() -> list[dict]:
        """Jobs being validated: id, claimed_by and rows read so far."""
        return [
            {"id": j.id, "claimed_by": j.claimed_by, "rows_read": progress.read(j.id).get("rows_read", 0)}
            for j in registry.list_jobs(status=registry.VALIDATING, limit=10_000)
        ]

    def events(job_ids: list[str]) -> dict:
        return {
            j: [
                {"actor": e.actor, "from": e.from_status, "to": e.to_status, "note": e.note, "at": e.at}
                for e in registry.events(j)
            ]
            for j in job_ids
        }

    def staging_counts(job_ids: list[str]) -> dict:
        """job id -> [staged rows, distinct lines, distinct keys, rejected lines]."""
        out = {}
        with session() as con:
            for j in job_ids:
                staged = con.execute(
                    "SELECT count(*), count(DISTINCT line), count(DISTINCT sku) FROM staging.products WHERE job_id = ?",
                    [j],
                ).fetchone()
                rejected = con.execute(
                    "SELECT count(DISTINCT line) FROM staging.rejected_rows WHERE job_id = ?", [j]
                ).fetchone()
                out[j] = [*staged, rejected[0]]
        return out

    def init_lake() -> None:
        """Create the catalog's tables and the products tables, as a deployment's first start would."""
        from bulkimport import lake
        from bulkimport.datasets import get_dataset

        with session() as con:
            lake.ensure_tables(con, get_dataset("products"))

    def workers() -> list[dict]:
        return progress.health().workers_on_queue

    def queue_depth() -> int:
        return progress.health().queue_depth

    return {
        "ping": lambda: "pong",
        "submit": submit,
        "approve": approve,
        "jobs": jobs,
        "running": running,
        "events": events,
        "staging_counts": staging_counts,
        "init_lake": init_lake,
        "workers": workers,
        "queue_depth": queue_depth,
        "production": production_rows,
        "ledger": ledger_order,
    }


def agent_main() -> None:
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print goes to the log, not into the answers
    ops = _ops()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"result": ops[request["op"]](*request.get("args", []))}
        except Exception as exc:  # noqa: BLE001 - sent back to the test, which raises it
            traceback.print_exc()
            answer = {"error": f"{request['op']}: {type(exc).__name__}: {exc}"}
        replies.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__" and sys.argv[1:] == ["agent"]:
    agent_main()
