"""What the job commands share: who acts, how a job is printed, waiting with a progress line."""

from __future__ import annotations

import json
import sys

from bulkimport import registry

JOB_COLUMNS = registry.JOB_COLUMNS


def _who():
    """The user this command acts as: proven by a token, or a password typed on this terminal."""
    from bulkimport import auth

    return auth.who_acts()


def _print_job(job: registry.Job, as_json: bool) -> None:
    if as_json:
        print(json.dumps(job.to_dict()))
        return
    print(f"job {job.id}: {job.status}  ({job.dataset}, brand {job.brand}, {job.mode}, file {job.file_name})")
    if job.rows_total is not None:
        print(f"  rows: {job.rows_total} total, {job.rows_valid} valid, {job.rows_rejected} rejected")
    if job.rows_inserted is not None:
        deleted = f", {job.rows_deleted} deleted" if job.rows_deleted else ""
        print(f"  production: {job.rows_inserted} inserted, {job.rows_updated} updated{deleted}")
    if job.error:
        print(f"  error: {job.error}")


def _progress_line(job: registry.Job) -> str:
    """`validating [#######.............] 35%  123,456 rows read, 1,204 rejected`"""
    from bulkimport import progress

    live = progress.read(job.id)
    done, total = live.get("bytes_read") or 0, live.get("bytes_total") or job.file_bytes or 0
    share = min(1.0, done / total) if total else 0.0
    bar = "#" * int(share * 20)
    rows = f"{live.get('rows_read', 0):,} rows read, {live.get('rows_rejected', 0):,} rejected"
    return f"{job.status:11} [{bar:20}] {share:4.0%}  {rows}"


def _wait(job: registry.Job, until, args) -> registry.Job:
    """Wait, showing progress: a live bar on a terminal, one line per status change otherwise."""
    from bulkimport import workflow

    terminal = sys.stderr.isatty() and not args.json

    def changed(j):
        if terminal:
            sys.stderr.write("\n")
        if not args.json:
            print(f"  {j.status}", file=sys.stderr, flush=True)

    def poll(j):
        if terminal and j.status in (registry.VALIDATING,):
            sys.stderr.write("\r  " + _progress_line(j))
            sys.stderr.flush()

    return workflow.wait(job.id, until=until, timeout=args.timeout, on_change=changed, on_poll=poll)


def _print_mapping(job: registry.Job) -> None:
    """Which file column went to which dataset column, as the worker applied it (or will)."""
    if job.mapping:
        used = ", ".join(f"{name!r} -> {column or 'ignored'}" for name, column in job.mapping.items())
        print(f"  mapping: {used}", file=sys.stderr)
    else:
        print("  mapping: by header names and aliases (no --map given)", file=sys.stderr)
