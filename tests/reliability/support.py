"""Shared by the reliability suites: their size, their figures, a model of production.

``BULKIMPORT_RELIABILITY=full`` (what ``make test-reliability`` sets) scales trials and
sizes up to what issue 8 asks for; unset, each suite runs a short version that keeps
the whole folder within a few minutes inside ``make test``. ``BULKIMPORT_RELIABILITY_SEED``
changes the seed (default 8) of everything random here, so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bulkimport import lake, launcher, registry
from tests.conftest import HEADER_ROW, REPO, Workers

FULL = os.environ.get("BULKIMPORT_RELIABILITY", "").lower() == "full"
MODE = "full" if FULL else "short"
SEED = int(os.environ.get("BULKIMPORT_RELIABILITY_SEED") or 8)


def scale(short, full):
    """The short or the full figure, by BULKIMPORT_RELIABILITY."""
    return full if FULL else short


def timeout(short_s: int, full_s: int):
    """A pytest-timeout mark for the mode (pyproject's default 300 s is for ordinary tests)."""
    return pytest.mark.timeout(scale(short_s, full_s))


@dataclass
class Figures:
    """What a suite prints: the same five figures for every suite, plus its own extras."""

    suite: str
    trials: int = 0
    failures_injected: int = 0
    jobs_completed: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    extra: dict = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def show(self) -> None:
        elapsed = time.monotonic() - self.started
        extra = "".join(f" {k}={v}" for k, v in self.extra.items())
        print(
            f"\nRELIABILITY {self.suite} [{MODE}, seed {SEED}]: trials={self.trials} "
            f"failures_injected={self.failures_injected} jobs_completed={self.jobs_completed} "
            f"rows_lost={self.rows_lost} rows_duplicated={self.rows_duplicated}{extra} "
            f"seconds={elapsed:.1f}",
            flush=True,
        )


def wait_for(predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.1, tick=None):
    """Poll ``predicate`` until it is truthy (returned); ``tick`` runs between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        if tick:
            tick()
        time.sleep(poll)


# ---------------------------------------------------------------- files and the model of production

Row = tuple[str, str, str, int]  # name, price as written ("12.30"), currency, stock


@dataclass
class ProductFile:
    """A products file as written, and what the pipeline must make of it."""

    path: Path
    rows_total: int
    valid: dict[str, Row]  # sku -> values of the copy that must be staged (the first valid one)
    rows_rejected: int


def write_product_file(
    path: Path,
    rng: random.Random,
    skus: list[str],
    rows: int,
    *,
    tag: str,
    bad_share: float = 0.01,
    duplicate_share: float = 0.01,
    unchanged_from: dict[str, Row] | None = None,
    name_len: int = 0,
) -> ProductFile:
    """``rows`` rows over keys drawn from ``skus``: some bad (price ``n/a``), some repeated keys.

    ``unchanged_from`` gives, for keys already in production, the values to write again
    now and then, so some rows of a commit are "unchanged" ones.
    """
    valid: dict[str, Row] = {}
    written: list[str] = []
    rejected = 0
    lines = [HEADER_ROW]
    chosen = rng.sample(skus, min(rows, len(skus)))
    for i in range(rows):
        if written and rng.random() < duplicate_share:
            sku = rng.choice(written)
        else:
            sku = chosen[i % len(chosen)]
        written.append(sku)
        padding = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(name_len))
        values: Row = (
            f"{tag} {i}{padding}",
            f"{rng.randint(0, 99_999) / 100:.2f}",
            rng.choice(("EUR", "USD")),
            rng.randint(0, 999),
        )
        if unchanged_from and sku in unchanged_from and rng.random() < 0.2:
            values = unchanged_from[sku]
        bad = rng.random() < bad_share
        lines.append(f"{sku},{values[0]},{'n/a' if bad else values[1]},{values[2]},{values[3]},,")
        if bad or sku in valid:
            rejected += 1
        else:
            valid[sku] = values
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ProductFile(path, rows, valid, rejected)


class ProductionModel:
    """Production as it must be: per brand, the last committed write of each key wins.

    Replays the jobs in the order the ledger says they committed; a row whose values
    do not change keeps the job that last changed it (the MERGE leaves it alone).
    """

    def __init__(self, files: dict[str, tuple[str, ProductFile]]):
        self.files = files  # job id -> (brand, file)

    def expected(self, committed_in_order: list[str], base: dict | None = None) -> dict[tuple[str, str], tuple]:
        table: dict[tuple[str, str], tuple] = dict(base or {})
        for job_id in committed_in_order:
            brand, product_file = self.files[job_id]
            for sku, values in product_file.valid.items():
                before = table.get((brand, sku))
                if before is None or before[:4] != values:
                    table[(brand, sku)] = (*values, job_id)
        return table


def production_rows(brands: list[str] | None = None) -> list[tuple]:
    """(brand, sku, name, price text, currency, stock, job_id) of every production row."""
    where = ""
    if brands:
        where = " WHERE brand IN (" + ", ".join("'" + b.replace("'", "''") + "'" for b in brands) + ")"
    with lake.session() as con:
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = 'production'"
            ).fetchall()
        }
        if "products" not in tables:
            return []
        return con.execute(
            f"SELECT brand, sku, name, CAST(price AS VARCHAR), currency, stock, job_id FROM production.products{where}"
        ).fetchall()


def ledger_order() -> list[str]:
    """Job ids in the order they committed."""
    with lake.session() as con:
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = 'audit'"
            ).fetchall()
        }
        if "ledger" not in tables:
            return []
        return [r[0] for r in con.execute("SELECT job_id FROM audit.ledger ORDER BY snapshot_id").fetchall()]


def compare_production(expected: dict[tuple[str, str], tuple], rows: list[tuple]) -> tuple[int, int, list]:
    """(rows lost, rows duplicated, a few differences) between the model and production.

    Lost: a key of the model missing from production or holding other values.
    Duplicated: a production row beyond the first of its key, or one the model has no key for.
    """
    seen: dict[tuple[str, str], tuple] = {}
    duplicated, differences = 0, []
    for brand, sku, *values in rows:
        key = (brand, sku)
        if key in seen or key not in expected:
            duplicated += 1
            differences.append(("unexpected or duplicate", key, tuple(values)))
            continue
        seen[key] = (values[0], values[1], values[2], int(values[3]), values[4])
    lost = 0
    for key, want in expected.items():
        got = seen.get(key)
        if got != want:
            lost += 1
            differences.append(("lost or wrong", key, want, got))
    return lost, duplicated, differences[:5]


def staging_problems(job: registry.Job, product_file: ProductFile) -> list[str]:
    """What is wrong with a job's counts and staged rows, against what its file holds."""
    problems = []
    if (job.rows_total, job.rows_valid, job.rows_rejected) != (
        product_file.rows_total,
        len(product_file.valid),
        product_file.rows_rejected,
    ):
        problems.append(
            f"job {job.id} counts {(job.rows_total, job.rows_valid, job.rows_rejected)} != "
            f"{(product_file.rows_total, len(product_file.valid), product_file.rows_rejected)}"
        )
    with lake.session() as con:
        staged, lines, skus = con.execute(
            "SELECT count(*), count(DISTINCT line), count(DISTINCT sku) FROM staging.products WHERE job_id = ?",
            [job.id],
        ).fetchone()
        rejected = con.execute(
            "SELECT count(DISTINCT line) FROM staging.rejected_rows WHERE job_id = ?", [job.id]
        ).fetchone()[0]
    if not staged == lines == skus == len(product_file.valid):
        problems.append(
            f"job {job.id} staged {staged} rows ({lines} lines, {skus} keys), expected {len(product_file.valid)}"
        )
    if rejected != product_file.rows_rejected:
        problems.append(f"job {job.id} rejected {rejected} lines, expected {product_file.rows_rejected}")
    return problems


# ---------------------------------------------------------------- workers


def start_worker(
    workers: Workers,
    processes: int = 1,
    threads: int = 2,
    wait: bool = True,
    file_size_limit: int | None = None,
    env: dict | None = None,
) -> subprocess.Popen:
    """A worker like ``workers.start``, optionally under RLIMIT_FSIZE (what a full disk looks like,
    even to root: a write past the limit fails with EFBIG, "File too large")."""
    if file_size_limit is None and not env:
        return workers.start(processes=processes, threads=threads, wait=wait)

    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    log = open(workers.home / f"worker-{len(workers.processes)}.log", "wb")
    process = subprocess.Popen(
        launcher.worker_command(processes, threads),
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=log,
        cwd=REPO,
        start_new_session=True,
        preexec_fn=limit,
    )
    workers.processes.append(process)
    if wait:
        from bulkimport import progress

        def booted() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"worker exited {process.returncode}:\n" + Path(log.name).read_text()[-3000:])
            return any(_group_of(w["pid"]) == process.pid for w in progress.health().workers_on_queue)

        wait_for(booted, 60, "the worker to start")
    return process


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def holder_process(workers: Workers, job: registry.Job) -> subprocess.Popen | None:
    """The running worker (process group) whose thread holds the job's claim, if any."""
    if not job.claimed_by:
        return None
    try:
        pid = int(job.claimed_by.split(":")[-2])
    except (ValueError, IndexError):
        return None
    group = _group_of(pid)
    return next((p for p in workers.processes if p.pid == group and p.poll() is None), None)
