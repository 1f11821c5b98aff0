"""Keep each dataset's lake tables in step with its definition.

A dataset is compared with its tables (``staging.<name>``, ``production.<name>``)
and with what the last migration recorded (``audit.migrations``: which columns
were required, the key). Additive changes apply themselves, in one lake
transaction (one snapshot) with an entry in ``audit.migrations``: a new column
(existing rows get no value), a widened type, a column made optional. Breaking
changes wait for a person (``bulkimport datasets migrate NAME``, see
:func:`migrate`); meanwhile jobs of the dataset fail fast naming the change:
a removed or renamed column, a narrowed or changed type, a changed key, a
column made required.

A column is renamed when its old name is one of the new column's aliases (so
files with the old header still map). Types are widened in place (DuckLake's
``SET TYPE``: no file is rewritten and every row keeps its history); any other
type change copies the column (add, copy, drop, rename), so ``bi.history``
shows that column's values from the migration on, while time travel by
snapshot still shows the old ones.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import duckdb

from bulkimport import lake
from bulkimport.config import settings
from bulkimport.datasets import Dataset, all_datasets
from bulkimport.errors import BulkImportError, MigrationRefused, SchemaChangePending
from bulkimport.sql import current_snapshot, ident
from bulkimport.stages.read.header import normalise

log = logging.getLogger(__name__)

MIGRATIONS = "audit.migrations"
ADDITIVE = ("added", "widened", "relaxed")
BREAKING = ("removed", "renamed", "retyped", "required", "key")
# Renames and removals first, so that a later change of a renamed column finds it by its new name.
_ORDER = ("renamed", "removed", "added", "widened", "retyped", "relaxed", "required", "key")
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")
_INTEGER_DIGITS = {"TINYINT": 3, "SMALLINT": 5, "INTEGER": 10, "BIGINT": 19, "HUGEINT": 39}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),(\d+)\)$")


@dataclass(frozen=True)
class Change:
    """One difference between a dataset and its lake tables."""

    kind: str  # one of ADDITIVE or BREAKING
    column: str | None = None
    old: str | None = None  # the old type, name or key
    new: str | None = None  # the new type or key

    @property
    def breaking(self) -> bool:
        return self.kind in BREAKING

    def describe(self) -> str:
        return {
            "added": f"new column {self.column} ({self.new}); rows already there get no value",
            "widened": f"column {self.column} widened from {self.old} to {self.new}",
            "relaxed": f"column {self.column} made optional",
            "removed": f"column {self.column} ({self.old}) removed",
            "renamed": f"column {self.old} renamed to {self.column}",
            "retyped": f"column {self.column} changed from {self.old} to {self.new} (not a widening)",
            "required": f"column {self.column} made required",
            "key": f"key changed from ({self.old}) to ({self.new})",
        }[self.kind]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "column": self.column, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Plan:
    """How a dataset's tables differ from its definition; ``consequences`` only in a migration's preview."""

    dataset: str
    version: str
    changes: list[Change]
    tables_exist: bool = True
    recorded: bool = True  # the lake holds a migration entry for the dataset
    consequences: list[str] = field(default_factory=list)

    @property
    def additive(self) -> list[Change]:
        return [c for c in self.changes if not c.breaking]

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    def pending_message(self) -> str:
        what = "; ".join(c.describe() for c in self.breaking)
        return (
            f"dataset {self.dataset} changed in a way its lake tables cannot follow on their own ({what}). "
            f"A person must run `bulkimport datasets migrate {self.dataset}` (it shows what it will do and asks); "
            "then retry the job"
        )


# ---------------------------------------------------------------- types


_SPELLING: dict[str, str] = {}


def canonical_type(con: duckdb.DuckDBPyConnection, sql_type: str) -> str:
    """DuckDB's own spelling of a type (``INT`` -> ``INTEGER``, ``NUMERIC`` -> ``DECIMAL(18,3)``)."""
    if sql_type not in _SPELLING:
        try:
            _SPELLING[sql_type] = con.execute(f"SELECT typeof(CAST(NULL AS {sql_type}))").fetchone()[0]
        except duckdb.Error as exc:
            raise BulkImportError(f"{sql_type!r} is not a DuckDB type: {exc}") from exc
    return _SPELLING[sql_type]


def widens(old: str, new: str) -> bool:
    """True when every ``old`` value fits ``new`` unchanged and DuckLake can change the type in place."""
    if old == new:
        return True
    if old in _INTEGERS and new in _INTEGERS:
        return _INTEGERS.index(new) > _INTEGERS.index(old)
    if old in _INTEGERS and (decimal := _DECIMAL.match(new)):
        precision, scale = map(int, decimal.groups())
        return precision - scale >= _INTEGER_DIGITS[old]
    if old in ("TINYINT", "SMALLINT", "INTEGER", "FLOAT") and new == "DOUBLE":
        return True
    if (a := _DECIMAL.match(old)) and (b := _DECIMAL.match(new)):
        (p1, s1), (p2, s2) = map(int, a.groups()), map(int, b.groups())
        return s2 >= s1 and p2 - s2 >= p1 - s1
    return old == "DATE" and new == "TIMESTAMP"


