"""The `bulkimport` command: parse options, call the library, turn errors into advice."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys

from bulkimport import api, registry, workflow
from bulkimport.config import settings
from bulkimport.errors import BulkImportError, DispatchError
from bulkimport.registry import FINAL, STAGED

JOB_COLUMNS = ("id", "dataset", "brand", "status", "rows_total", "rows_valid", "rows_rejected", "created_by",
               "created_at")


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _print_job(job: registry.Job, as_json: bool) -> None:
    if as_json:
        print(json.dumps(job.to_dict()))
        return
    print(f"job {job.id}: {job.status}  ({job.dataset}, brand {job.brand}, file {job.file_name})")
    if job.rows_total is not None:
        print(f"  rows: {job.rows_total} total, {job.rows_valid} valid, {job.rows_rejected} rejected")
    if job.rows_inserted is not None:
        print(f"  production: {job.rows_inserted} inserted, {job.rows_updated} updated")
    if job.error:
        print(f"  error: {job.error}")


def _wait(job: registry.Job, until, args) -> registry.Job:
    def show(j):
        if not args.json:
            print(f"  {j.status}", file=sys.stderr, flush=True)

    return workflow.wait(job.id, until=until, timeout=args.timeout, on_change=show)


def cmd_up(args) -> int:
    from bulkimport.launcher import up

    return up(args.processes, args.threads, args.port)


def cmd_worker(args) -> int:
    from bulkimport.launcher import worker_command

    command = worker_command(args.processes or settings().worker_processes, args.threads or settings().worker_threads)
    os.execv(command[0], command)  # become the dramatiq worker: signals reach it directly


def cmd_submit(args) -> int:
    job = workflow.submit(args.file, dataset=args.dataset, brand=args.brand, created_by=args.user)
    if not args.json:
        print(f"job {job.id} queued", file=sys.stderr)
    if args.wait:
        job = _wait(job, (STAGED, *FINAL), args)
    _print_job(job, args.json)
    return 1 if job.status == registry.FAILED else 0


def cmd_status(args) -> int:
    job = registry.get(args.job)
    _print_job(job, args.json)
    if not args.json:
        for event in registry.events(job.id):
            note = f"  ({event.note})" if event.note else ""
            print(f"  {event.at}  {event.from_status or '-'} -> {event.to_status}  by {event.actor}{note}")
    return 0


def cmd_jobs(args) -> int:
    found = registry.list_jobs(status=args.status, dataset=args.dataset, brand=args.brand)
    if args.json:
        print(json.dumps([j.to_dict() for j in found]))
        return 0
    print("\t".join(JOB_COLUMNS))
    for job in found:
        print("\t".join("" if getattr(job, c) is None else str(getattr(job, c)) for c in JOB_COLUMNS))
    return 0


def cmd_approve(args) -> int:
    job = workflow.approve(args.job, approved_by=args.user)
    if args.wait:
        job = _wait(job, FINAL, args)
    _print_job(job, args.json)
    return 0 if job.status != registry.FAILED else 1


def cmd_reject(args) -> int:
    _print_job(workflow.reject(args.job, rejected_by=args.user, reason=args.reason), args.json)
    return 0


def cmd_export(args) -> int:
    what = "staged" if args.staged else "rejected"
    api.export(args.job, what, args.staged or args.rejected, args.format)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bulkimport", description="Governed CSV imports.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, fn, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        return p

    p = add("up", cmd_up, "start Redis (unless REDIS_URL is set), a worker and the dashboard")
    p.add_argument("--processes", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--port", type=int, help="dashboard port (default BULKIMPORT_DASHBOARD_PORT or 8501)")

    p = add("worker", cmd_worker, "run a worker that consumes the job queue")
    p.add_argument("--processes", type=int)
    p.add_argument("--threads", type=int)

    p = add("submit", cmd_submit, "upload a file and queue its validation")
    p.add_argument("file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--brand", required=True)
    p.add_argument("--as", dest="user", default=_default_user())
    p.add_argument("--wait", action="store_true", help="wait until the job is staged or failed")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)

    p = add("status", cmd_status, "show a job and its history")
    p.add_argument("job")
    p.add_argument("--json", action="store_true")

    p = add("jobs", cmd_jobs, "list jobs, newest first")
    p.add_argument("--status")
    p.add_argument("--dataset")
    p.add_argument("--brand")
    p.add_argument("--json", action="store_true")

    p = add("approve", cmd_approve, "approve a staged job and queue its commit")
    p.add_argument("job")
    p.add_argument("--as", dest="user", required=True)
    p.add_argument("--wait", action="store_true", help="wait until the job is committed or failed")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)

    p = add("reject", cmd_reject, "reject a staged job; nothing reaches production")
    p.add_argument("job")
    p.add_argument("--as", dest="user", required=True)
    p.add_argument("--reason", default="")
    p.add_argument("--json", action="store_true")

    p = add("export", cmd_export, "write a job's staged or rejected rows to PATH (- for stdout)")
    p.add_argument("job")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--staged", metavar="PATH")
    group.add_argument("--rejected", metavar="PATH")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args) or 0
    except DispatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (BulkImportError, TimeoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
