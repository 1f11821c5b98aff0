"""bulkimport's contenders: staging (both paths), the commit against a MERGE doing the same work, end to end."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bench import services
from bench.generate import FileKind
from bench.measure import Outcome, Skipped, own_peak_mb, timed

JOB_ID = "bench"
BRAND = services.BRAND
UPLOADER, APPROVER = services.UPLOADER, services.APPROVER
COLUMNS = ["sku", "name", "price", "currency", "stock", "ean", "launch_date"]


def _env_home(home: Path) -> None:
    os.environ["BULKIMPORT_HOME"] = str(home)


def _rejected_lines(job_id: str = JOB_ID) -> list[int]:
    from bulkimport import lake

    with lake.session() as con:
        rows = con.execute("SELECT DISTINCT line FROM staging.rejected_rows WHERE job_id = ?", [job_id]).fetchall()
    return sorted(r[0] for r in rows)


def path_taken(dialect: dict) -> dict:
    """Which staging path a job took, from its dialect notes (the careful path leaves no note when it was off)."""
    return {"path": dialect.get("path", "careful"), "careful_because": dialect.get("careful_because")}


# ---------------------------------------------------------------- staging


def _stage(csv: Path, home: Path, profile: Path | None = None) -> Outcome:
    """stage_file as the worker calls it, on a real DuckLake under a fresh ``home``."""
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
    counts, seconds = timed(work_)
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
            **path_taken(counts.dialect),
            "chunk_rows": settings().chunk_rows,
            "home": str(home),
        },
    )


def bulkimport_stage(csv: Path, work: Path, kind: FileKind, profile: Path | None = None) -> Outcome:
    """Our stage_file with its defaults: the fast path where it can prove it gives the careful path's rows."""
    return _stage(csv, work / "stage-home", profile)


def bulkimport_careful(csv: Path, work: Path, kind: FileKind) -> Outcome:
    """Our stage_file with the fast path off (BULKIMPORT_FAST_PATH=0): the Python reader and pandera, chunk by chunk."""
    os.environ["BULKIMPORT_FAST_PATH"] = "0"
    outcome = _stage(csv, work / "careful-home")
    if outcome.extra["path"] != "careful":
        raise RuntimeError(f"BULKIMPORT_FAST_PATH=0 staged by the {outcome.extra['path']} path")
    outcome.extra["careful_because"] = outcome.extra["careful_because"] or "BULKIMPORT_FAST_PATH=0"
    return outcome


