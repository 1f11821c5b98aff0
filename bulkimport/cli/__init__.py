"""The `bulkimport` command: parse options, call the library, turn errors into advice.

The commands live by concern in this package (jobs, reading, accounts, operations, datasets); this module
builds the parser and is the one place where library errors become messages and exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys

from bulkimport import registry, users
from bulkimport.cli import datasets as cli_datasets
from bulkimport.cli.accounts import (
    cmd_login,
    cmd_logout,
    cmd_user_add,
    cmd_user_list,
    cmd_user_remove,
    cmd_user_token,
    cmd_whoami,
)
from bulkimport.cli.jobs import (
    cmd_approve,
    cmd_cancel,
    cmd_export,
    cmd_fix,
    cmd_jobs,
    cmd_recheck,
    cmd_reject,
    cmd_retry,
    cmd_revert,
    cmd_status,
    cmd_submit,
)
from bulkimport.cli.operations import cmd_doctor, cmd_reap, cmd_up, cmd_worker
from bulkimport.cli.options import identity, json_output, reading, waiting
from bulkimport.cli.reading import cmd_preview
from bulkimport.config import settings
from bulkimport.errors import BulkImportError, ConfigError, MigrationRefused, TransientError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bulkimport", description="Governed CSV imports.")
    sub = parser.add_subparsers(dest="command", required=True)
    json_ = json_output()

    def add(name, fn, help_, *parents):
        p = sub.add_parser(name, help=help_, description=help_, parents=[identity(), *parents])
        p.set_defaults(fn=fn)
        return p

    p = add("up", cmd_up, "start Redis (unless REDIS_URL is set), a worker and the dashboard")
    p.add_argument("--processes", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--port", type=int, help="dashboard port (default BULKIMPORT_DASHBOARD_PORT or 8501)")

    p = add("worker", cmd_worker, "run a worker that consumes the job queue")
    p.add_argument("--processes", type=int)
    p.add_argument("--threads", type=int)

    p = add(
        "preview", cmd_preview, "show how a file would be read: dialect, column mapping, first rows", json_, reading()
    )
    p.add_argument("file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--brand", help="propose the mapping this brand chose last time for the same header (needs login)")

    staged_or_failed = waiting("the job is staged or failed")
    p = add("submit", cmd_submit, "upload a file and queue its validation", json_, staged_or_failed, reading())
    p.add_argument("file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--brand", required=True)
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

    p = add(
        "fix",
        cmd_fix,
        "check fixed rejected rows of a staged job again: the downloaded error file, fixed, and/or the "
        "repair suggestions",
        json_,
        waiting("the worker has checked them"),
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

    p = add("status", cmd_status, "show a job and its history", json_)
    p.add_argument("job")

    p = add("jobs", cmd_jobs, "list jobs, newest first", json_)
    p.add_argument("--status")
    p.add_argument("--dataset")
    p.add_argument("--brand")

    p = add(
        "approve",
        cmd_approve,
        "approve a staged job and queue its commit",
        json_,
        waiting("the job is committed or failed"),
    )
    p.add_argument("job")
    p.add_argument(
        "--confirm-deletes",
        action="store_true",
        help="a replace that deletes more than BULKIMPORT_REPLACE_GUARD_PERCENT of the brand's rows needs this",
    )

    p = add("reject", cmd_reject, "reject a staged job; nothing reaches production", json_)
    p.add_argument("job")
    p.add_argument("--reason", required=True)

    revert_help = "undo a committed job: remove rows it inserted, restore rows it updated"
    p = add("revert", cmd_revert, revert_help, json_, waiting("the job is reverted or failed"))
    p.add_argument("job")

    p = add("cancel", cmd_cancel, "cancel a pending or validating job", json_)
    p.add_argument("job")

    retry_help = "run a failed job again from where it failed (same file, same mapping)"
    p = add("retry", cmd_retry, retry_help, json_, staged_or_failed)
    p.add_argument("job")

    p = add(
        "recheck", cmd_recheck, "validate a staged job again, against its dataset as it is now", json_, staged_or_failed
    )
    p.add_argument("job")

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

    p = add("users", None, "manage who may use the dashboard and CLI")  # each action names its own fn
    user_actions = p.add_subparsers(dest="action", required=True)
    u = user_actions.add_parser("add", help="add a user or change their role, brands and password")
    u.set_defaults(fn=cmd_user_add)
    u.add_argument("name")
    u.add_argument("--role", required=True, choices=users.ROLES)
    u.add_argument("--brands", required=True, help="comma-separated brands, or '*' for all")
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u = user_actions.add_parser("remove", help="remove a user")
    u.set_defaults(fn=cmd_user_remove)
    u.add_argument("name")
    u = user_actions.add_parser("token", help="create a personal API token for the CLI and the Python API")
    u.set_defaults(fn=cmd_user_token)
    u.add_argument("name")
    u.add_argument("--revoke", action="store_true", help="remove every token of NAME instead")
    user_actions.add_parser("list", help="list users, roles and brands").set_defaults(fn=cmd_user_list)

    cli_datasets.add_parser(sub, identity(), json_)

    p = add("export", cmd_export, "write a job's staged or rejected rows to PATH (- for stdout)")
    p.add_argument("job")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--staged", metavar="PATH")
    group.add_argument("--rejected", metavar="PATH")
    p.add_argument("--format", choices=("csv", "xlsx", "parquet"), default="csv")
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
    except MigrationRefused as exc:  # the lake's rows do not fit the dataset: nothing was changed
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (BulkImportError, TimeoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
