"""The benchmark itself runs: every contender, on a small file, agreeing on the bad rows.

Timing goals are printed by `python -m bench`, never asserted here.
"""

import importlib.util
import json
import time

import pytest

from bench.cli import main
from bench.contenders import CONTENDERS, Skipped, frictionless_binary

VALIDATORS = {"pandas_pandera", "frictionless", "bulkimport_stage", "bulkimport_e2e"}


def _frictionless_installed() -> bool:
    try:
        frictionless_binary()
    except Skipped:
        return False
    return True


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_benchmark_at_10k_rows_times_every_contender_and_they_agree_on_the_bad_rows(tmp_path, capsys):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    args = ["--rows", "10000", "--repeat", "1", "--json", str(out), "--workdir", str(tmp_path / "work"), "--quiet"]
    if importlib.util.find_spec("matplotlib"):
        args += ["--png", str(png)]
    started = time.monotonic()
    code = main(args)
    took = time.monotonic() - started
    result = json.loads(out.read_text())
    contenders = result["contenders"]

    assert list(contenders) == list(CONTENDERS)
    for name, entry in contenders.items():
        assert entry["status"] in ("ok", "skipped"), f"{name} {entry['status']}: {entry.get('reason')}"
        if entry["status"] == "skipped":
            assert entry["reason"], f"{name} was skipped without a reason"
        else:
            assert entry["seconds"] > 0 and entry["peak_rss_mb"] > 0 and entry["rows_per_s"] > 0
    expected_ok = set(CONTENDERS) - ({"frictionless"} if not _frictionless_installed() else set())
    assert {n for n, e in contenders.items() if e["status"] == "ok"} == expected_ok
    if "frictionless" not in expected_ok:
        assert "not installed" in contenders["frictionless"]["reason"]

    # Every validating contender found exactly the 100 generated bad rows (1% of 10,000).
    assert result["bad_rows_expected"] == 100
    agreement = result["agreement"]
    assert agreement["all_agree"], agreement
    assert set(agreement["contenders"]) == VALIDATORS & expected_ok
    assert all(c["found"] == 100 for c in agreement["contenders"].values())
    assert contenders["bulkimport_stage"]["extra"]["rows_valid"] == 9_900
    # Our commit and a plain MERGE of the same rows leave the same production table.
    assert result["commit_agreement"]["same_production"]
    assert contenders["bulkimport_commit"]["extra"]["rows_inserted"] > 0
    assert contenders["bulkimport_commit"]["extra"]["rows_updated"] > 0

    printed = capsys.readouterr().out
    assert "bulkimport_stage" in printed and "goals (printed, not tested)" in printed
    assert [g["goal"] for g in result["goals"]][0] == "bulkimport_stage within 1.5x of baseline_duckdb"
    if "--png" in args:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert code == 0
    with capsys.disabled():
        print(f"\nbenchmark at 10,000 rows (every contender once) took {took:.1f}s")
