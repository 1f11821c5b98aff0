"""The job commands: submit, status, jobs, approve, reject, revert, fix, cancel, retry, recheck, export."""

from __future__ import annotations

import json
import sys

from bulkimport import registry
from bulkimport.cli.output import JOB_COLUMNS, _print_job, _print_mapping, _wait, _who
from bulkimport.cli.reading import _mapping, _options
from bulkimport.errors import BulkImportError
from bulkimport.registry import FINAL, STAGED


def cmd_submit(args) -> int:
    from bulkimport import workflow

    user = _who()
    job = workflow.submit(
        args.file,
        dataset=args.dataset,
        brand=args.brand,
        user=user,
        options=_options(args),
        mapping=_mapping(args.map),
        mode=args.mode,
        allow_duplicate=args.allow_duplicate,
    )
    if not args.json:
        print(f"job {job.id} queued by {user.name}", file=sys.stderr)
        if args.map:
            _print_mapping(job)
    if args.wait:
        job = _wait(job, (STAGED, *FINAL), args)
    if not args.json and (args.wait or not args.map):
        _print_mapping(job)
    _print_job(job, args.json)
    return 1 if job.status == registry.FAILED else 0


def cmd_status(args) -> int:
    from bulkimport import access

    user = _who()
    job = access.visible_job(args.job, user)
    _print_job(job, args.json)
    if not args.json:
        for event in access.visible_events(job.id, user):
            note = f"  ({event.note})" if event.note else ""
            who = registry.actor_label(event.actor)
            print(f"  {event.at}  {event.from_status or '-'} -> {event.to_status}  by {who}{note}")
        if job.status == STAGED and job.rows_rejected:
            from bulkimport import fixing

            found = fixing.suggestions(job.id, user)
            if len(found):
                print(f"repair suggestions (take them with `bulkimport fix {job.id} --accept-suggestions`):")
                for row in found.itertuples():
                    print(f"  line {row.line}: {row.change}")
    return 0


def cmd_jobs(args) -> int:
    from bulkimport import access

    found = access.visible_jobs(_who(), status=args.status, dataset=args.dataset, brand=args.brand)
    if args.json:
        print(json.dumps([j.to_dict() for j in found]))
        return 0
    print("\t".join(JOB_COLUMNS))
    for job in found:
        print("\t".join("" if getattr(job, c) is None else str(getattr(job, c)) for c in JOB_COLUMNS))
    return 0


def cmd_approve(args) -> int:
    from bulkimport import workflow

    job = workflow.approve(args.job, user=_who(), confirm_deletes=args.confirm_deletes)
    if args.wait:
        job = _wait(job, FINAL, args)
    _print_job(job, args.json)
    return 0 if job.status != registry.FAILED else 1


def cmd_reject(args) -> int:
    from bulkimport import workflow

    _print_job(workflow.reject(args.job, user=_who(), reason=args.reason), args.json)
    return 0


def cmd_revert(args) -> int:
    from bulkimport import workflow

    job = workflow.revert(args.job, user=_who())
    if args.wait:
        job = _wait(job, (*FINAL,), args)
    _print_job(job, args.json)
    return 0 if job.status == registry.REVERTED or not args.wait else 1


def cmd_fix(args) -> int:
    from bulkimport import fixing

    user = _who()
    rows, problems = fixing.rows_from_error_file(args.job, args.from_file, user) if args.from_file else ({}, [])
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not rows and not args.accept_suggestions:
        raise BulkImportError("nothing to fix: give the fixed error file with --from, or --accept-suggestions")
    job = fixing.fix(args.job, rows, user=user, accept_suggestions=args.accept_suggestions, skip_unknown=True)
    if not args.json:
        print(f"job {job.id}: {fixing.last_request(job.id)}", file=sys.stderr)
    if args.wait:
        job = _wait(job, (STAGED, *FINAL), args)
        done = registry.fixes(job.id)[-1]
        if not args.json:
            result = done.result or {}
            if done.status == registry.FIX_FAILED:
                print(f"  not applied: {result.get('error')}", file=sys.stderr)
            else:
                print(f"  staged now: line(s) {', '.join(map(str, result.get('staged') or [])) or 'none'}")
                if result.get("rejected"):
                    print(f"  still rejected: line(s) {', '.join(map(str, result['rejected']))}")
    _print_job(job, args.json)
    return 0


def cmd_cancel(args) -> int:
    from bulkimport import workflow

    _print_job(workflow.cancel(args.job, user=_who()), args.json)
    return 0


def cmd_retry(args) -> int:
    from bulkimport import workflow

    job = workflow.retry(args.job, user=_who())
    if args.wait:
        job = _wait(job, (STAGED, *FINAL), args)
    _print_job(job, args.json)
    return 1 if job.status == registry.FAILED else 0


def cmd_recheck(args) -> int:
    from bulkimport import workflow

    job = workflow.recheck(args.job, user=_who())
    if args.wait:
        job = _wait(job, (STAGED, *FINAL), args)
    _print_job(job, args.json)
    return 1 if job.status == registry.FAILED else 0


def cmd_export(args) -> int:
    from bulkimport import exports

    what = "staged" if args.staged else "rejected"
    exports.export(args.job, what, args.staged or args.rejected, args.format, user=_who())
    return 0
