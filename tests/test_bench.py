"""The benchmark itself runs: every contender, on both small files, agreeing on the bad rows; latency mode works.

Timing goals are printed by `python -m bench`, never asserted here.
"""

import codecs
import csv
import importlib.util
import json
import time

import polars as pl
import pytest

from bench import latency, polars_products, report
from bench.cli import main
from bench.contenders import CONTENDERS
from bench.generate import CLEAN, DUPLICATE, MESSY, generate_messy

ROWS = 5_000
VALIDATORS = {name for name, c in CONTENDERS.items() if c.validates}


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_benchmark_on_both_files_times_every_contender_and_they_agree_on_the_bad_rows(tmp_path, capsys):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    args = ["--rows", str(ROWS), "--repeat", "1", "--json", str(out), "--workdir", str(tmp_path / "work"), "--quiet"]
    if importlib.util.find_spec("matplotlib"):
        args += ["--png", str(png)]
    started = time.monotonic()
    code = main(args)
    took = time.monotonic() - started
    result = json.loads(out.read_text())
    assert list(result["files"]) == ["clean", "messy"]

    for name, file in result["files"].items():
        contenders = file["contenders"]
        # Every contender ran: none may be skipped, frictionless included (it is pinned in requirements.txt).
        assert "frictionless" in contenders
        assert list(contenders) == list(CONTENDERS)
        for contender, entry in contenders.items():
            assert entry["status"] == "ok", f"{name} file: {contender} {entry['status']}: {entry.get('reason')}"
            assert entry["seconds"] > 0 and entry["peak_rss_mb"] > 0 and entry["rows_per_s"] > 0

        # Every validating contender found exactly the generated bad lines, repeated keys by its own rule.
        agreement = file["agreement"]
        assert agreement["all_agree"], (name, agreement)
        assert set(agreement["contenders"]) == VALIDATORS
        assert file["bad_rows_expected"] == (ROWS // 100 if name == "clean" else ROWS // 100 + ROWS // 200)
        for contender, verdict in agreement["contenders"].items():
            first_copies = agreement["first_copies_of_duplicates"] if verdict["duplicates"] == "every" else 0
            assert verdict["found"] == file["bad_rows_expected"] + first_copies, (name, contender, verdict)
        stage = contenders["bulkimport_stage"]["extra"]
        assert stage["rows_valid"] == ROWS - file["bad_rows_expected"]
        # Which path staged it is reported; the careful contender took the careful path.
        assert stage["path"] in ("fast", "careful")
        assert contenders["bulkimport_careful"]["extra"]["path"] == "careful"

        # Our commit and the MERGE doing the same work leave the same production table and ledger counts.
        assert file["commit_agreement"]["same_production"], file["commit_agreement"]
        commit = contenders["bulkimport_commit"]["extra"]
        assert commit["rows_inserted"] > 0 and commit["rows_updated"] > 0 and commit["rows_unchanged"] > 0
        assert commit["ledger"] == [[commit["rows_inserted"], commit["rows_updated"], commit["rows_unchanged"]]]

    messy = result["files"]["messy"]
    assert messy["lines"] > ROWS + 1, "some values of the messy file span lines"
    assert messy["bad_kinds"][DUPLICATE] == ROWS // 200

    printed = capsys.readouterr().out
    assert "clean file:" in printed and "messy file:" in printed and "goals (printed, not tested)" in printed
    assert "bulkimport_stage: fast path" in printed or "bulkimport_stage: careful path because" in printed
    goals = [g["goal"] for g in result["goals"]]
    assert goals[0] == f"bulkimport_stage within 1.5x of baseline_duckdb on the clean file ({ROWS:,} rows)"
    for file in ("clean", "messy"):
        for other in ("pandas_pandera", "polars_pandera"):
            assert f"bulkimport_stage faster than {other} on the {file} file" in goals
        assert f"bulkimport_commit at or below duckdb_merge (the same work) on the {file} file" in goals
    assert all(g["holds"] is not None for g in result["goals"][:-1]), "every goal but memory was measured"
    if "--png" in args:
        for file in ("clean", "messy"):
            assert (tmp_path / f"bench-{file}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert code == 0
    with capsys.disabled():
        print(f"\nbenchmark at {ROWS:,} rows, both files (every contender once) took {took:.1f}s")


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_latency_times_the_commands_with_a_warm_worker_and_reports_the_dashboard_figure(tmp_path, capsys, monkeypatch):
    # The browser test's figure, as tests/e2e/test_browser.py writes it (that test runs in the suite anyway).
    figure = tmp_path / "dashboard-latency.json"
    figure.write_text(json.dumps({"submit_to_staged_s": 2.25, "measured_at": "2026-01-02T03:04:05+00:00"}))
    monkeypatch.setattr(latency, "BROWSER_FIGURE", figure)
    out = tmp_path / "latency.json"
    args = ["--latency", "--latency-runs", "2", "--browser", "reuse", "--json", str(out), "--quiet"]
    code = main([*args, "--workdir", str(tmp_path / "work")])
    result = json.loads(out.read_text())
    measured = result["latency"]

    for command in ("help", "submit", "approve"):
        assert len(measured["commands"][command]["runs_s"]) == 2
        assert 0 < measured["commands"][command]["median_s"] < 120
    assert measured["commands"]["staging_paths"]
    assert measured["dashboard"]["status"] == "ok" and measured["dashboard"]["ran_now"] is False
    assert [g["limit"] for g in result["goals"]] == [0.2, 0.8, 0.8, 1.5]
    dashboard = result["goals"][-1]
    assert not dashboard["holds"] and dashboard["missed_by_s"] == 0.75

    printed = capsys.readouterr().out
    assert "measured at 2026-01-02T03:04:05+00:00" in printed
    assert "missed by 0.75 s (1.50x)" in printed
    assert code == 0


def test_a_missing_browser_figure_is_reported_not_invented(tmp_path, monkeypatch):
    monkeypatch.setattr(latency, "BROWSER_FIGURE", tmp_path / "none.json")
    assert latency.read_browser_figure() is None
    found = latency.goals(
        {
            "runs": 1,
            "commands": {k: {"median_s": 0.1} for k in ("help", "submit", "approve")},
            "dashboard": latency.browser_figure("skip", {}),
        }
    )
    assert [g["holds"] for g in found] == [True, True, True, None]
    assert found[-1]["note"] == "--browser skip"


def test_missed_goals_say_by_how_much():
    files = {
        name: {
            "rows": 1000,
            "contenders": {
                n: {"status": "ok", "seconds": s}
                for n, s in {
                    "baseline_duckdb": 1.0,
                    "bulkimport_stage": 3.0,
                    "pandas_pandera": 6.0,
                    "polars_pandera": 2.0,
                    "bulkimport_commit": 1.1,
                    "duckdb_merge": 1.0,
                }.items()
            },
        }
        for name in ("clean", "messy")
    }
    found = {g["goal"]: g for g in report.goals(files, {"ratio": 1.2, "rows": [1000, 5000]})}
    assert found["bulkimport_stage within 1.5x of baseline_duckdb on the clean file (1,000 rows)"]["missed_by"] == 2.0
    assert found["bulkimport_stage faster than pandas_pandera on the messy file"]["holds"]
    assert found["bulkimport_stage faster than polars_pandera on the messy file"]["missed_by"] == 1.5
    assert found["bulkimport_commit at or below duckdb_merge (the same work) on the clean file"]["missed_by"] == 1.1
    text = report.goals_text(list(found.values()))
    assert "missed by 2.00x" in text and "[HOLDS] stage peak memory" in text


def test_the_messy_file_has_every_kind_of_mess_and_its_bad_lines_are_where_those_rows_start(tmp_path):
    generated = generate_messy(tmp_path / "messy.csv", 3000)
    raw = generated.path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        codecs.decode(raw, "utf-8")
    text = raw.decode("cp1252")
    assert "€" in text and "’" in text and "ü" in text

    with open(generated.path, encoding="cp1252", newline="") as stream:
        reader = csv.reader(stream, delimiter=";")
        header = next(reader)
        rows, start = {}, reader.line_num + 1
        for cells in reader:
            rows[start] = dict(zip(header, cells, strict=True))
            start = reader.line_num + 1
    assert len(rows) == generated.rows
    assert any("\n" in row["name"] for row in rows.values()), "some names span lines"
    assert any(";" in row["name"] for row in rows.values()) and any('"' in row["name"] for row in rows.values())
    assert any("." in row["price"] and "," in row["price"] for row in rows.values()), "thousands and decimal comma"

    first_line_of = {}
    for line, row in rows.items():
        first_line_of.setdefault(row["sku"], line)
    for line, kind in generated.bad.items():
        row = rows[line]  # a bad line is the line a row starts on
        if kind == DUPLICATE:
            assert first_line_of[row["sku"]] < line and first_line_of[row["sku"]] in generated.first_copies
        elif kind == "price":
            assert not row["price"][:1].isdigit() or "O" in row["price"]
        elif kind == "stock":
            assert row["stock"].startswith("-")
        elif kind == "sku":
            assert row["sku"] != row["sku"].upper()
    assert generated.expected_bad_lines("every") == set(generated.bad) | set(generated.first_copies)


def test_the_polars_model_rejects_what_the_products_dataset_rejects():
    rows = [  # (sku, name, price, currency, stock, ean, launch_date), valid unless said
        ("AC-0001", "ok", "1.234,50", "EUR", "1", "4006381333931", "01.03.2024"),
        ("ac_0002", "pattern", "1,00", "EUR", "1", None, None),
        ("AC-0003", "x" * 201, "1,00", "EUR", "1", None, None),
        ("AC-0004", "negative", "-1,00", "EUR", "1", None, None),
        ("AC-0005", "three decimals", "1,005", "EUR", "1", None, None),
        ("AC-0006", "currency", "1,00", "XXX", "1", None, None),
        ("AC-0007", "stock", "1,00", "EUR", "-1", None, None),
        ("AC-0008", "check digit", "1,00", "EUR", "1", "4006381333932", None),
        ("AC-0009", "old", "1,00", "EUR", "1", None, "31.12.1899"),
        ("AC-0010", "no date", "1,00", "EUR", "1", None, "2024-03-01"),
        ("AC-0011", "not a number", "zehn", "EUR", "1", None, None),
        ("AC-0012", "not a whole number", "1,00", "EUR", "1.5", None, None),
        ("AC-0001", "repeated key", "2,00", "EUR", "1", None, None),
        ("AC-0013", "ok too", "0,99", "EUR", "0", None, "31.12.2100"),
    ]
    frame = pl.DataFrame(rows, schema=list(polars_products.Products.to_schema().columns), orient="row")
    frame, dates = polars_products.normalised(frame.with_row_index(polars_products.ROW), MESSY)
    valid, bad, _ = polars_products.validate(frame, dates)
    # pandera.polars reports every copy of a repeated key: the first AC-0001 too.
    assert sorted(bad) == list(range(13))
    assert valid["sku"].to_list() == ["AC-0013"]
    assert CLEAN.date_formats == ("%Y-%m-%d",)