def _write_profile(profiler, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tree = profiler.output_text(unicode=False, color=False, show_all=False)
    flat = profiler.output_text(unicode=False, color=False, flat=True, flat_time="self")
    target.with_suffix(".txt").write_text(tree)
    target.with_suffix(".flat.txt").write_text(flat)
    target.with_suffix(".html").write_text(profiler.output_html())


# ---------------------------------------------------------------- committing


def _production_state(con, job_id: str = JOB_ID) -> dict:
    """What a commit leaves: the production table (row count, a hash of every row) and the job's ledger row."""
    count, digest = con.execute(
        "SELECT count(*), bit_xor(hash(brand, sku, name, price, currency, stock, ean, launch_date, job_id)) "
        "FROM production.products"
    ).fetchone()
    ledger = con.execute(
        "SELECT rows_inserted, rows_updated, rows_unchanged FROM audit.ledger WHERE job_id = ?", [job_id]
    ).fetchall()
    return {
        "production_rows": count,
        "production_hash": f"{digest or 0:x}",
        "ledger": [list(row) for row in ledger],
    }


def prepare_commit(csv: Path, work: Path, kind: FileKind) -> Outcome:
    """Untimed set-up for the commits: production holds half of the job's keys, the job is approved.

    Runs in the home ``bulkimport_stage`` left. Of the keys already in
    production, every other one has another price (an update); the rest are
    equal (unchanged). Then the approval is recorded as the dashboard does.
    """
    home = work / "stage-home"
    _env_home(home)
    from bulkimport import lake, registry, workflow

    columns = ", ".join(COLUMNS)
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


def bulkimport_commit(csv: Path, work: Path, kind: FileKind) -> Outcome:
    """Our commit_job: approval still valid, then MERGE (changed rows only) and the ledger row in one transaction."""
    _restore(work)
    from bulkimport import lake, registry
    from bulkimport.datasets import get_dataset
    from bulkimport.stages.commit import commit_job

    job = registry.get(JOB_ID)
    dataset = get_dataset("products")

    def work_():
        with lake.session() as con:
            return commit_job(con, job, dataset, APPROVER)

    result, seconds = timed(work_)
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


def duckdb_merge(csv: Path, work: Path, kind: FileKind) -> Outcome:
    """The same work in plain DuckLake SQL, one transaction: a MERGE that updates only the rows that differ and
    inserts the new ones, and the job's ledger row (with the counts the approver saw, as commit_job writes them).

    Left out, next to commit_job: the check that the approval still holds (whether a snapshot
    since the approval changed the job's staged rows or its brand's production rows, and only
    then the fingerprint hash of both), the check that the job is not in the ledger already, and
    retrying when another writer holds the catalog.
    """
    _restore(work)
    from bulkimport import lake, registry

    counts = registry.get(JOB_ID).approval["diff"]  # untimed: the registry, not the lake
    changed = " OR ".join(f"p.{c} IS DISTINCT FROM s.{c}" for c in COLUMNS if c != "sku")
    updates = ", ".join(f"{c} = s.{c}" for c in COLUMNS if c != "sku")
    names = ", ".join(["brand", *COLUMNS, "job_id"])
    values = ", ".join(f"s.{c}" for c in ["brand", *COLUMNS, "job_id"])

    def work_():
        with lake.session() as con:
            con.execute("BEGIN TRANSACTION")
            snapshot = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')").fetchone()[0]
            con.execute(
                f"MERGE INTO production.products AS p USING (SELECT {names} FROM staging.products "
                "WHERE job_id = ?) AS s ON p.brand = s.brand AND p.sku = s.sku "
                f"WHEN MATCHED AND ({changed}) THEN UPDATE SET {updates}, job_id = s.job_id "
                f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})",
                [JOB_ID],
            )
            con.execute(
                "INSERT INTO audit.ledger VALUES (?, 'products', ?, ?, now()::TIMESTAMP, ?, ?, ?, ?)",
                [
                    JOB_ID,
                    BRAND,
                    APPROVER,
                    counts["rows_to_insert"],
                    counts["rows_to_update"],
                    counts["rows_unchanged"],
                    snapshot,
                ],
            )
            con.execute("COMMIT")

    _, seconds = timed(work_)
    peak = own_peak_mb()
    with lake.session() as con:
        state = _production_state(con)
    return Outcome(seconds, peak, None, state)


# ---------------------------------------------------------------- the whole way


def bulkimport_e2e(csv: Path, work: Path, kind: FileKind) -> Outcome:
    """A private Redis and a real worker process; `bulkimport submit --wait --json` until staged.

    Times the CLI command (upload copy, job record, message, the worker's stage,
    waiting); the peak memory is the worker process's (VmHWM), read before it stops.
    """
    home = work / "e2e-home"
    shutil.rmtree(home, ignore_errors=True)
    with services.running(home) as running:
        args = ["submit", str(csv), "--dataset", "products", "--brand", BRAND, "--wait", "--json"]
        done, seconds = running.cli(args, as_user=UPLOADER, timeout=4 * 3600)
        peaks = running.worker_peaks_mb()
        if done.returncode != 0:
            raise RuntimeError(
                f"bulkimport submit exited {done.returncode}: {done.stderr[-2000:]}\nworker log:\n{running.log_tail()}"
            )
        job = json.loads(done.stdout)
        if job["status"] != "staged":
            raise RuntimeError(f"job {job['id']} ended {job['status']}: {job.get('error')}")
        lines = _rejected_lines(job["id"])
    if not peaks:
        raise RuntimeError("found no worker child process to read its peak memory from")
    return Outcome(
        seconds,
        max(peaks),
        lines,
        {
            "rows_total": job["rows_total"],
            "rows_valid": job["rows_valid"],
            "rows_rejected": job["rows_rejected"],
            **path_taken(job.get("dialect") or {}),
            "worker_processes_mb": peaks,
        },
    )
