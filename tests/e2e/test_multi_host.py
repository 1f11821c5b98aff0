"""Worker hosts on one machine (issue 9): network namespaces joined by a bridge.

A services namespace (``bi-svc-<pid>``) holds a bridge at 198.18.0.1 with Redis (AOF
on), PostgreSQL (registry and lake catalog) and moto's S3 server (lake data and
uploads) behind it. Each worker host (``bi-w<N>-<pid>``) is a namespace of its own,
joined to the bridge by a veth pair, with its own host name (so worker ids say which
host did what) and its own BULKIMPORT_HOME: nothing is shared through the local
disk, only through the services. The driver (the CLI's submit and approve, and an
agent that reads the registry and the lake) runs in the services namespace; the lab's
addresses never exist in the root namespace, where pytest runs.

Two scenarios: twenty imports spread over three worker hosts, one of which is killed
(every process SIGKILLed, its link taken down) while it validates, and nothing is
lost or duplicated; and the same import set run with one, two and three worker
hosts, timed (figures in test-artifacts/multi-host-throughput.json and in
docs/scale-out.md). All "hosts" share this machine's cores: the second scenario shows
that work spreads, not how fast several real machines would be.

Runs only with BULKIMPORT_SCALE_OUT=1, as root: ``make test-multi-host``.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bulkimport import launcher, users
from tests import netns
from tests.conftest import PASSWORD, REPO, SCALE_OUT, TOKENS, postgres_bin, skip_or_fail
from tests.reliability.support import SEED, Figures, ProductionModel, compare_production, wait_for, write_product_file

if not SCALE_OUT:
    pytest.skip(
        "multi-host test (network namespaces, needs root): run it with `make test-multi-host` (BULKIMPORT_SCALE_OUT=1)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.e2e

SERVICES = "198.18.0.1"
REDIS_PORT, PG_PORT, S3_PORT = 6379, 5432, 9000
BUCKET = "lake"
BIN = Path(sys.executable).parent
ARTIFACT = REPO / "test-artifacts" / "multi-host-throughput.json"
TAG = os.getpid()  # in every namespace's name, so parallel runs do not collide


class Services:
    """The services host: the bridge at 198.18.0.1, Redis, PostgreSQL and moto's S3 server."""

    def __init__(self, folder: Path, pg_bin: Path):
        self.ns = netns.Namespace(f"bi-svc-{TAG}")
        self.folder = folder
        self.pg_bin = pg_bin
        self.pg_dir = Path(tempfile.mkdtemp(prefix="bulkimport-pg-"))
        self.as_postgres = ["runuser", "-u", "postgres", "--"]  # PostgreSQL refuses to run as root
        self.redis_dbs = iter(range(1, 16))  # a Redis database per cluster

    def start(self) -> None:
        self.ns.create()
        self.ns.ip("link", "add", "br0", "type", "bridge")
        self.ns.ip("addr", "add", f"{SERVICES}/24", "dev", "br0")
        self.ns.ip("link", "set", "br0", "up")
        env = dict(os.environ)
        (self.folder / "redis").mkdir()
        self.ns.popen(
            [
                launcher.redis_server_binary(),
                "--port",
                str(REDIS_PORT),
                "--bind",
                SERVICES,
                "--dir",
                str(self.folder / "redis"),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--maxmemory-policy",
                "noeviction",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ],
            env,
            self.folder / "redis.log",
        )
        self.ns.popen(
            [sys.executable, "-m", "moto.server", "-H", SERVICES, "-p", str(S3_PORT)], env, self.folder / "moto.log"
        )
        shutil.chown(self.pg_dir, "postgres", "postgres")
        data = self.pg_dir / "data"
        netns.run(
            [
                *self.as_postgres,
                str(self.pg_bin / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            timeout=120,
        )
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write("host all all 198.18.0.0/24 trust\n")
        options = (
            f"-p {PG_PORT} -k {self.pg_dir} -c listen_addresses={SERVICES} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        netns.run(
            self.ns.argv(
                *self.as_postgres,
                str(self.pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(self.pg_dir / "log"),
                "-o",
                options,
                "-w",
                "start",
            ),
            timeout=120,
        )
        self.python(
            "import socket, sys, time\n"
            "deadline = time.monotonic() + 60\n"
            f"for port in ({REDIS_PORT}, {PG_PORT}, {S3_PORT}):\n"
            "    while True:\n"
            "        try:\n"
            f"            socket.create_connection(({SERVICES!r}, port), timeout=1).close()\n"
            "            break\n"
            "        except OSError:\n"
            "            if time.monotonic() > deadline:\n"
            "                sys.exit(f'port {port} is still closed')\n"
            "            time.sleep(0.1)\n"
            "import boto3\n"
            f"boto3.client('s3', endpoint_url={self.s3_endpoint!r}, region_name='us-east-1', aws_access_key_id='test',"
            f" aws_secret_access_key='test').create_bucket(Bucket={BUCKET!r})\n"
        )

    @property
    def s3_endpoint(self) -> str:
        return f"http://{SERVICES}:{S3_PORT}"

    def python(self, code: str) -> str:
        result = netns.run(self.ns.argv(sys.executable, "-c", code), check=False, timeout=120, cwd=REPO)
        if result.returncode != 0:
            raise RuntimeError(f"in {self.ns.name}: {result.stderr[-2000:]}\n" + self.logs())
        return result.stdout

    def create_database(self, name: str) -> str:
        netns.run(
            self.ns.argv(
                *self.as_postgres, str(self.pg_bin / "createdb"), "-h", str(self.pg_dir), "-p", str(PG_PORT), name
            )
        )
        return f"postgresql://postgres@{SERVICES}:{PG_PORT}/{name}"

    def logs(self) -> str:
        parts = []
        for log in (self.folder / "redis.log", self.folder / "moto.log", self.pg_dir / "log"):
            if log.exists():
                parts.append(f"--- {log.name}:\n{log.read_text(errors='replace')[-1500:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        data = self.pg_dir / "data"
        try:
            if (data / "postmaster.pid").exists():
                netns.run(
                    [*self.as_postgres, str(self.pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                    check=False,
                    timeout=60,
                )
        finally:
            self.ns.delete()  # SIGKILLs whatever is left in it (Redis, moto, the driver's processes)
            shutil.rmtree(self.pg_dir, ignore_errors=True)


class WorkerHost:
    """A worker host: a namespace joined to the services bridge, running `bulkimport worker`."""

    def __init__(self, services: Services, index: int, folder: Path):
        self.services = services
        self.short = f"w{index}"
        self.name = f"bi-w{index}-{TAG}"  # the namespace's name and the host name its workers report
        self.ns = netns.Namespace(self.name)
        self.address = f"198.18.0.1{index}"
        self.veth = f"vw{index}-{TAG}"  # the services end of the pair (the host's end is eth0)
        self.folder = folder
        self.process: subprocess.Popen | None = None
        self.log: Path | None = None

    def create(self) -> None:
        self.ns.create()
        # Both ends are made inside the namespaces: the root namespace never sees the lab.
        netns.run(
            [
                "ip",
                "link",
                "add",
                self.veth,
                "netns",
                self.services.ns.name,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                self.ns.name,
            ]
        )
        self.services.ns.ip("link", "set", self.veth, "master", "br0")
        self.services.ns.ip("link", "set", self.veth, "up")
        self.ns.ip("addr", "add", f"{self.address}/24", "dev", "eth0")
        self.ns.ip("link", "set", "eth0", "up")

    def start_worker(self, env: dict, run: str) -> None:
        """`bulkimport worker --processes 1 --threads 2` with a BULKIMPORT_HOME of this host's own."""
        home = self.folder / f"{self.short}-{run}"
        home.mkdir(parents=True)
        self.log = home / "worker.log"
        self.process = self.ns.popen(
            [str(BIN / "bulkimport"), "worker", "--processes", "1", "--threads", "2"],
            {**env, "BULKIMPORT_HOME": str(home)},
            self.log,
            hostname=self.name,
        )

    def stop_worker(self) -> None:
        if self.process and self.process.poll() is None:
            launcher.stop([self.process], timeout=20)
        self.ns.kill_all()
        self.process = None

    def kill(self) -> list[int]:
        """SIGKILL every process of the host, then take its link down: the host is gone."""
        killed = self.ns.signal_all()
        self.ns.kill_all()
        self.ns.ip("link", "set", "eth0", "down")
        self.services.ns.ip("link", "set", self.veth, "down")
        if self.process:
            self.process.wait(10)
        return killed

    def delete(self) -> None:
        """Kill its processes, remove the veth pair (now: a namespace's own links go later, in the kernel's
        cleanup, and the next test's pair of the same name would collide) and the namespace."""
        self.ns.kill_all()
        if self.ns.created:
            self.services.ns.ip("link", "del", self.veth, check=False)
        self.ns.delete()

    def log_tail(self) -> str:
        return f"--- {self.short} {self.log}:\n{self.log.read_text(errors='replace')[-2500:]}" if self.log else ""


class Cluster:
    """One configuration: fresh registry and catalog databases, a fresh bucket prefix and Redis database."""

    def __init__(self, services: Services, hosts: list[WorkerHost], run: str, driver_home: Path, **settings: str):
        self.services, self.hosts, self.run = services, hosts, run
        name = f"{run}_{TAG}".replace("-", "_")
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("BULKIMPORT_USERS_FILE", "BULKIMPORT_DATASETS")
        }
        self.env.update(
            {
                "REDIS_URL": f"redis://{SERVICES}:{REDIS_PORT}/{next(services.redis_dbs)}",
                "BULKIMPORT_DB_URL": services.create_database(f"jobs_{name}"),
                "BULKIMPORT_LAKE_CATALOG": services.create_database(f"lake_{name}"),
                "BULKIMPORT_LAKE_DATA": f"s3://{BUCKET}/{name}",
                "BULKIMPORT_S3_ENDPOINT": services.s3_endpoint,
                "BULKIMPORT_S3_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "BULKIMPORT_HOME": str(driver_home),
                **settings,
            }
        )
        self.agent = netns.Agent(services.ns, self.env, services.folder / f"agent-{run}.log")

    def cli(self, *args: str, check: bool = True, user: str | None = None) -> subprocess.CompletedProcess:
        """The real `bulkimport` command, run on the services host (the root namespace cannot reach the lab),
        as ``user`` (their personal token)."""
        env = {**self.env, "BULKIMPORT_TOKEN": TOKENS[user]} if user else self.env
        result = netns.run(
            self.services.ns.argv(str(BIN / "bulkimport"), *args), check=False, timeout=300, env=env, cwd=REPO
        )
        if check and result.returncode != 0:
            raise AssertionError(f"bulkimport {' '.join(args)} exited {result.returncode}:\n{result.stderr[-2000:]}")
        return result

    def start_workers(self, hosts: list[WorkerHost]) -> None:
        for host in hosts:
            host.start_worker(self.env, self.run)

        def booted() -> bool:
            for host in hosts:
                if host.process.poll() is not None:
                    raise AssertionError(f"the worker on {host.short} exited:\n{host.log_tail()}")
            return {h.name for h in hosts} <= {w["host"] for w in self.agent.call("workers")}

        wait_for(booted, 180, "the worker hosts to start", poll=0.5)

    def jobs(self) -> dict[str, dict]:
        return {j["id"]: j for j in self.agent.call("jobs")}

    def wait_all(self, job_ids: list[str], status: str, timeout: float, tick=None) -> dict[str, dict]:
        """Poll until every job has ``status``; a failed job fails the test at once."""

        def done():
            jobs = self.jobs()
            failed = [f"{j}: {jobs[j]['error']}" for j in job_ids if jobs[j]["status"] == "failed"]
            assert not failed, f"jobs failed: {failed}\n{self.logs()}"
            return jobs if all(jobs[j]["status"] == status for j in job_ids) else None

        try:
            return wait_for(done, timeout, f"all jobs {status}", poll=0.5, tick=tick)
        except AssertionError as exc:
            jobs = self.jobs()
            states = collections.Counter(jobs[j]["status"] for j in job_ids)
            raise AssertionError(f"{exc}: {dict(states)}\n{self.logs()}") from None

    def logs(self) -> str:
        return "\n".join(h.log_tail() for h in self.hosts) + "\n" + self.services.logs()

    def failed_attempts(self) -> collections.Counter:
        """Why attempts failed (and were retried), from the worker hosts' logs."""
        reasons = collections.Counter()
        for host in self.hosts:
            if host.log and host.log.exists():
                for reason in re.findall(r"job=\w+ attempt \d+ failed, will retry: (.*)", host.log.read_text()):
                    reasons[reason[:100]] += 1
        return reasons

    def host_of(self, worker_id: str | None) -> str | None:
        """The short name (w1, w2, ...) of the host a worker id (host:pid:thread) belongs to."""
        host = (worker_id or "").split(":")[0]
        return next((h.short for h in self.hosts if h.name == host), None)

    def close(self) -> None:
        for host in self.hosts:
            host.stop_worker()
        self.agent.close()


def check_staged(cluster: Cluster, jobs: dict[str, dict], files: dict) -> list[str]:
    """What is wrong with each job's counts and staged rows, against what its file holds."""
    problems = []
    counts = cluster.agent.call("staging_counts", list(files))
    for job_id, (_, product_file) in files.items():
        job = jobs[job_id]
        want = (product_file.rows_total, len(product_file.valid), product_file.rows_rejected)
        got = (job["rows_total"], job["rows_valid"], job["rows_rejected"])
        if got != want:
            problems.append(f"job {job_id} counts {got} != {want}")
        staged, lines, skus, rejected = counts[job_id]
        if not staged == lines == skus == len(product_file.valid) or rejected != product_file.rows_rejected:
            problems.append(
                f"job {job_id} staged {staged} rows ({lines} lines, {skus} keys) and rejected "
                f"{rejected} lines; the file has {len(product_file.valid)} valid and "
                f"{product_file.rows_rejected} rejected"
            )
        if not job["file_path"].startswith(f"s3://{BUCKET}/"):
            problems.append(f"job {job_id} reads {job['file_path']}, not the object store")
    return problems


def handled_by(cluster: Cluster, events: dict[str, list[dict]], to_status: str) -> collections.Counter:
    """How many transitions to ``to_status`` each host made."""
    return collections.Counter(
        cluster.host_of(e["actor"])
        for evs in events.values()
        for e in evs
        if e["to"] == to_status and cluster.host_of(e["actor"])
    )


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The services host, for the module; skips (fails in a scale-out CI run) where namespaces cannot be made."""
    reason = netns.problem()
    if reason:
        skip_or_fail(f"multi-host test: {reason}")
    pg_bin = postgres_bin()
    if pg_bin is None:
        skip_or_fail(
            "multi-host test: PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        )
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as exc:
        skip_or_fail(f"multi-host test: {exc.name} is not installed: pip install -r requirements.txt")
    services = Services(tmp_path_factory.mktemp("services"), pg_bin)
    try:
        services.start()
        yield services
    finally:
        services.stop()


@pytest.fixture
def hosts(lab, tmp_path):
    """Three worker hosts joined to the services bridge; deleted (processes, namespaces, veths) afterwards."""
    made = [WorkerHost(lab, i, tmp_path / "hosts") for i in (1, 2, 3)]
    try:
        for host in made:
            host.create()
        assert not netns.root_lab_addresses(), "a lab address leaked into the root namespace"
        yield made
    finally:
        for host in made:
            host.delete()


@pytest.fixture
def clusters(lab, hosts, home):
    """Makes clusters (configurations) on the lab; closes them afterwards."""
    made: list[Cluster] = []

    def make(run: str, **settings: str) -> Cluster:
        made.append(Cluster(lab, hosts, run, home, **settings))
        return made[-1]

    yield make
    for cluster in made:
        cluster.close()


# ---------------------------------------------------------------- scenarios


@pytest.mark.timeout(480)
def test_twenty_imports_spread_over_worker_hosts_and_a_killed_host_loses_nothing(hosts, clusters, tmp_path):
    rng = random.Random(SEED)
    figures = Figures("multi-host")
    # Ten brands, two imports each, drawing on the same keys: the second import of a brand
    # updates rows of the first, so production depends on the order commits landed in.
    brands = ["acme", "globex", "marker", "initech", "umbrella", "hooli", "wonka", "tyrell", "soylent", "stark"]
    users.add("ana", "analyst", brands, PASSWORD)
    skus = {b: [f"{b[:3].upper()}-{i:06d}" for i in range(12_000)] for b in brands}
    cluster = clusters("kill", BULKIMPORT_REAP_INTERVAL="2", BULKIMPORT_CHUNK_ROWS="2000")
    product_files = [
        (
            brands[i % len(brands)],
            write_product_file(
                tmp_path / f"import{i:02d}.csv",
                rng,
                skus[brands[i % len(brands)]],
                rng.randint(5_000, 10_000),
                tag=f"i{i}",
                bad_share=0.02,
            ),
        )
        for i in range(20)
    ]

    # A backlog of twenty imports, submitted with the CLI on the services host (two at a time) ...
    def submit(item):
        brand, product_file = item
        job = json.loads(
            cluster.cli(
                "submit", str(product_file.path), "--dataset", "products", "--brand", brand, "--json", user="ana"
            ).stdout
        )
        return job["id"], (brand, product_file)

    with ThreadPoolExecutor(2) as pool:
        files = dict(pool.map(submit, product_files))
    figures.trials = len(files)

    # ... then three worker hosts take it; one dies with several jobs validating.
    cluster.start_workers(hosts)

    def kill_moment():
        running = cluster.agent.call("running")
        by_host = collections.Counter(cluster.host_of(r["claimed_by"]) for r in running if r["rows_read"] > 0)
        if len(running) >= 3 and by_host:
            return running, by_host.most_common(1)[0][0]
        return None

    running, victim_name = wait_for(kill_moment, 180, "several jobs validating", poll=0.2)
    victim = next(h for h in hosts if h.short == victim_name)
    on_victim = sorted(r["id"] for r in running if cluster.host_of(r["claimed_by"]) == victim_name)
    killed = victim.kill()
    killed_at = time.monotonic()
    figures.failures_injected = 1
    print(
        f"\nkilled host {victim_name} ({len(killed)} processes) with {len(running)} jobs validating, "
        f"{len(on_victim)} of them there: {on_victim}"
    )

    def recovered():
        jobs = cluster.jobs()
        return all(jobs[j]["status"] not in ("pending", "validating") for j in on_victim)

    wait_for(recovered, 300, "the killed host's jobs to be taken over", poll=0.5)
    recovery_s = time.monotonic() - killed_at
    jobs = cluster.wait_all(list(files), "staged", 300)
    problems = check_staged(cluster, jobs, files)
    assert not problems, problems

    # Approve all with the CLI; an approval that went stale (another import of the brand
    # committed first and changed rows this one touches) is reviewed and approved again.
    approvals = collections.Counter()

    def approve(job_id):
        result = cluster.cli("approve", job_id, "--json", check=False, user="olga")
        return job_id, result

    def approve_staged():
        staged = [j for j, job in cluster.jobs().items() if job["status"] == "staged"]
        with ThreadPoolExecutor(2) as pool:
            for job_id, result in pool.map(approve, staged):
                approvals[job_id] += result.returncode == 0
                assert result.returncode == 0 or "only a staged job" in result.stderr, result.stderr[-1500:]

    approve_staged()
    jobs = cluster.wait_all(list(files), "committed", 300, tick=approve_staged)
    figures.jobs_completed = sum(job["status"] == "committed" for job in jobs.values())

    order = cluster.agent.call("ledger")
    expected = ProductionModel(files).expected(order)
    production = [tuple(row) for row in cluster.agent.call("production")]
    figures.rows_lost, figures.rows_duplicated, differences = compare_production(expected, production)
    events = cluster.agent.call("events", list(files))
    staged_by = handled_by(cluster, events, "staged")
    committed_by = handled_by(cluster, events, "committed")
    retried = sum(e["note"] == "will retry" for evs in events.values() for e in evs)
    # Who did what, from the registry's events (worker ids are host:pid:thread).
    claimed_on_victim = {
        j
        for j, evs in events.items()
        if any(e["to"] == "validating" and cluster.host_of(e["actor"]) == victim_name for e in evs)
    }
    staged_on_victim = {
        j
        for j, evs in events.items()
        if any(e["to"] == "staged" and cluster.host_of(e["actor"]) == victim_name for e in evs)
    }
    taken_over = {
        j
        for j, evs in events.items()
        if any((e["note"] or "").startswith(f"taken over from {victim.name}:") for e in evs)
    }
    figures.extra = {
        "hosts": len(hosts),
        "killed_host": victim_name,
        "validating_at_kill": len(running),
        "on_killed_host": len(on_victim),
        "taken_over": len(taken_over),
        "recovery_s": round(recovery_s, 1),
        "staged_by": dict(sorted(staged_by.items())),
        "committed_by": dict(sorted(committed_by.items())),
        "re_approvals": sum(approvals.values()) - len(files),
        "production_rows": len(production),
        "attempts_failed": retried,
    }
    figures.show()
    for reason, count in cluster.failed_attempts().items():
        print(f"  attempt failed and retried {count}x: {reason}")

    assert sorted(order) == sorted(files), "each job is in the ledger exactly once"
    assert (figures.rows_lost, figures.rows_duplicated) == (0, 0), differences
    assert len(staged_by) >= 2, f"the jobs were staged on one host only: {staged_by}"
    assert taken_over, f"no job was taken over from {victim_name}: the kill did not land mid-job"
    assert claimed_on_victim == staged_on_victim | taken_over, (
        f"every job {victim_name} took is staged by it before it died, or taken over by another host: "
        f"took {sorted(claimed_on_victim)}, staged {sorted(staged_on_victim)}, taken over {sorted(taken_over)}"
    )
    for job_id in taken_over:
        [staged] = [e for e in events[job_id] if e["to"] == "staged"]
        assert cluster.host_of(staged["actor"]) not in (None, victim_name), staged
    assert victim_name not in committed_by, "nothing ran on the dead host after it died"
    assert not netns.root_lab_addresses(), "a lab address leaked into the root namespace"


FILES, ROWS = 12, 20_000


@pytest.mark.timeout(600)
def test_throughput_of_one_two_and_three_worker_hosts(hosts, clusters, tmp_path):
    rng = random.Random(SEED + 1)
    brands = ("acme", "globex", "marker")
    # Keys of each file are its own: no approval goes stale, production holds every valid row.
    product_files = [
        (
            brands[i % 3],
            write_product_file(
                tmp_path / f"load{i:02d}.csv", rng, [f"L{i:02d}-{k:06d}" for k in range(ROWS)], ROWS, tag=f"l{i}"
            ),
        )
        for i in range(FILES)
    ]
    rows = FILES * ROWS
    valid = sum(len(f.valid) for _, f in product_files)
    results = []
    for count in (1, 2, 3):
        cluster = clusters(f"load{count}", BULKIMPORT_REAP_INTERVAL="5")
        # The catalog made before the clock starts: workers attaching a fresh one at once can fail an
        # attempt (a product bug, see the first scenario's output), which would add a retry's delay here.
        cluster.agent.call("init_lake")
        working = hosts[:count]
        cluster.start_workers(working)
        started = time.monotonic()
        files = {}
        for brand, product_file in product_files:
            job = cluster.agent.call("submit", str(product_file.path), brand, "ana")
            files[job["id"]] = (brand, product_file)
        submitted_s = time.monotonic() - started
        jobs = cluster.wait_all(list(files), "staged", 400)
        staged_s = time.monotonic() - started
        problems = check_staged(cluster, jobs, files)
        assert not problems, problems

        approving = time.monotonic()
        for job_id in files:
            cluster.agent.call("approve", job_id, "olga")
        approve_s = time.monotonic() - approving
        cluster.wait_all(list(files), "committed", 400)
        committed_s = time.monotonic() - approving

        order = cluster.agent.call("ledger")
        assert sorted(order) == sorted(files), "each job is in the ledger exactly once"
        expected = ProductionModel(files).expected(order)
        lost, duplicated, differences = compare_production(
            expected, [tuple(r) for r in cluster.agent.call("production")]
        )
        assert (lost, duplicated) == (0, 0), differences
        events = cluster.agent.call("events", list(files))
        staged_by = handled_by(cluster, events, "staged")
        committed_by = handled_by(cluster, events, "committed")
        assert set(staged_by) <= {h.short for h in working}
        result = {
            "hosts": count,
            "files": FILES,
            "rows": rows,
            "rows_valid": valid,
            "seconds_submit": round(submitted_s, 1),
            "seconds_to_staged": round(staged_s, 1),
            # Approvals are one after another, as one operator would (each computes the diff and fingerprint).
            "seconds_approve": round(approve_s, 1),
            "seconds_to_committed": round(committed_s, 1),
            "seconds_committed_after_last_approval": round(committed_s - approve_s, 1),
            "rows_per_s_staged": round(rows / staged_s),
            "rows_per_s_committed": round(valid / committed_s),
            "rows_per_s_overall": round(rows / (staged_s + committed_s)),
            "staged_by": dict(sorted(staged_by.items())),
            "committed_by": dict(sorted(committed_by.items())),
        }
        result["attempts_failed"] = sum(cluster.failed_attempts().values())
        results.append(result)
        print(f"\nMULTI-HOST throughput: {json.dumps(result)}", flush=True)
        cluster.close()

    print("\nhosts  rows     to staged  to committed  rows/s staged  rows/s committed  rows/s overall")
    for r in results:
        print(
            f"{r['hosts']:>5}  {r['rows']:<7}  {r['seconds_to_staged']:>8.1f}s  {r['seconds_to_committed']:>11.1f}s"
            f"  {r['rows_per_s_staged']:>13}  {r['rows_per_s_committed']:>16}  {r['rows_per_s_overall']:>14}"
        )
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(
        json.dumps(
            {
                "what": "the same import set staged and committed by 1, 2 and 3 worker hosts (network namespaces on "
                "one machine; Redis, PostgreSQL and moto S3 in another); every host shares the same cores",
                "cpus": os.cpu_count(),
                "worker": "bulkimport worker --processes 1 --threads 2",
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    # Work spread: with more than one host, more than one host staged jobs.
    assert all(len(r["staged_by"]) > 1 for r in results if r["hosts"] > 1), results
