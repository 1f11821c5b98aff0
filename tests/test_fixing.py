"""Fixing rejected rows, repair suggestions and write modes as plain stage functions: a real DuckLake, no broker."""

from dataclasses import replace
from pathlib import Path

import pytest

from bulkimport import fixing, lake, registry
from bulkimport.datasets import get_dataset
from bulkimport.errors import RevertRefused
from bulkimport.exports import rejected_for_fixing
from bulkimport.stages import fix, modes, repair
from bulkimport.stages.commit import commit_job, revert_job
from bulkimport.stages.review import diff, fingerprint, staged_rows
from bulkimport.stages.stage import stage_file
from tests.conftest import EXAMPLE, who

HEADER = "sku,name,price,currency,stock,ean,launch_date\n"
PRODUCTS = get_dataset("products")


@pytest.fixture
def con(home):
    with lake.session() as con:
        yield con


def staged(con, text_or_path, tmp_path, job_id="job1", brand="acme", mode="upsert") -> registry.Job:
    """A job staged as a worker stages it: file read, conflicts of an append rejected, suggestions worked out."""
    if isinstance(text_or_path, Path):
        path = text_or_path
    else:
        path = tmp_path / f"{job_id}.csv"
        path.write_text(text_or_path, encoding="utf-8")
    job = registry.create(
        job_id=job_id,
        dataset="products",
        brand=brand,
        file_name=path.name,
        file_path=str(path),
        file_sha256="0" * 64,
        file_bytes=path.stat().st_size,
        created_by="ana",
        mode=mode,
    )
    counts = stage_file(con, job, PRODUCTS, path, 1000)
    conflicts = modes.reject_conflicts(con, job, PRODUCTS)
    job = registry.transition(
        job.id,
        "pending",
        "staged",
        actor="test",
        rows_total=counts.rows_total,
        rows_valid=counts.rows_valid - conflicts,
        rows_rejected=counts.rows_rejected + conflicts,
        dialect=counts.dialect,
        mapping=counts.mapping,
    )
    repair.store_suggestions(con, job, PRODUCTS)
    return job


def apply(con, job, rows: dict, by="ana", suggestion=False) -> fix.FixOutcome:
    """Record a fix of ``rows`` ({line: {column: text}}) and run the worker's check on it."""
    current = {r.line: r for r in fix.rejected_lines(con, job, PRODUCTS, lines=list(rows))}
    payload = []
    for line, cells in rows.items():
        new = {**current[line].cells, **cells}
        changes = {c: [current[line].cells.get(c), v] for c, v in new.items() if v != current[line].cells.get(c)}
        payload.append({"line": line, "cells": new, "changes": changes, "suggestion": suggestion})
    registry.request_fix(job.id, payload, requested_by=by, note="test fix")
    outcome = fix.apply_fix(con, registry.get(job.id), PRODUCTS, registry.pending_fix(job.id))
    registry.finish_fix(
        registry.pending_fix(job.id).id,
        job.id,
        registry.FIX_DONE,
        outcome.to_dict(),
        actor="test",
        note="checked",
        rows_valid=outcome.rows_valid,
        rows_rejected=outcome.rows_rejected,
    )
    return outcome


def staged_lines(con, job) -> list[int]:
    return [line for (line,) in staged_rows(con, job, PRODUCTS).select("line").fetchall()]


# ---------------------------------------------------------------- fixing


def test_a_fixed_row_joins_the_staged_rows_under_its_line_and_every_line_stays_accounted_for(con, tmp_path):
    job = staged(con, EXAMPLE, tmp_path)
    assert (job.rows_valid, job.rows_rejected) == (7, 9)
    outcome = apply(con, job, {6: {"price": "3.00"}, 8: {"stock": "10"}})
    assert (outcome.staged, outcome.rejected) == ([6, 8], [])
    assert (outcome.rows_valid, outcome.rows_rejected) == (9, 7)
    assert outcome.rows_valid + outcome.rows_rejected == job.rows_total
    rows = {r[0]: r for r in staged_rows(con, job, PRODUCTS).fetchall()}
    assert float(rows[6][4]) == 3.0 and rows[8][6] == 10
    assert 6 not in {r.line for r in fix.rejected_lines(con, job, PRODUCTS)}