# ---------------------------------------------------------------- reading the lake


def table_name(schema: str, dataset: Dataset | str) -> str:
    name = dataset if isinstance(dataset, str) else dataset.name
    return f"{schema}.{ident(name)}"


def lake_columns(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> dict[str, str] | None:
    """A table's own columns and types (not brand, job_id, line); None if it does not exist."""
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'lake' "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, name],
    ).fetchall()
    if not rows:
        return None
    return {c: t for c, t in rows if c not in ("brand", "job_id", "line")}


def _recorded(con: duckdb.DuckDBPyConnection, name: str) -> dict | None:
    """What the newest migration of the dataset recorded: its sql types, required columns and key."""
    if not _has_table(con, "audit", "migrations"):
        return None
    row = con.execute(
        f"SELECT definition FROM {MIGRATIONS} WHERE dataset = ? ORDER BY applied_at DESC, snapshot_id DESC LIMIT 1",
        [name],
    ).fetchone()
    return json.loads(row[0]) if row else None


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = ? AND table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def compare(
    lake_columns: dict[str, str], recorded: dict | None, dataset: Dataset, wanted: dict[str, str]
) -> list[Change]:
    """The changes from the lake's columns (and the recorded required columns and key) to the dataset.

    ``wanted`` is the dataset's sql types in DuckDB's spelling.
    """
    gone = [c for c in lake_columns if c not in wanted]
    renamed: dict[str, str] = {}  # new name -> old name
    for column in wanted:
        if column in lake_columns:
            continue
        aliases = {normalise(a) for a in dataset.aliases.get(column, ())}
        old = next((g for g in gone if normalise(g) in aliases and g not in renamed.values()), None)
        if old:
            renamed[column] = old
    changes = [Change("renamed", new, old=old) for new, old in renamed.items()]
    changes += [Change("removed", c, old=lake_columns[c]) for c in gone if c not in renamed.values()]
    for column, sql_type in wanted.items():
        before = lake_columns.get(renamed.get(column, column))
        if before is None:
            changes.append(Change("added", column, new=sql_type))
        elif before != sql_type:
            changes.append(Change("widened" if widens(before, sql_type) else "retyped", column, before, sql_type))
    if recorded is None:
        return changes
    now_named = {old: new for new, old in renamed.items()}
    was_required = {now_named.get(c, c) for c in recorded.get("required", ())}
    for column in wanted:
        if renamed.get(column, column) not in lake_columns:
            continue  # a new column: required or not, rows already there have no value
        if column in was_required and column not in dataset.required:
            changes.append(Change("relaxed", column))
        elif column not in was_required and column in dataset.required:
            changes.append(Change("required", column))
    old_key = [now_named.get(c, c) for c in recorded.get("key", ())]
    if old_key != list(dataset.key):
        changes.append(Change("key", old=", ".join(old_key), new=", ".join(dataset.key)))
    return changes


def plan(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> Plan:
    """How the dataset differs from its tables now (nothing is changed)."""
    production = lake_columns(con, "production", dataset.name)
    if production is None:
        return Plan(dataset.name, dataset.version, [], tables_exist=False, recorded=False)
    recorded = _recorded(con, dataset.name)
    wanted = {c: canonical_type(con, t) for c, t in dataset.sql_types.items()}
    changes = compare(production, recorded, dataset, wanted)
    staging = lake_columns(con, "staging", dataset.name) or {}
    # A staging table that lags behind its production table (it is created anew on a new lake) is fixed too.
    for change in compare(staging, None, dataset, wanted):
        if change.kind in ("added", "widened") and change not in changes:
            changes.append(change)
    return Plan(dataset.name, dataset.version, changes, recorded=recorded is not None)


def status(dataset: Dataset) -> Plan:
    """How the dataset differs from its tables now, read only (nothing is applied)."""
    with lake.session() as con:
        return plan(con, dataset)


# ---------------------------------------------------------------- applying


def _audit_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS audit")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS} (dataset VARCHAR, version VARCHAR, kind VARCHAR, "
        "changes VARCHAR, applied_by VARCHAR, applied_at TIMESTAMP, snapshot_id BIGINT, definition VARCHAR)"
    )


