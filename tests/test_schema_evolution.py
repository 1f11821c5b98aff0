"""A dataset that changes: its lake tables follow additive changes on their own and breaking ones after a person's
migration, with time travel and revert still working across it. A real DuckLake on disk (its catalog in SQLite, and
in PostgreSQL too with BULKIMPORT_SCALE_OUT=1); no broker: the stages are plain functions."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

import bulkimport as bi
from bulkimport import api, lake, registry, schema_evolution, schema_migration
from bulkimport.datasets import Dataset, get_dataset
from bulkimport.errors import MigrationRefused, SchemaChangePending
from bulkimport.stages.commit import commit_job, revert_job
from bulkimport.stages.stage import stage_file
from tests.conftest import run_cli

V1 = """
    code: Series[str]
    qty: Series[int]
    price: Series[float]
"""
V1_TYPES = {"code": "VARCHAR", "qty": "INTEGER", "price": "DECIMAL(12,2)"}
# Additive: a new optional column, two widened types, price made optional.
V2 = """
    code: Series[str]
    qty: Series[int]
    price: Series[float] = pa.Field(nullable=True)
    colour: Series[str] = pa.Field(nullable=True)
"""
V2_TYPES = {"code": "VARCHAR", "qty": "BIGINT", "price": "DECIMAL(18,2)", "colour": "VARCHAR"}


def write_items(folder: Path, fields: str, sql_types: dict, required: tuple, aliases: dict | None = None) -> Dataset:
    """The dataset module `items` as a person would save it, and the dataset as the package now loads it."""
    (folder / "items.py").write_text(
        "import pandera.pandas as pa\n"
        "from pandera.typing import Series\n"
        "from bulkimport.datasets import Dataset\n\n\n"
        "class Items(pa.DataFrameModel):\n"
        + textwrap.indent(textwrap.dedent(fields).strip(), "    ")
        + "\n\n    class Config:\n        coerce = True\n\n\n"
        f"DATASET = Dataset(name='items', description='Items', model=Items, key=('code',), sql_types={sql_types!r},"
        f" required={required!r}, aliases={aliases or {}!r})\n"
    )
    return get_dataset("items")


@pytest.fixture
def items(home, lake_backend, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "datasets"
    folder.mkdir()
    monkeypatch.setenv("BULKIMPORT_DATASETS", str(folder))
    yield folder
    api.close()


def run_job(tmp_path: Path, job_id: str, lines: list[str], header: str = "code,qty,price") -> registry.Job:
    """Stage and commit one file of `items` with the dataset as it is now."""
    dataset = get_dataset("items")
    path = tmp_path / f"{job_id}.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    job = registry.create(
        job_id=job_id,
        dataset="items",
        brand="acme",
        file_name=path.name,
        file_path=str(path),
        file_sha256="0" * 64,
        file_bytes=path.stat().st_size,
        created_by="ana",
    )
    with lake.session() as con:
        counts = stage_file(con, job, dataset, path, 1000)
        assert counts.rows_rejected == 0
        commit_job(con, job, dataset, "olga")
    return job


def table(schema: str) -> dict[str, str]:
    with lake.session() as con:
        return dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {schema}.items)").fetchall())


def rows() -> list[tuple]:
    return bi.production("items", "acme").select("code, qty, price").fetchall()


def snapshots() -> int:
    with lake.session() as con:
        return con.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()[0]


def test_a_new_column_a_wider_type_and_a_relaxed_column_apply_as_one_audited_snapshot(items, tmp_path):
    write_items(items, V1, V1_TYPES, ("code", "qty", "price"))
    first = run_job(tmp_path, "job1", ["A,1,1.50", "B,2,2.50"])
    second = run_job(tmp_path, "job2", ["A,1,1.75"])
    # A notebook's connection that read the columns' statistics before they are widened (DuckDB 1.5.5 fails on
    # it with an internal error unless the widening's commit also writes a row: the audit entry does).
    assert bi.connect().sql("SELECT max(qty), max(price) FROM staging.items").fetchone() == (2, Decimal("2.50"))
    before = snapshots()

    plan = schema_evolution.keep_current(write_items(items, V2, V2_TYPES, ("code", "qty")), actor="deploy")

    assert plan.changes == []
    assert snapshots() == before + 1, "the whole change is one snapshot"
    entry = schema_evolution.migrations("items")[-1]
    assert (entry["kind"], entry["applied_by"]) == ("additive", "deploy")
    assert entry["changes"] == [
        "column qty widened from INTEGER to BIGINT",
        "column price widened from DECIMAL(12,2) to DECIMAL(18,2)",
        "new column colour (VARCHAR); rows already there get no value",
        "column price made optional",
    ]
    for schema in ("staging", "production"):
        shown = table(schema)
        assert (shown["qty"], shown["price"], shown["colour"]) == ("BIGINT", "DECIMAL(18,2)", "VARCHAR")
    assert bi.connect().sql("SELECT max(qty), max(price) FROM staging.items").fetchone() == (2, Decimal("2.50"))
    assert rows() == [("A", 1, Decimal("1.75")), ("B", 2, Decimal("2.50"))]
    assert schema_evolution.keep_current(get_dataset("items")).changes == [] and snapshots() == before + 1

    # The new definition works: a blank price, a colour, a quantity beyond INTEGER.
    third = run_job(tmp_path, "job3", ["C,5000000000,,red", "B,2,2.50,blue"], header="code,qty,price,colour")
    assert bi.production("items", "acme").select("code, qty, price, colour").fetchall() == [
        ("A", 1, Decimal("1.75"), None),
        ("B", 2, Decimal("2.50"), "blue"),
        ("C", 5_000_000_000, None, "red"),
    ]

    # Time travel across the migration: production as each job left it, in the columns it had then.
    assert bi.production("items", "acme", as_of=first.id).select("code, price").fetchall() == [
        ("A", Decimal("1.50")),
        ("B", Decimal("2.50")),
    ]
    assert "colour" not in bi.production("items", as_of=first.id).columns
    assert bi.production("items", "acme", before_job=third.id).select("code, price").fetchall() == [
        ("A", Decimal("1.75")),
        ("B", Decimal("2.50")),
    ]
    changed = bi.changes(second.id).select("change, code, price, price_before, colour_before").fetchall()
    assert changed == [("update", "A", Decimal("1.75"), Decimal("1.50"), None)]
    history = bi.history("items", "A", brand="acme").select("job_id, change, price").fetchall()
    assert history == [(first.id, "insert", Decimal("1.50")), (second.id, "update", Decimal("1.75"))]

    # Revert across the migration: job2's update of A is undone from the snapshot before it (older columns).
    with lake.session() as con:
        revert_job(con, second, get_dataset("items"), "olga")
    assert bi.production("items", "acme").select("code, qty, price, colour").fetchall() == [
        ("A", 1, Decimal("1.50"), None),
        ("B", 2, Decimal("2.50"), "blue"),
        ("C", 5_000_000_000, None, "red"),
    ]


def test_a_breaking_change_is_refused_until_an_admin_migrates_and_the_history_survives_it(items, tmp_path):
    write_items(items, V2, V2_TYPES, ("code", "qty"))
    first = run_job(tmp_path, "job1", ["A,1,1.50,red", "B,2,2.50,green"], header="code,qty,price,colour")
    second = run_job(tmp_path, "job2", ["A,1,1.50,blue"], header="code,qty,price,colour")
    # colour becomes shade (the old name stays an alias, so old files still map) and price goes.
    renamed = write_items(
        items,
        "code: Series[str]\nqty: Series[int]\nshade: Series[str] = pa.Field(nullable=True)",
        {"code": "VARCHAR", "qty": "BIGINT", "shade": "VARCHAR"},
        ("code", "qty"),
        aliases={"shade": ("colour",)},
    )
    before = snapshots()

    with pytest.raises(SchemaChangePending) as refused:
        schema_evolution.require_current(renamed)
    message = str(refused.value)
    assert "column colour renamed to shade" in message and "column price (DECIMAL(18,2)) removed" in message
    assert "`bulkimport datasets migrate items`" in message
    assert snapshots() == before and "colour" in table("production"), "nothing changed in the lake"

    not_asked = run_cli("datasets", "migrate", "items", check=False, user="root")
    assert not_asked.returncode == 2 and "add --yes" in not_asked.stderr
    analyst = run_cli("datasets", "migrate", "items", "--yes", check=False, user="ana")
    assert analyst.returncode == 2 and "only an admin may migrate" in analyst.stderr
    assert snapshots() == before

    done = run_cli("datasets", "migrate", "items", "--yes", user="root")
    assert "rename column colour to shade in staging and production (values kept)" in done.stdout
    assert "drop column price from staging and production (2 of 2 production rows have a value" in done.stdout
    assert snapshots() == before + 1
    entry = schema_evolution.migrations("items")[-1]
    assert (entry["kind"], entry["applied_by"]) == ("migration", "root")
    schema_evolution.require_current(renamed)  # jobs may run again
    assert bi.production("items", "acme").select("code, shade").fetchall() == [("A", "blue"), ("B", "green")]
    assert "price" not in table("production") and "price" not in table("staging")

    # Time travel shows production as it was, old names and dropped column included.
    assert bi.production("items", "acme", as_of=first.id).select("code, colour, price").fetchall() == [
        ("A", "red", Decimal("1.50")),
        ("B", "green", Decimal("2.50")),
    ]
    # Revert across the rename restores the old value under the new name.
    with lake.session() as con:
        revert_job(con, second, renamed, "olga")
    assert bi.production("items", "acme").select("code, shade").fetchall() == [("A", "red"), ("B", "green")]
    history = bi.history("items", "A", brand="acme").select("job_id, action, change, shade").fetchall()
    assert history == [
        (first.id, "commit", "insert", "red"),
        (second.id, "commit", "update", "blue"),
        (second.id, "revert", "update", "red"),
    ]


def test_a_narrower_type_is_refused_while_values_would_change_and_nothing_is_written(items, tmp_path):
    write_items(items, V2, V2_TYPES, ("code", "qty"))
    run_job(tmp_path, "job1", ["A,5000000000,1.50,red", "B,2,2.50,"], header="code,qty,price,colour")
    narrower = write_items(items, V2, {**V2_TYPES, "qty": "INTEGER"}, ("code", "qty"))
    before = snapshots()

    with pytest.raises(MigrationRefused, match="qty holds values that would change as INTEGER"):
        schema_migration.preview(narrower)
    refused = run_cli("datasets", "migrate", "items", "--yes", check=False, user="root")
    assert refused.returncode == 1 and "'5000000000'" in refused.stderr
    assert snapshots() == before and table("production")["qty"] == "BIGINT"

    with lake.session() as con:
        con.execute("DELETE FROM production.items WHERE code = 'A'")  # the one value that does not fit
        con.execute("DELETE FROM staging.items WHERE code = 'A'")
    schema_migration.migrate(narrower, "root", expected=schema_migration.preview(narrower).changes)
    assert table("production")["qty"] == table("staging")["qty"] == "INTEGER"
    assert rows() == [("B", 2, Decimal("2.50"))]
    # The column was copied into its new type: history labels that snapshot and shows qty from it on.
    history = bi.history("items", "B", brand="acme").select("action, actor, change, qty, price").fetchall()
    assert history == [
        ("commit", "olga", "insert", None, Decimal("2.50")),
        ("migrate", "root", "update", 2, Decimal("2.50")),
    ]


def test_a_changed_key_or_a_required_column_is_breaking_and_names_what_production_holds(items, tmp_path):
    write_items(items, V2, V2_TYPES, ("code", "qty"))
    run_job(tmp_path, "job1", ["A,1,1.50,red", "B,1,2.50,"], header="code,qty,price,colour")
    stricter = write_items(
        items,
        V2.replace("colour: Series[str] = pa.Field(nullable=True)", "colour: Series[str]"),
        V2_TYPES,
        ("code", "qty", "colour"),
    )
    found = schema_migration.preview(stricter)
    assert [c.describe() for c in found.changes] == ["column colour made required"]
    assert found.consequences == ["new files must have colour; 1 of 2 production rows have no value and keep it so"]

    (items / "items.py").write_text((items / "items.py").read_text().replace("key=('code',)", "key=('qty',)"))
    rekeyed = get_dataset("items")
    with pytest.raises(MigrationRefused, match="1 value.* of the new key \\(qty\\) appear on more"):
        schema_migration.preview(rekeyed)


def test_compare_names_every_kind_of_change():
    """The comparison alone, as a table of cases (no lake)."""

    class Stub:
        aliases = {"title": ("Name",)}
        required = ("code", "title")
        key = ("code", "title")

    lake_columns = {"code": "VARCHAR", "name": "VARCHAR", "qty": "BIGINT", "note": "VARCHAR", "price": "DECIMAL(12,2)"}
    wanted = {"code": "VARCHAR", "title": "VARCHAR", "qty": "INTEGER", "price": "DECIMAL(14,3)", "size": "DOUBLE"}
    recorded = {"required": ["code", "name", "price"], "key": ["code"]}
    changes = schema_evolution.compare(lake_columns, recorded, Stub(), wanted)
    assert {(c.kind, c.column, c.breaking) for c in changes} == {
        ("renamed", "title", True),
        ("removed", "note", True),
        ("retyped", "qty", True),
        ("widened", "price", False),
        ("added", "size", False),
        ("relaxed", "price", False),
        ("key", None, True),
    }
    assert schema_evolution.widens("INTEGER", "DECIMAL(12,2)") and not schema_evolution.widens(
        "BIGINT", "DECIMAL(12,2)"
    )
    assert schema_evolution.widens("DATE", "TIMESTAMP") and not schema_evolution.widens("DOUBLE", "DECIMAL(38,10)")
    assert json.loads(json.dumps([c.to_dict() for c in changes]))  # what audit.migrations stores