def test_a_fixed_row_that_still_fails_stays_rejected_with_its_new_reason(con, tmp_path):
    job = staged(con, EXAMPLE, tmp_path)
    outcome = apply(con, job, {8: {"stock": "-1"}})
    assert (outcome.staged, outcome.rejected) == ([], [8])
    [line8] = fix.rejected_lines(con, job, PRODUCTS, lines=[8])
    assert line8.reasons == ["constraint-error"] and line8.details == ["stock: '-1' must be >= 0"]
    assert line8.cells["stock"] == "-1"
    # The download to fix in a spreadsheet has the row as it was fixed, in the file's own columns.
    download = rejected_for_fixing(job.id, who("ana"))
    assert download.loc[download.line == 8, "stock"].item() == "-1"


def test_the_audit_records_who_changed_which_cell_from_what_to_what(con, tmp_path):
    job = staged(con, EXAMPLE, tmp_path)
    apply(con, job, {6: {"price": "3.00"}, 10: {"sku": "ACME-1009"}}, by="ana")
    audit = fix.history(con, job)
    cells = zip(audit.line, audit.column, audit.before, audit.after, audit.fixed_by, audit.outcome, strict=True)
    assert sorted(cells) == [
        (6, "price", "-3.00", "3.00", "ana", "staged"),
        (10, "sku", "acme 1009", "ACME-1009", "ana", "staged"),
    ]


def test_a_fix_delivered_twice_is_applied_once(con, tmp_path):
    job = staged(con, EXAMPLE, tmp_path)
    current = fix.rejected_lines(con, job, PRODUCTS, lines=[6])[0]
    cells = {**current.cells, "price": "3.00"}
    registry.request_fix(
        job.id,
        [{"line": 6, "cells": cells, "changes": {"price": ["-3.00", "3.00"]}, "suggestion": False}],
        requested_by="ana",
        note="n",
    )
    pending = registry.pending_fix(job.id)
    first = fix.apply_fix(con, registry.get(job.id), PRODUCTS, pending)
    again = fix.apply_fix(con, registry.get(job.id), PRODUCTS, pending)
    assert again.already_applied and again.staged == first.staged == [6]
    assert staged_lines(con, job).count(6) == 1
    assert len(fix.history(con, job)) == 1


def test_a_fixed_row_whose_key_is_already_staged_is_rejected_as_a_duplicate(con, tmp_path):
    job = staged(con, EXAMPLE, tmp_path)
    outcome = apply(con, job, {10: {"sku": "ACME-1001"}})  # line 2 has ACME-1001
    assert outcome.rejected == [10]
    [line10] = fix.rejected_lines(con, job, PRODUCTS, lines=[10])
    assert line10.reasons == ["duplicate-key"] and "already staged from line 2" in line10.details[0]


def test_fixing_the_rows_changes_the_fingerprint_an_approval_binds(con, tmp_path):
    job = staged(con, EXAMPLE, tmp_path)
    before = fingerprint(con, job, PRODUCTS)
    apply(con, job, {6: {"price": "3.00"}})
    assert fingerprint(con, job, PRODUCTS) != before
    assert diff(con, job, PRODUCTS).rows_to_insert == 8


def test_the_fixed_error_file_comes_back_matched_by_line(con, tmp_path):
    job = staged(con, EXAMPLE.read_text().replace("Descaler 1 l", "=Descaler"), tmp_path, "formula")
    download = rejected_for_fixing(job.id, who("ana"))
    assert download.loc[download.line == 7, "name"].item() == "'=Descaler"  # neutralised for spreadsheets
    download.loc[download.line == 8, "stock"] = "12"
    path = tmp_path / "fixed.csv"
    download.to_csv(path, index=False, sep=";")  # a spreadsheet may save with semicolons
    rows, problems = fixing.rows_from_error_file(job.id, path, who("ana"))
    assert problems == []
    assert rows[8]["stock"] == "12"
    unchanged = {r.line: r.cells for r in fix.rejected_lines(con, job, PRODUCTS) if r.line != 8}
    assert {n: cells for n, cells in rows.items() if n != 8} == unchanged  # read back as they were, =Descaler too


