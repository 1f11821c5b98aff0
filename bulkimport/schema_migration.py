"""A person's migration: the breaking changes of a dataset, shown first, applied on request.

``bulkimport datasets migrate NAME`` shows :func:`preview` (every change and what it
does to the rows already there), asks, then runs :func:`migrate`: all changes in one
lake transaction (one snapshot) with an entry in ``audit.migrations``. A migration
that would change values (a narrowed type) or break the new key (duplicates) is
refused, naming the rows' values, and nothing is written.
"""

from __future__ import annotations

import duckdb

from bulkimport import lake
from bulkimport.datasets import Dataset
from bulkimport.errors import MigrationRefused
from bulkimport.schema_evolution import (
    Change,
    Plan,
    apply_changes,
    create_tables,
    forget_in_step,
    lake_columns,
    plan,
    table_name,
)
from bulkimport.sql import ident


def _renamed(found: Plan) -> dict[str, str]:
    """New name -> the name the column has in the lake until the migration."""
    return {c.column: c.old for c in found.changes if c.kind == "renamed"}


def _fit_problems(con: duckdb.DuckDBPyConnection, dataset: Dataset, found: Plan) -> list[str]:
    """Rows in the lake that the breaking changes would alter, or that would break the new key."""
    problems = []
    renamed = _renamed(found)
    for change in found.changes:
        if change.kind != "retyped":
            continue
        column = ident(renamed.get(change.column, change.column))
        # A value fits when it comes back unchanged from the new type ("007" as a number does not).
        round_trip = f"TRY_CAST(TRY_CAST({column} AS {change.new}) AS {change.old})"
        for schema in ("production", "staging"):
            rows = con.execute(
                f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM {table_name(schema, dataset)} "
                f"WHERE {column} IS NOT NULL AND {round_trip} IS DISTINCT FROM {column} LIMIT 4"
            ).fetchall()
            if rows:
                shown = ", ".join(repr(r[0]) for r in rows[:3]) + (", ..." if len(rows) > 3 else "")
                problems.append(
                    f"{schema}.{dataset.name}.{change.column} holds values that would change as {change.new}: {shown}"
                )
    if any(c.kind == "key" for c in found.changes):
        key = ", ".join(["brand", *(ident(renamed.get(c, c)) for c in dataset.key)])
        duplicates = con.execute(
            f"SELECT count(*) FROM (SELECT {key} FROM {table_name('production', dataset)} GROUP BY {key} "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
        if duplicates:
            problems.append(
                f"{duplicates} value(s) of the new key ({', '.join(dataset.key)}) appear on more than one row of "
                f"production.{dataset.name} for the same brand"
            )
    return problems


def _refuse_what_does_not_fit(dataset: Dataset):
    def refuse(con: duckdb.DuckDBPyConnection, found: Plan) -> None:
        problems = _fit_problems(con, dataset, found)
        if problems:
            raise MigrationRefused(f"cannot migrate {dataset.name}: " + "; ".join(problems))

    return refuse


def _consequences(con: duckdb.DuckDBPyConnection, dataset: Dataset, found: Plan) -> list[str]:
    """What each change does to the rows already in production, in words."""
    table = table_name("production", dataset)
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    renamed = _renamed(found)
    said = []
    for change in found.changes:
        column = ident(renamed.get(change.column, change.column))
        if change.kind == "removed":
            kept = con.execute(f"SELECT count({column}) FROM {table}").fetchone()[0]
            said.append(
                f"drop column {change.column} from staging and production ({kept} of {rows} production rows have "
                "a value; time travel to before the migration still shows them)"
            )
        elif change.kind == "renamed":
            said.append(f"rename column {change.old} to {change.column} in staging and production (values kept)")
        elif change.kind == "retyped":
            said.append(
                f"convert column {change.column} from {change.old} to {change.new} in staging and production "
                f"({rows} production rows; bi.history shows its values from the migration on)"
            )
        elif change.kind == "required":
            blank = con.execute(f"SELECT count(*) FROM {table} WHERE {column} IS NULL").fetchone()[0]
            said.append(
                f"new files must have {change.column}; {blank} of {rows} production rows have no value and keep it so"
            )
        elif change.kind == "key":
            said.append(
                f"rows are matched by (brand, {change.new}) from now on; jobs staged before must be checked again"
            )
        else:
            said.append(change.describe())
    return said


def preview(dataset: Dataset) -> Plan:
    """What :func:`migrate` would do, with its consequences; MigrationRefused if rows do not fit."""
    with lake.session() as con:
        found = plan(con, dataset)
        if not found.tables_exist:
            return found
        _refuse_what_does_not_fit(dataset)(con, found)
        return Plan(
            found.dataset,
            found.version,
            found.changes,
            recorded=found.recorded,
            consequences=_consequences(con, dataset, found),
        )


def migrate(dataset: Dataset, actor: str, expected: list[Change] | None = None) -> Plan:
    """Apply every change, breaking ones too, as one snapshot with an entry in audit.migrations.

    ``expected`` is the plan the person agreed to: if the lake changed since, nothing is done.
    """
    with lake.session() as con:
        if lake_columns(con, "production", dataset.name) is None:
            create_tables(con, dataset, actor)  # a new lake: nothing to migrate
            return plan(con, dataset)
        applied = apply_changes(
            con, dataset, actor, everything=True, expected=expected, refuse=_refuse_what_does_not_fit(dataset)
        )
    forget_in_step(dataset)
    return applied