def _alter(con: duckdb.DuckDBPyConnection, dataset: Dataset, change: Change) -> None:
    """Apply one change to both tables (each only where it differs)."""
    for schema in ("staging", "production"):
        table = table_name(schema, dataset)
        columns = lake_columns(con, schema, dataset.name) or {}
        column = ident(change.column)
        if change.kind == "added" and change.column not in columns:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {change.new}")
        elif change.kind == "renamed" and change.old in columns:
            con.execute(f"ALTER TABLE {table} RENAME COLUMN {ident(change.old)} TO {column}")
        elif change.kind == "removed" and change.column in columns:
            con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        elif change.kind == "widened" and columns.get(change.column) not in (None, change.new):
            con.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET TYPE {change.new}")
        elif change.kind == "retyped" and columns.get(change.column) not in (None, change.new):
            # DuckLake changes a type in place only when it widens: copy the column instead.
            temporary = ident(f"{change.column}__migrating")
            con.execute(f"ALTER TABLE {table} ADD COLUMN {temporary} {change.new}")
            con.execute(f"UPDATE {table} SET {temporary} = CAST({column} AS {change.new})")
            con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
            con.execute(f"ALTER TABLE {table} RENAME COLUMN {temporary} TO {column}")


def _definition_after(recorded: dict | None, dataset: Dataset, applied: list[Change], everything: bool) -> dict:
    """What the lake now follows: all of the dataset, or the old required columns and key with additive changes."""
    if everything or recorded is None:
        required, key = list(dataset.required), list(dataset.key)
    else:
        renamed = {c.old: c.column for c in applied if c.kind == "renamed"}
        relaxed = {c.column for c in applied if c.kind == "relaxed"}
        added = {c.column for c in applied if c.kind == "added"}
        required = [renamed.get(c, c) for c in recorded.get("required", ()) if renamed.get(c, c) not in relaxed]
        required += [c for c in dataset.required if c in added and c not in required]
        key = [renamed.get(c, c) for c in recorded.get("key", ())]
    return {"sql_types": dict(dataset.sql_types), "required": required, "key": key}


def _record(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, kind: str, changes: list[Change], actor: str, definition: dict
) -> None:
    """The audit entry, in the migration's own transaction (so one snapshot holds both).

    It matters twice: in DuckDB 1.5.5 a type widened in a transaction that writes no row leaves other
    connections that had read the column's statistics failing with an internal error; with a row
    written in the same commit they reload them.
    """
    snapshot = current_snapshot(con)
    con.execute(
        f"INSERT INTO {MIGRATIONS} VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP, ?, ?)",
        [
            dataset.name,
            dataset.version,
            kind,
            json.dumps([c.to_dict() for c in changes]),
            actor,
            snapshot,
            json.dumps(definition),
        ],
    )
    summary = "; ".join(c.describe() for c in changes) or kind
    con.execute("CALL lake.set_commit_message(?, ?)", [actor, f"{kind} {dataset.name}: {summary}"[:1000]])


def create_tables(con: duckdb.DuckDBPyConnection, dataset: Dataset, actor: str) -> None:
    lake.ensure_tables(con, dataset, evolve=False)

    def record(c: duckdb.DuckDBPyConnection) -> None:
        _audit_table(c)
        if _recorded(c, dataset.name) is None:
            _record(c, dataset, "created", [], actor, _definition_after(None, dataset, [], True))

    lake.write(con, record)


def apply_changes(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    actor: str,
    everything: bool,
    expected: list[Change] | None = None,
    refuse: Callable[[duckdb.DuckDBPyConnection, Plan], None] | None = None,
) -> Plan:
    """Apply the additive changes (``everything``: all of them) in one transaction; the plan it applied.

    ``expected`` is the plan a person agreed to: if the lake changed since, nothing is done.
    ``refuse(con, plan)`` may raise to stop a migration whose rows do not fit.
    """

    def work(c: duckdb.DuckDBPyConnection) -> Plan:
        _audit_table(c)
        found = plan(c, dataset)  # again inside the transaction: another process may have got there first
        if expected is not None and found.changes != expected:
            raise MigrationRefused(
                f"the tables of {dataset.name} changed since the plan was shown; run the migration again"
            )
        if refuse is not None:
            refuse(c, found)
        todo = found.changes if everything else found.additive
        if not todo and found.recorded:
            return found
        for change in sorted(todo, key=lambda ch: _ORDER.index(ch.kind)):
            _alter(c, dataset, change)
        kind = "migration" if everything else ("additive" if todo else "adopted")
        _record(c, dataset, kind, todo, actor, _definition_after(_recorded(c, dataset.name), dataset, todo, everything))
        return found

    return lake.write(con, work)


def default_actor() -> str:
    """Who changes the lake when nobody in particular asked: this process."""
    return f"automatic ({socket.gethostname()}:{os.getpid()})"


_in_step: set[tuple[str, str, str]] = set()  # (lake location, dataset, version) known to need nothing
_in_step_lock = threading.Lock()