# ---------------------------------------------------------------- repair suggestions

DAMAGED = (
    HEADER
    + "AB-0001,Cup, large,4.50,EUR,10,,\n"  # a comma inside an unquoted name: one cell too many
    + 'AB-0002,"Kettle,1.50",EUR,10,,\n'  # a delimiter lost between name and price, inside quotes
    + 'AB-0003,"Jug,4.00,EUR,5,,\n'  # an unterminated quote
    + "AB-0004,Pot,4.00,EUR,5,,\n"
    + "AB-0005,Tray,a,b,EUR,5,,\n"  # one cell too many, but no join passes the schema
    + "AB-0006,Mug,1,2,EUR,5,,\n"  # one cell too many, and two joins pass: ambiguous
)


def test_one_passing_repair_is_suggested_for_each_damaged_row_and_none_when_ambiguous(con, tmp_path):
    job = staged(con, DAMAGED, tmp_path)
    found = {s.line: s for s in repair.suggestions(con, job)}
    assert sorted(found) == [2, 3, 4]
    assert found[2].change == "join 'Cup' and ' large' into one cell: 'Cup, large'"
    assert found[2].values["name"] == "Cup, large" and found[2].values["price"] == "4.50"
    assert found[3].change.startswith("split 'Kettle,1.50' at ','")
    assert (found[3].values["name"], found[3].values["price"]) == ("Kettle", "1.50")
    assert found[4].change == "drop the stray quote at character 9"
    assert found[4].cells_before[1] == '"Jug' and found[4].cells_after[1] == "Jug"
    assert staged_lines(con, job) == [5], "a suggestion is never applied on its own"


def test_accepting_suggestions_stages_the_repaired_rows(con, tmp_path):
    job = staged(con, DAMAGED, tmp_path)
    found = repair.suggestions(con, job)
    outcome = apply(con, job, {s.line: s.values for s in found}, suggestion=True)
    assert outcome.staged == [2, 3, 4]
    assert staged_lines(con, job) == [2, 3, 4, 5]
    assert repair.suggestions(con, job) == []
    assert fix.history(con, job).suggestion.all()


def test_a_suggestion_whose_key_is_already_staged_is_not_offered(con, tmp_path):
    job = staged(con, HEADER + "AB-0001,Pot,4.00,EUR,5,,\nAB-0001,Cup, large,4.50,EUR,10,,\n", tmp_path)
    assert repair.suggestions(con, job) == []


# ---------------------------------------------------------------- write modes


def committed(con, job):
    commit_job(con, registry.get(job.id), PRODUCTS, "olga")
    return registry.get(job.id)


def production(con, brand="acme") -> dict[str, float]:
    rows = con.sql(f"SELECT sku, price FROM production.products WHERE brand = '{brand}' ORDER BY sku").fetchall()
    return {sku: float(price) for sku, price in rows}


def test_append_rejects_rows_whose_key_is_in_production_as_conflicts(con, tmp_path):
    committed(con, staged(con, HEADER + "AB-0001,cup,1.00,EUR,1,,\n", tmp_path, "first"))
    text = HEADER + "AB-0001,cup,9.00,EUR,1,,\nAB-0002,jug,2.00,EUR,2,,\n"
    job = staged(con, text, tmp_path, "second", mode="append")
    assert (job.rows_valid, job.rows_rejected) == (1, 1)
    [conflict] = fix.rejected_lines(con, job, PRODUCTS)
    assert conflict.reasons == ["conflict"] and "written by job first" in conflict.details[0]
    assert conflict.cells["price"] in ("9.00", "9.0")  # the row as staged (issue 16 keeps its text)
    counts = diff(con, job, PRODUCTS)
    assert (counts.rows_to_insert, counts.rows_to_update, counts.rows_conflicting) == (1, 0, 0)
    committed(con, job)
    assert production(con) == {"AB-0001": 1.0, "AB-0002": 2.0}


