"""The `bulkimport` command: parse options, call the library, turn errors into advice."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys

from bulkimport import cli_datasets, registry, users
from bulkimport.config import settings
from bulkimport.errors import BulkImportError, ConfigError, TransientError
from bulkimport.registry import FINAL, STAGED

JOB_COLUMNS = (
    "id",
    "dataset",
    "brand",
    "mode",
    "status",
    "rows_total",
    "rows_valid",
    "rows_rejected",
    "created_by",
    "created_at",
)


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


def cmd_up(args) -> int:
    from bulkimport.launcher import up

    return up(args.processes, args.threads, args.port)


def cmd_worker(args) -> int:
    from bulkimport.launcher import worker_command

    command = worker_command(args.processes or settings().worker_processes, args.threads or settings().worker_threads)
    os.execv(command[0], command)  # become the dramatiq worker: signals reach it directly


_NAMED_CHARACTERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def _character(value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() == "none":  # --quote none: the file quotes nothing; --escape none: quotes are doubled
        return "none"
    value = _NAMED_CHARACTERS.get(value.lower(), value)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(
            f"expected one character (or tab, comma, semicolon, pipe, space, none), got {value!r}"
        )
    return value


def _options(args) -> dict:
    return {
        "delimiter": args.delimiter,
        "quote": args.quote,
        "escape": args.escape,
        "header_row": args.header_row,
        "encoding": args.encoding,
        "sheet": args.sheet,
        "skip_initial_space": args.skip_initial_space or None,
        "header_split": "none" if args.no_header_split else None,
        "no_header": args.no_header or bool(args.columns) or None,
        "columns": [c.strip() for c in args.columns.split(",")] if args.columns else None,
    }


def _mapping(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        name, sep, column = pair.rpartition("=")
        if not sep or not name or not column:
            raise BulkImportError(f"--map expects 'FILE COLUMN=dataset_column', got {pair!r}")
        mapping[name.strip()] = column.strip()
    return mapping


def cmd_preview(args) -> int:
    from bulkimport import workflow

    user = _who() if args.brand else None
    upload = workflow.store_upload(args.file)
    try:
        found = workflow.preview(upload, args.dataset, _options(args), _mapping(args.map), brand=args.brand, user=user)
    finally:
        workflow.discard_upload(upload)
    if args.json:
        print(
            json.dumps(
                {
                    "dialect": found.dialect,
                    "mapping": found.mapping,
                    "suggestions": found.suggestions,
                    "missing": found.missing,
                    "ignored": found.ignored,
                    "remembered": found.remembered,
                    "notes": found.notes,
                    "readings": found.readings,
                    "headerless": found.headerless,
                }
            )
        )
        return 0 if not found.missing else 2
    d = found.dialect
    if d.get("kind") == "xlsx":
        print(f"file: Excel workbook, header on row {d['header_line']}")
    else:
        header = f"header on line {d['header_line']}" if d.get("header_line") else "no header line"
        spaces = ", spaces after a delimiter skipped" if d.get("skip_initial_space") else ""
        print(
            f"file: {d['encoding']}, delimiter {d['delimiter']!r}, quote {d['quote'] or 'none'!r}, "
            f"escape {d['escape']!r}{spaces}, {header}"
        )
    for note in found.notes:
        print(f"note: {note}")
    if len(found.readings) > 1:
        print("readings weighed:")
        for reading in found.readings:
            mark = "*" if reading["chosen"] else " "
            print(f"  {mark} {reading['reading']}: {reading['why']}")
    if found.headerless:
        print(
            "the first line looks like data, not a header: its values pass the dataset's checks in column order. "
            "If the file has no header line, use --no-header (columns in dataset order) or --columns a,b,...",
            file=sys.stderr,
        )
    remembered = f" (the mapping brand {args.brand} chose last time for this header)" if found.remembered else ""
    print(f"columns{remembered}:")
    for name in found.header:
        target = found.mapping.get(name)
        hint = (
            f"   (did you mean {found.suggestions[name]}? --map '{name}={found.suggestions[name]}')"
            if name in found.suggestions
            else ""
        )
        print(f"  {name!r:30} -> {target or 'ignored'}{hint}")
    if found.missing:
        print(f"missing required column(s): {', '.join(found.missing)}", file=sys.stderr)
        return 2
    if found.remembered:
        pairs = " ".join(f"--map '{h}={c}'" for h, c in found.mapping.items())
        print(f"submit applies it only when given: {pairs}")
    print(found.sample.head(5).to_string(index=False))
    return 0


def _print_mapping(job: registry.Job) -> None:
    """Which file column went to which dataset column, as the worker applied it (or will)."""
    if job.mapping:
        used = ", ".join(f"{name!r} -> {column or 'ignored'}" for name, column in job.mapping.items())
        print(f"  mapping: {used}", file=sys.stderr)
    else:
        print("  mapping: by header names and aliases (no --map given)", file=sys.stderr)


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


def cmd_users(args) -> int:
    if args.action == "token":
        if args.revoke:
            print(f"revoked {users.revoke_tokens(args.name)} token(s) of {args.name}")
            return 0
        token = users.create_token(args.name)
        print(
            f"a personal token for {args.name}; it is shown only this once. They use it with `bulkimport login`\n"
            "(or BULKIMPORT_TOKEN=..., or bi.login(...) in a notebook). "
            "Revoke: `bulkimport users token NAME --revoke`.",
            file=sys.stderr,
        )
        print(token)
        return 0
    if args.action == "list":
        for user in users.list_users():
            print(f"{user.name}\t{user.role}\t{','.join(user.brands)}")
        return 0
    if args.action == "remove":
        users.remove(args.name)
        print(f"removed {args.name}")
        return 0
    if args.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise BulkImportError(
                f"no password for {args.name}: without a terminal to ask on, give it on standard input "
                f"(echo PASSWORD | bulkimport users add {args.name} ... --password-stdin)"
            )
    else:
        try:
            password = getpass.getpass(f"password for {args.name}: ")
        except EOFError:
            raise BulkImportError("no password given; use --password-stdin to read it from standard input") from None
    brands = [b.strip() for b in args.brands.split(",") if b.strip()]
    user = users.add(args.name, args.role, brands, password)
    print(f"{user.name}: {user.role} of {', '.join(user.brands)}")
    return 0


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


def cmd_login(args) -> int:
    from bulkimport import auth

    if args.token_stdin:
        token = sys.stdin.readline().strip()
    else:
        try:
            token = getpass.getpass("paste your token (from `bulkimport users token NAME`): ").strip()
        except EOFError:
            token = ""
    if not token:
        raise BulkImportError("no token given; an admin creates one with `bulkimport users token NAME`")
    path = auth.save_token(token)
    user = auth.user_of_token(token)
    print(f"logged in as {user.name} ({user.role} of {', '.join(user.brands)}); token saved in {path}")
    return 0


def cmd_logout(args) -> int:
    from bulkimport import auth

    removed = auth.forget_token()
    print(f"token removed from {auth.token_file()}" if removed else "no saved token")
    return 0


def cmd_whoami(args) -> int:
    user = _who()
    print(f"{user.name}\t{user.role}\t{','.join(user.brands)}")
    return 0


def cmd_recheck(args) -> int:
    from bulkimport import workflow

    job = workflow.recheck(args.job, user=_who())
    if args.wait:
        job = _wait(job, (STAGED, *FINAL), args)
    _print_job(job, args.json)
    return 1 if job.status == registry.FAILED else 0


def cmd_reap(args) -> int:
    from bulkimport import healing

    report = healing.reap(waiting_after_s=args.waiting_after)
    print(f"re-sent: {', '.join(report.resent) or 'none'}")
    print(f"failed (dead-lettered): {', '.join(report.failed) or 'none'}")
    print(f"abandoned uploads removed: {', '.join(report.swept) or 'none'}")
    return 0


def cmd_doctor(args) -> int:
    from bulkimport import doctor

    checks = doctor.run()
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name:18} {check.detail}")
        if check.hint and not check.ok:
            print(f"     {'':18} -> {check.hint}")
    return 0 if all(c.ok for c in checks) else 1


def cmd_export(args) -> int:
    from bulkimport import exports

    what = "staged" if args.staged else "rejected"
    exports.export(args.job, what, args.staged or args.rejected, args.format, user=_who())
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

    def reading_options(p):
        g = p.add_argument_group("reading (detected unless given)")
        g.add_argument("--delimiter", type=_character, help="one character, or tab / comma / semicolon / pipe")
        g.add_argument("--quote", type=_character, help="quote character; none: the file quotes nothing")
        g.add_argument("--escape", type=_character, help="escape character; none: doubled quotes (the default)")
        g.add_argument("--header-row", type=int, help="line number of the header (lines before it are skipped)")
        g.add_argument("--encoding", help="utf-8, utf-8-sig, utf-16-le, utf-16-be, cp1252, latin-1, ...")
        g.add_argument("--sheet", help="sheet of an .xlsx workbook (default: the first)")
        g.add_argument(
            "--skip-initial-space", action="store_true", help="spaces after a delimiter are not part of the cell"
        )
        g.add_argument(
            "--no-header-split",
            action="store_true",
            help="read the header as written, even where a cell seems to have lost a delimiter",
        )
        g.add_argument(
            "--no-header", action="store_true", help="the file has no header line: columns in the dataset's order"
        )
        g.add_argument("--columns", metavar="a,b,...", help="no header line: the file's columns, in order")
        g.add_argument(
            "--map",
            action="append",
            metavar="'FILE COLUMN=column'",
            help="map a file column to a dataset column (repeatable); overrides header matching",
        )

    p = add("preview", cmd_preview, "show how a file would be read: dialect, column mapping, first rows")
    p.add_argument("file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--brand", help="propose the mapping this brand chose last time for the same header (needs login)")
    p.add_argument("--json", action="store_true")
    reading_options(p)

    p = add("submit", cmd_submit, "upload a file and queue its validation")
    p.add_argument("file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--brand", required=True)
    p.add_argument("--wait", action="store_true", help="wait until the job is staged or failed")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument(
        "--mode",
        choices=registry.MODES,
        default=registry.UPSERT,
        help="upsert (default): insert and update; append: insert only, existing keys are rejected as "
        "conflicts; replace: also delete the brand's rows that are not in the file",
    )
    p.add_argument(
        "--allow-duplicate",
        action="store_true",
        help="import a file even if the same file is already staged, approved or committed for this dataset and brand",
    )
    reading_options(p)

    p = add(
        "fix",
        cmd_fix,
        "check fixed rejected rows of a staged job again: the downloaded error file, fixed, and/or the "
        "repair suggestions",
    )
    p.add_argument("job")
    p.add_argument(
        "--from",
        dest="from_file",
        metavar="FIXED.csv",
        help="the file `bulkimport export JOB --rejected` wrote, with rows fixed (matched by its line column)",
    )
    p.add_argument(
        "--accept-suggestions", action="store_true", help="take every repair suggestion (see `bulkimport status`)"
    )
    p.add_argument("--wait", action="store_true", help="wait until the worker has checked them")
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
    p.add_argument(
        "--confirm-deletes",
        action="store_true",
        help="a replace that deletes more than BULKIMPORT_REPLACE_GUARD_PERCENT of the brand's rows needs this",
    )
    p.add_argument("--wait", action="store_true", help="wait until the job is committed or failed")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)

    p = add("reject", cmd_reject, "reject a staged job; nothing reaches production")
    p.add_argument("job")
    p.add_argument("--reason", required=True)
    p.add_argument("--json", action="store_true")

    p = add("revert", cmd_revert, "undo a committed job: remove rows it inserted, restore rows it updated")
    p.add_argument("job")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)

    p = add("cancel", cmd_cancel, "cancel a pending or validating job")
    p.add_argument("job")
    p.add_argument("--json", action="store_true")

    p = add("retry", cmd_retry, "run a failed job again from where it failed (same file, same mapping)")
    p.add_argument("job")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)

    p = add("recheck", cmd_recheck, "validate a staged job again, against its dataset as it is now")
    p.add_argument("job")
    p.add_argument("--wait", action="store_true", help="wait until the job is staged or failed")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)

    p = add("reap", cmd_reap, "re-send jobs whose worker died; fail jobs whose message was dead-lettered")
    p.add_argument(
        "--waiting-after",
        type=float,
        default=300,
        help="also re-send pending/approved jobs untouched for this many seconds (default 300)",
    )

    add("doctor", cmd_doctor, "check Redis, the lake, the registry and the workers; exit 1 if something is wrong")

    p = add(
        "login", cmd_login, "save your personal token (0600, under your config folder) for the commands that follow"
    )
    p.add_argument("--token-stdin", action="store_true", help="read the token from standard input")
    add("logout", cmd_logout, "remove the token `bulkimport login` saved")
    add("whoami", cmd_whoami, "who the commands act as (name, role, brands)")

    p = add("users", cmd_users, "manage who may use the dashboard and CLI")
    user_actions = p.add_subparsers(dest="action", required=True)
    u = user_actions.add_parser("add", help="add a user or change their role, brands and password")
    u.add_argument("name")
    u.add_argument("--role", required=True, choices=users.ROLES)
    u.add_argument("--brands", required=True, help="comma-separated brands, or '*' for all")
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u = user_actions.add_parser("remove", help="remove a user")
    u.add_argument("name")
    u = user_actions.add_parser("token", help="create a personal API token for the CLI and the Python API")
    u.add_argument("name")
    u.add_argument("--revoke", action="store_true", help="remove every token of NAME instead")
    user_actions.add_parser("list", help="list users, roles and brands")

    cli_datasets.add_parser(sub)

    p = add("export", cmd_export, "write a job's staged or rejected rows to PATH (- for stdout)")
    p.add_argument("job")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--staged", metavar="PATH")
    group.add_argument("--rejected", metavar="PATH")
    p.add_argument("--format", choices=("csv", "xlsx", "parquet"), default="csv")
    for command in sub.choices.values():  # the old way of naming who acts, refused with the new one
        command.add_argument("--as", dest="claimed_user", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from bulkimport.config import mask_secrets_in_logs

    mask_secrets_in_logs()
    args = build_parser().parse_args(argv)
    try:
        settings()  # every setting is checked before any command starts
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from bulkimport import private

    private.secure_process()
    if getattr(args, "claimed_user", None):
        print(
            "error: --as is no longer accepted: a command acts as the person whose token it carries "
            "(`bulkimport login`, or BULKIMPORT_TOKEN), or whose password is typed on the terminal",
            file=sys.stderr,
        )
        return 2
    try:
        return args.fn(args) or 0
    except TransientError as exc:  # the broker or lake is away or busy: the same command may work later
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (BulkImportError, TimeoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