def _marker(dataset: Dataset) -> tuple[str, str, str]:
    s = settings()
    return (f"{s.lake_catalog}|{s.lake_data}", dataset.name, dataset.version)


def forget_in_step(dataset: Dataset) -> None:
    """Look at the lake again next time (after a migration, say)."""
    with _in_step_lock:
        _in_step.discard(_marker(dataset))


def keep_current(dataset: Dataset, actor: str | None = None) -> Plan:
    """Create the dataset's tables or apply its additive changes; the plan, with any breaking changes left.

    Opens its own lake session. Once a version is found in step, this process does not look again.
    """
    marker = _marker(dataset)
    if marker in _in_step:
        return Plan(dataset.name, dataset.version, [])
    actor = actor or default_actor()
    with lake.session() as con:
        found = plan(con, dataset)
        if not found.tables_exist:
            create_tables(con, dataset, actor)
            found = plan(con, dataset)
        if found.additive or not found.recorded:
            applied = apply_changes(con, dataset, actor, everything=False)
            if applied.additive:
                log.info("dataset %s: %s", dataset.name, "; ".join(c.describe() for c in applied.additive))
            found = plan(con, dataset)
    if not found.changes:
        with _in_step_lock:
            _in_step.add(marker)
    return found


def require_current(dataset: Dataset, actor: str | None = None) -> None:
    """:func:`keep_current`, then SchemaChangePending (naming the changes and the command) if a person must migrate."""
    found = keep_current(dataset, actor)
    if found.breaking:
        raise SchemaChangePending(found.pending_message())


def keep_all_current(actor: str | None = None, names: Iterable[str] | None = None) -> dict[str, Plan | Exception]:
    """:func:`keep_current` for every dataset (on start); a dataset that fails does not stop the others."""
    results: dict[str, Plan | Exception] = {}
    for name, dataset in all_datasets().items():
        if names is not None and name not in names:
            continue
        try:
            results[name] = keep_current(dataset, actor)
        except Exception as exc:  # noqa: BLE001 - reported per dataset; the lake may be unreachable
            log.warning("dataset %s: could not compare with the lake: %s", name, exc)
            results[name] = exc
    for result in results.values():
        if isinstance(result, Plan) and result.breaking:
            log.warning("%s", result.pending_message())
    return results


# ---------------------------------------------------------------- history and time travel


def migrations(dataset: str | None = None) -> list[dict]:
    """Every recorded migration, oldest first: dataset, version, kind, changes (in words), who, when."""
    with lake.session() as con:
        if not _has_table(con, "audit", "migrations"):
            return []
        where = " WHERE dataset = ?" if dataset else ""
        rows = con.execute(
            "SELECT dataset, version, kind, changes, applied_by, applied_at, snapshot_id "
            f"FROM {MIGRATIONS}{where} ORDER BY applied_at, snapshot_id",
            [dataset] if dataset else [],
        ).fetchall()
    return [
        {
            "dataset": name,
            "version": version,
            "kind": kind,
            "changes": [Change(**c).describe() for c in json.loads(changes)],
            "applied_by": by,
            "applied_at": at,
            "snapshot_id": snapshot,
        }
        for name, version, kind, changes, by, at, snapshot in rows
    ]


def as_of(con: duckdb.DuckDBPyConnection, dataset: Dataset, schema: str, snapshot: int) -> str:
    """SQL for a table at ``snapshot`` in today's columns: renamed ones by their new name, new ones NULL.

    Revert and a committed job's changes read production as it was before a
    commit, and a migration may have changed the columns since.
    """
    table = table_name(schema, dataset)
    then = set(con.sql(f"SELECT * FROM {table} AT (VERSION => {int(snapshot)}) LIMIT 0").columns)
    names = {c: c for c in dataset.columns}
    if _has_table(con, "audit", "migrations"):
        later = con.execute(
            f"SELECT changes FROM {MIGRATIONS} WHERE dataset = ? AND snapshot_id >= ? "
            "ORDER BY applied_at DESC, snapshot_id DESC",
            [dataset.name, int(snapshot)],
        ).fetchall()
        for (changes,) in later:  # newest first: follow each rename back to the name it had then
            for change in json.loads(changes):
                if change["kind"] == "renamed":
                    names = {c: (change["old"] if n == change["column"] else n) for c, n in names.items()}
    fixed = ("brand", "job_id", "line")
    columns = [ident(c) for c in fixed if c in then]
    columns += [
        f"{ident(names[c])} AS {ident(c)}" if names[c] in then else f"NULL AS {ident(c)}" for c in dataset.columns
    ]
    return f"(SELECT {', '.join(columns)} FROM {table} AT (VERSION => {int(snapshot)}))"