def test_replace_deletes_the_brands_rows_not_in_the_file_and_revert_brings_them_back(con, tmp_path):
    first = committed(
        con, staged(con, HEADER + "".join(f"AB-000{i},p{i},{i}.00,EUR,1,,\n" for i in range(1, 6)), tmp_path, "first")
    )
    committed(con, staged(con, HEADER + "AB-0009,other,9.00,EUR,1,,\n", tmp_path, "globex", brand="globex"))
    job = staged(con, HEADER + "AB-0001,p1,1.50,EUR,1,,\nAB-0006,new,6.00,EUR,1,,\n", tmp_path, "repl", mode="replace")
    counts = diff(con, job, PRODUCTS)
    assert (counts.rows_to_insert, counts.rows_to_update, counts.rows_to_delete, counts.production_rows) == (1, 1, 4, 5)
    assert modes.confirmation_needed(job, counts, 0.20).startswith("approving deletes 4 of the 5 rows of brand acme")
    assert modes.confirmation_needed(job, counts, 0.90) is None
    result = commit_job(con, job, PRODUCTS, "olga")
    assert result.rows_deleted == 4
    assert production(con) == {"AB-0001": 1.5, "AB-0006": 6.0}
    assert production(con, "globex") == {"AB-0009": 9.0}, "other brands are never touched"
    assert con.sql("SELECT rows_deleted, mode FROM audit.ledger WHERE job_id = 'repl'").fetchone() == (4, "replace")

    reverted = revert_job(con, registry.get(job.id), PRODUCTS, "olga")
    assert (reverted.rows_deleted, reverted.rows_restored) == (1, 5)
    assert production(con) == {f"AB-000{i}": float(i) for i in range(1, 6)}
    assert con.sql("SELECT DISTINCT job_id FROM production.products WHERE brand = 'acme'").fetchall() == [(first.id,)]


def test_an_approval_of_a_replace_binds_the_rows_it_deletes(con, tmp_path):
    committed(con, staged(con, HEADER + "AB-0001,a,1.00,EUR,1,,\nAB-0002,b,2.00,EUR,1,,\n", tmp_path, "first"))
    job = staged(con, HEADER + "AB-0001,a,1.00,EUR,1,,\n", tmp_path, "repl", mode="replace")
    approved = fingerprint(con, job, PRODUCTS)
    # Another import changes a row the replace would delete (not one it stages).
    committed(con, staged(con, HEADER + "AB-0002,b,2.50,EUR,1,,\n", tmp_path, "other"))
    assert fingerprint(con, job, PRODUCTS) != approved


def test_revert_of_a_replace_is_refused_when_a_later_import_wrote_a_deleted_key(con, tmp_path):
    committed(con, staged(con, HEADER + "AB-0001,a,1.00,EUR,1,,\nAB-0002,b,2.00,EUR,1,,\n", tmp_path, "first"))
    job = committed(con, staged(con, HEADER + "AB-0001,a,1.00,EUR,1,,\n", tmp_path, "repl", mode="replace"))
    committed(con, staged(con, HEADER + "AB-0002,b,2.75,EUR,1,,\n", tmp_path, "later"))
    with pytest.raises(RevertRefused, match="job later committed later"):
        revert_job(con, job, PRODUCTS, "olga")


def test_a_replace_with_rejected_lines_asks_for_confirmation_whatever_it_deletes(con, tmp_path):
    committed(con, staged(con, HEADER + "".join(f"AB-000{i},p{i},1.00,EUR,1,,\n" for i in range(1, 10)), tmp_path))
    text = HEADER + "".join(f"AB-000{i},p{i},1.00,EUR,1,,\n" for i in range(1, 9)) + "AB-0009,p9,oops,EUR,1,,\n"
    job = staged(con, text, tmp_path, "repl", mode="replace")
    counts = diff(con, job, PRODUCTS)
    assert counts.rows_to_delete == 1 and counts.delete_share < 0.2
    assert "1 line(s) of the file were rejected" in modes.confirmation_needed(job, counts, 0.20)
    assert modes.confirmation_needed(replace(job, mode="upsert"), counts, 0.20) is None
