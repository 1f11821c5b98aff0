"""`bulkimport datasets ...`: see, draft, check and migrate datasets.

Light to import (the CLI's start-up time): everything heavy is imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bulkimport.errors import BulkImportError, MigrationRefused, NotAllowed


def _dataset(name: str):
    from bulkimport.datasets import get_dataset

    return get_dataset(name)


def cmd_list(args) -> int:
    from bulkimport import dataset_docs
    from bulkimport.datasets import all_datasets

    found = [dataset_docs.summary(d) for d in all_datasets().values()]
    if args.json:
        print(json.dumps(found))
        return 0
    print("name\tversion\tcolumns\tkey\tdescription")
    for d in found:
        print(f"{d['name']}\t{d['version']}\t{len(d['columns'])}\t{', '.join(d['key'])}\t{d['description']}")
    return 0


def _lake_status(dataset) -> str:
    from bulkimport import schema_evolution

    try:
        found = schema_evolution.status(dataset)
    except Exception as exc:  # noqa: BLE001 - the description is useful without the lake
        return f"lake: cannot compare ({exc})"
    if not found.tables_exist:
        return "lake: no tables yet (created with the first job)"
    if not found.changes:
        return "lake: the tables follow this version"
    lines = [f"lake: {len(found.changes)} change(s) not applied yet:"]
    lines += [f"  - {c.describe()}{' (breaking)' if c.breaking else ''}" for c in found.changes]
    if found.breaking:
        lines.append(f"  jobs of {dataset.name} fail until a person runs `bulkimport datasets migrate {dataset.name}`")
    return "\n".join(lines)


def cmd_show(args) -> int:
    from bulkimport import dataset_docs

    dataset = _dataset(args.name)
    columns = dataset_docs.columns(dataset)
    if args.json:
        print(json.dumps({**dataset_docs.summary(dataset), "column_docs": [c.to_dict() for c in columns]}))
        return 0
    print(f"{dataset.name} (version {dataset.version}): {dataset.description}")
    print(f"key: {', '.join(dataset.key)} (unique within a brand)")
    print(_lake_status(dataset))
    print()
    for c in columns:
        required = "required" if c.required else "optional"
        print(f"{c.name}  {c.kind}  [{c.sql_type}]  {required}{', key' if c.key else ''}")
        for check in c.checks:
            print(f"    - {check}")
        if c.aliases:
            print(f"    also accepted as: {', '.join(c.aliases)}")
        if c.description:
            print(f"    {c.description}")
    return 0


def _write(target: str, data: bytes, force: bool) -> None:
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(target)
    if path.exists() and not force:
        raise BulkImportError(f"{path} exists; choose another --output or add --force")
    path.write_bytes(data)
    print(f"wrote {path}", file=sys.stderr)


def cmd_template(args) -> int:
    from bulkimport import dataset_docs

    dataset = _dataset(args.name)
    data = dataset_docs.template_xlsx(dataset) if args.format == "xlsx" else dataset_docs.template_csv(dataset)
    _write(args.output or f"{dataset.name}-template.{args.format}", data, args.force)
    return 0


def cmd_draft(args) -> int:
    from bulkimport import dataset_draft

    sample = Path(args.sample)
    if not sample.is_file():
        raise BulkImportError(f"{sample}: no such file")
    drafted = dataset_draft.draft(args.name, sample)
    _write(args.output or f"{args.name}.py", drafted.source.encode("utf-8"), args.force)
    print(
        f"{len(drafted.columns)} columns, key ({', '.join(drafted.key)}); the sample's {drafted.rows} rows pass it. "
        "Read the comments, edit, then `bulkimport datasets check FOLDER` and put it in BULKIMPORT_DATASETS.",
        file=sys.stderr,
    )
    return 0


def cmd_check(args) -> int:
    from bulkimport import dataset_check
    from bulkimport.config import settings

    folder = Path(args.folder) if args.folder else settings().datasets_dir or Path(__file__).parent / "datasets"
    reports = dataset_check.check_folder(folder)
    for report in reports:
        name = f" (dataset {report.dataset})" if report.dataset else ""
        if report.ok:
            print(f"ok    {report.path.name}{name}")
            for note in report.notes:
                print(f"      . {note}")
            continue
        print(f"FAIL  {report.path.name}{name}")
        for problem in report.problems:
            print(f"      - {problem}")
    failed = sum(not r.ok for r in reports)
    print(f"{len(reports) - failed} of {len(reports)} module(s) in {folder} pass", file=sys.stderr)
    return 1 if failed else 0


def cmd_migrate(args) -> int:
    from bulkimport import auth, schema_migration

    user = auth.who_acts()  # the audit names whoever proved it (a token, or a password on this terminal)
    if user.role != "admin":
        raise NotAllowed(f"{user.name} is an {user.role}; only an admin may migrate a dataset's tables")
    dataset = _dataset(args.name)
    try:
        found = schema_migration.preview(dataset)
    except MigrationRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if found.tables_exist and not found.changes:
        print(f"{dataset.name}: the lake's tables already follow version {dataset.version}; nothing to do")
        return 0
    print(f"Migrating {dataset.name} to version {dataset.version} will, in one lake snapshot:")
    for line in found.consequences or ["create its tables"]:
        print(f"  - {line}")
    if not args.yes:
        if not sys.stdin.isatty():
            raise BulkImportError("not a terminal: add --yes to migrate without being asked")
        if input("Apply? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing changed")
            return 1
    try:
        applied = schema_migration.migrate(dataset, actor=user.name, expected=found.changes)
    except MigrationRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"migrated {dataset.name}: {len(applied.changes)} change(s), recorded in audit.migrations by {user.name}")
    return 0


ACTIONS = {
    "list": cmd_list,
    "show": cmd_show,
    "template": cmd_template,
    "draft": cmd_draft,
    "check": cmd_check,
    "migrate": cmd_migrate,
}


def add_parser(sub) -> None:
    """The ``datasets`` command and its actions, on the CLI's subparsers."""
    p = sub.add_parser("datasets", help="see, draft, check and migrate datasets", description=__doc__.splitlines()[0])
    p.set_defaults(fn=lambda args: ACTIONS[args.action](args))
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("list", help="every dataset: version, columns, key")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("show", help="a dataset's columns: type, required, checks in words, other names, key")
    a.add_argument("name")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("template", help="write a template file: the header (.csv), or header and help (.xlsx)")
    a.add_argument("name")
    a.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    a.add_argument("-o", "--output", help="file to write (default NAME-template.FORMAT; - for standard output)")
    a.add_argument("--force", action="store_true", help="overwrite the file")
    a = actions.add_parser("draft", help="write a dataset module drafted from a sample file, to edit")
    a.add_argument("name", help="the new dataset's name (lower case letters, digits, _)")
    a.add_argument("--from", dest="sample", required=True, metavar="SAMPLE", help="a sample .csv (or .xlsx)")
    a.add_argument("-o", "--output", help="file to write (default NAME.py; - for standard output)")
    a.add_argument("--force", action="store_true", help="overwrite the file")
    a = actions.add_parser("check", help="check dataset modules before deploying them; exit 1 with the reasons")
    a.add_argument("folder", nargs="?", help="default: BULKIMPORT_DATASETS, else the built-in datasets")
    a = actions.add_parser("migrate", help="apply a dataset's breaking changes to its lake tables, after asking")
    a.add_argument("name")
    a.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
