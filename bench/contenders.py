"""The contenders, each run once in a fresh process by ``python -m bench.run_one``.

Each function does its untimed set-up, times only the work, reads the peak
memory of the process that did the work, and then (untimed) reports the bad
lines it found. Imports of the heavy libraries happen inside the functions so a
contender pays only for what it uses, and so its peak RSS is its own.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JOB_ID = "bench"
BRAND = "acme"
UPLOADER, APPROVER = "ana", "olga"
PASSWORD = "bench password"


class Skipped(Exception):
    """The contender cannot run here; the message says why."""


@dataclass
class Outcome:
    seconds: float
    peak_rss_mb: float
    bad_lines: list[int] | None  # None: this contender does not validate rows
    extra: dict = field(default_factory=dict)


def own_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def _lines_from_index(values) -> list[int]:
    return sorted({int(v) for v in values})


# ---------------------------------------------------------------- the floor


def baseline_duckdb(csv: Path, work: Path) -> Outcome:
    """Parse once, write once: DuckDB reads the CSV and writes Parquet. Checks nothing."""
    import duckdb

    target = work / "baseline.parquet"
    con = duckdb.connect()
    path = str(csv).replace("'", "''")
    _, seconds = _timed(lambda: con.execute(f"COPY (SELECT * FROM read_csv('{path}')) TO '{target}' (FORMAT parquet)"))
    peak = own_peak_mb()
    rows = con.execute(f"SELECT count(*) FROM '{target}'").fetchone()[0]
    con.close()
    return Outcome(seconds, peak, None, {"rows_written": rows})


# ---------------------------------------------------------------- the usual alternatives


def pandas_pandera(csv: Path, work: Path) -> Outcome:
    """pandas.read_csv, then pandera (pandas backend, lazy) with the products schema.

    Two passes, as pandera needs: coerce first (a column whose coercion fails
    reports its later checks with no row), then check the rows that coerced.
    Valid rows go to Parquet, failure cases to CSV.
    """
    import pandas as pd
    import pandera.pandas as pa

    from bulkimport.datasets.products import Products

    schema = Products.to_schema()
    coerce_only = schema.update_columns({name: {"checks": [], "nullable": True} for name in schema.columns})
    coerce_only.checks = []

    def work_() -> tuple[set[int], int]:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
        frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")  # the line in the file
        failures = []
        try:
            coerced = coerce_only.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as error:
            failures.append(error.failure_cases)
            bad = set(error.failure_cases["index"].dropna().astype(int))
            coerced = coerce_only.validate(frame.drop(index=list(bad)), lazy=True)
        try:
            schema.validate(coerced, lazy=True)
        except pa.errors.SchemaErrors as error:
            failures.append(error.failure_cases)
        cases = pd.concat(failures) if failures else pd.DataFrame(columns=["index"])
        if cases["index"].isna().any():
            raise RuntimeError("pandera reported failures without a row:\n" + cases[cases["index"].isna()].to_string())
        bad = set(cases["index"].astype(int))
        valid = coerced[~coerced.index.isin(bad)]
        valid.to_parquet(work / "pandas_valid.parquet")
        cases.to_csv(work / "pandas_failures.csv", index=False)
        return bad, len(valid)

    (bad, valid), seconds = _timed(work_)
    return Outcome(seconds, own_peak_mb(), sorted(bad), {"rows_valid": valid})


def table_schema() -> dict:
    """The products dataset as a Frictionless Table Schema (what it can express of it).

    Not expressible there: price at most 2 decimals, the EAN-13 check digit and
    the plausible launch date range (the generated valid rows meet them all).
    """
    from bulkimport.datasets.products import CURRENCIES, SKU_PATTERN

    return {
        "fields": [
            {
                "name": "sku",
                "type": "string",
                "constraints": {"required": True, "unique": True, "pattern": SKU_PATTERN.strip("^$")},
            },
            {"name": "name", "type": "string", "constraints": {"required": True, "minLength": 1, "maxLength": 200}},
            {
                "name": "price",
                "type": "number",
                "constraints": {"required": True, "minimum": 0, "maximum": 9_999_999_999.99},
            },
            {"name": "currency", "type": "string", "constraints": {"required": True, "enum": list(CURRENCIES)}},
            {"name": "stock", "type": "integer", "constraints": {"required": True, "minimum": 0}},
            {"name": "ean", "type": "string", "constraints": {"pattern": "[0-9]{13}"}},
            {"name": "launch_date", "type": "date"},
        ]
    }


def frictionless_binary() -> str:
    found = shutil.which("frictionless", path=str(Path(sys.executable).parent)) or shutil.which("frictionless")
    if not found:
        raise Skipped("frictionless is not installed (pip install frictionless); nothing to compare with")
    return found


def frictionless(csv: Path, work: Path) -> Outcome:
    """`frictionless validate` (its command line, row by row in Python) with an equivalent Table Schema."""
    binary = frictionless_binary()
    schema = work / "products.schema.json"
    schema.write_text(json.dumps(table_schema(), indent=1))
    report = work / "frictionless-report.json"
    command = [
        binary,
        "validate",
        str(csv),
        "--schema",
        str(schema),
        "--json",
        "--trusted",
        "--limit-errors",
        "1000000000",
    ]
    with open(report, "w") as out:
        done, seconds = _timed(lambda: subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True))
    peak = children_peak_mb()
    text = report.read_text()
    if not text.strip():
        raise RuntimeError(f"frictionless printed no report (exit {done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(text)
    errors = [e for task in result.get("tasks", []) for e in task.get("errors", [])] + result.get("errors", [])
    unplaced = [e for e in errors if e.get("rowNumber") is None]
    if unplaced:
        raise RuntimeError("frictionless reported errors outside rows: " + json.dumps(unplaced[:3]))
    rows = sum(task.get("stats", {}).get("rows", 0) for task in result.get("tasks", []))
    return Outcome(
        seconds, peak, _lines_from_index(e["rowNumber"] for e in errors), {"rows_read": rows, "errors": len(errors)}
    )


# ---------------------------------------------------------------- ours


def _env_home(home: Path) -> None:
    os.environ["BULKIMPORT_HOME"] = str(home)


def _rejected_lines(job_id: str = JOB_ID) -> list[int]:
    from bulkimport import lake

    with lake.session() as con:
        rows = con.execute("SELECT DISTINCT line FROM staging.rejected_rows WHERE job_id = ?", [job_id]).fetchall()
    return sorted(r[0] for r in rows)


def bulkimport_stage(csv: Path, work: Path, profile: Path | None = None) -> Outcome:
    """Our stage_file, as the worker calls it: a real DuckLake under a fresh BULKIMPORT_HOME."""
    home = work / "stage-home"
    shutil.rmtree(home, ignore_errors=True)
    _env_home(home)
    from bulkimport import lake, registry
    from bulkimport.config import settings
    from bulkimport.datasets import get_dataset
    from bulkimport.stages.stage import stage_file

    dataset = get_dataset("products")
    job = registry.create(
        job_id=JOB_ID,
        dataset="products",
        brand=BRAND,
        file_name=csv.name,
        file_path=str(csv),
        file_sha256="0" * 64,
        file_bytes=csv.stat().st_size,
        created_by=UPLOADER,
    )
    with lake.session() as con:  # tables and extensions once, as a long-running worker has them
        lake.ensure_tables(con, dataset)

    def work_():
        with lake.session() as con:
            return stage_file(con, job, dataset, csv, settings().chunk_rows)

    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    counts, seconds = _timed(work_)
    if profiler:
        profiler.stop()
        _write_profile(profiler, profile)
    peak = own_peak_mb()
    registry.transition(
        JOB_ID,
        registry.PENDING,
        registry.STAGED,
        actor="bench",
        rows_total=counts.rows_total,
        rows_valid=counts.rows_valid,
        rows_rejected=counts.rows_rejected,
    )
    return Outcome(
        seconds,
        peak,
        _rejected_lines(),
        {
            "rows_total": counts.rows_total,
            "rows_valid": counts.rows_valid,
            "rows_rejected": counts.rows_rejected,
            "chunk_rows": settings().chunk_rows,
            "home": str(home),
        },
    )


def _write_profile(profiler, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tree = profiler.output_text(unicode=False, color=False, show_all=False)
    flat = profiler.output_text(unicode=False, color=False, flat=True, flat_time="self")
    target.with_suffix(".txt").write_text(tree)
    target.with_suffix(".flat.txt").write_text(flat)
    target.with_suffix(".html").write_text(profiler.output_html())


def _production_state(con) -> dict:
    count, digest = con.execute(
        "SELECT count(*), bit_xor(hash(brand, sku, name, price, currency, stock, ean, launch_date)) "
        "FROM production.products"
    ).fetchone()
    return {"production_rows": count, "production_hash": f"{digest or 0:x}"}


def prepare_commit(csv: Path, work: Path) -> Outcome:
    """Untimed set-up for the commits: production holds half of the job's keys, the job is approved.

    Runs in the home ``bulkimport_stage`` left. Of the keys already in
    production, every other one has another price (an update); the rest are
    equal (unchanged). Then the approval is recorded as the dashboard does.
    """
    home = work / "stage-home"
    _env_home(home)
    from bulkimport import lake, registry, workflow

    columns = "sku, name, price, currency, stock, ean, launch_date"
    with lake.session() as con:
        lake.write(
            con,
            lambda c: c.execute(
                f"INSERT INTO production.products (brand, {columns}, job_id) "
                "SELECT brand, sku, name, CASE WHEN line % 4 = 0 THEN price + 1 ELSE price END, currency, stock, ean, "
                "launch_date, 'seed' FROM staging.products WHERE job_id = ? AND line % 2 = 0",
                [JOB_ID],
            ),
        )
        seeded = con.execute("SELECT count(*) FROM production.products").fetchone()[0]
    job = registry.get(JOB_ID)
    approval = {**workflow.review_state(job), "by": APPROVER, "at": registry.now()}
    registry.transition(
        JOB_ID, registry.STAGED, registry.APPROVED, actor=APPROVER, approved_by=APPROVER, approval=approval
    )
    return Outcome(0.0, own_peak_mb(), None, {"production_rows_before": seeded, "diff": approval["diff"]})


def _restore(work: Path) -> Path:
    """The approved lake, as prepare_commit left it, at the path its catalog names."""
    home = work / "stage-home"
    template = work / "commit-template"
    if not template.is_dir():
        raise Skipped("no staged job to commit (bulkimport_stage did not run)")
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(template, home)
    _env_home(home)
    return home


def bulkimport_commit(csv: Path, work: Path) -> Outcome:
    """Our commit_job: approval fingerprint check, diff counts, MERGE and ledger in one transaction."""
    _restore(work)
    from bulkimport import lake, registry
    from bulkimport.datasets import get_dataset
    from bulkimport.stages.commit import commit_job

    job = registry.get(JOB_ID)
    dataset = get_dataset("products")

    def work_():
        with lake.session() as con:
            return commit_job(con, job, dataset, APPROVER)

    result, seconds = _timed(work_)
    peak = own_peak_mb()
    with lake.session() as con:
        state = _production_state(con)
    return Outcome(
        seconds,
        peak,
        None,
        {
            "rows_inserted": result.rows_inserted,
            "rows_updated": result.rows_updated,
            "rows_unchanged": result.rows_unchanged,
            **state,
        },
    )


def duckdb_merge(csv: Path, work: Path) -> Outcome:
    """A plain DuckLake MERGE of the same staged rows into the same production table."""
    _restore(work)
    from bulkimport import lake

    columns = ["sku", "name", "price", "currency", "stock", "ean", "launch_date"]
    updates = ", ".join(f"{c} = s.{c}" for c in columns if c != "sku")
    names = ", ".join(["brand", *columns, "job_id"])
    values = ", ".join(f"s.{c}" for c in ["brand", *columns, "job_id"])

    def work_():
        with lake.session() as con:
            con.execute(
                f"MERGE INTO production.products AS p USING (SELECT {names} FROM staging.products "
                "WHERE job_id = ?) AS s ON p.brand = s.brand AND p.sku = s.sku "
                f"WHEN MATCHED THEN UPDATE SET {updates}, job_id = s.job_id "
                f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})",
                [JOB_ID],
            )

    _, seconds = _timed(work_)
    peak = own_peak_mb()
    with lake.session() as con:
        state = _production_state(con)
    return Outcome(seconds, peak, None, state)


# ---------------------------------------------------------------- the whole way


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


def _wait_for_worker(process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    from bulkimport import progress

    deadline = time.monotonic() + timeout
    while not any(w["pid"] in _children(process.pid) for w in progress.health().workers_on_queue):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start; {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def bulkimport_e2e(csv: Path, work: Path) -> Outcome:
    """A private Redis and a real worker process; `bulkimport submit --wait --json` until staged.

    Times the CLI command (upload copy, job record, message, worker's stage,
    polling); the peak memory is the worker process's (VmHWM), read before it stops.
    """
    from bulkimport import launcher

    home = work / "e2e-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    _env_home(home)
    port = launcher.free_port()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    from bulkimport import users
    from bulkimport.config import settings

    users.add(UPLOADER, "analyst", [BRAND], PASSWORD)
    token = users.create_token(UPLOADER)  # the CLI acts as whoever's token it carries
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
        command = [
            sys.executable,
            "-m",
            "bulkimport",
            "submit",
            str(csv),
            "--dataset",
            "products",
            "--brand",
            BRAND,
            "--wait",
            "--json",
        ]
        done, seconds = _timed(
            lambda: subprocess.run(
                command,
                capture_output=True,
                text=True,
                env={**os.environ, "BULKIMPORT_TOKEN": token},
                cwd=REPO,
                timeout=4 * 3600,
            )
        )
        peaks = {pid: vm_hwm_mb(pid) for pid in _children(worker.pid)}
        if done.returncode != 0:
            raise RuntimeError(
                f"bulkimport submit exited {done.returncode}: {done.stderr[-2000:]}\n"
                f"worker log:\n{log.read_text()[-2000:]}"
            )
        job = json.loads(done.stdout)
    finally:
        launcher.stop(started)
    if job["status"] != "staged":
        raise RuntimeError(f"job {job['id']} ended {job['status']}: {job.get('error')}")
    if not peaks:
        raise RuntimeError("found no worker child process to read its peak memory from")
    return Outcome(
        seconds,
        max(peaks.values()),
        _rejected_lines(job["id"]),
        {
            "rows_total": job["rows_total"],
            "rows_valid": job["rows_valid"],
            "rows_rejected": job["rows_rejected"],
            "worker_processes_mb": list(peaks.values()),
        },
    )


CONTENDERS: dict[str, Callable[[Path, Path], Outcome]] = {
    "baseline_duckdb": baseline_duckdb,
    "pandas_pandera": pandas_pandera,
    "frictionless": frictionless,
    "bulkimport_stage": bulkimport_stage,
    "bulkimport_commit": bulkimport_commit,
    "duckdb_merge": duckdb_merge,
    "bulkimport_e2e": bulkimport_e2e,
}
STEPS = {**CONTENDERS, "prepare_commit": prepare_commit}
