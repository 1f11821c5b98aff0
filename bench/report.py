"""Turn the runs into a table per file, the agreement checks, the goals and a chart."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.contenders import CONTENDERS
from bench.generate import Generated

STAGE_LIMIT = 1.5  # bulkimport_stage / baseline_duckdb, on the clean file
COMMIT_LIMIT = 1.0  # bulkimport_commit / duckdb_merge doing the same work
MEMORY_LIMIT = 1.5  # stage peak at 5M rows / at 1M rows
OTHER_VALIDATORS = ("pandas_pandera", "polars_pandera")  # bulkimport_stage must beat these on both files


def summarise(name: str, runs: list[dict], rows: int) -> dict:
    """One contender's runs -> status, median seconds, rows/s, peak RSS (the highest run's)."""
    if not runs:
        return {"status": "skipped", "reason": "not run"}
    bad = [r for r in runs if r["status"] != "ok"]
    if bad:
        return {"status": bad[0]["status"], "reason": bad[0].get("reason", ""), "runs": len(runs)}
    seconds = statistics.median(r["seconds"] for r in runs)
    found = runs[0]["bad_lines"]
    steady = all(r["bad_lines"] == found for r in runs)
    return {
        "status": "ok",
        "seconds": round(seconds, 3),
        "seconds_runs": [round(r["seconds"], 3) for r in runs],
        "rows_per_s": round(rows / seconds) if seconds else None,
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "peak_rss_mb_runs": [round(r["peak_rss_mb"], 1) for r in runs],
        "validates": name in CONTENDERS and CONTENDERS[name].validates,
        "bad_lines_found": None if found is None else len(found),
        "same_bad_lines_every_run": steady,
        "extra": runs[-1].get("extra", {}),
        "_bad_lines": found,
    }


def add_ratios(contenders: dict[str, dict]) -> None:
    base = contenders.get("baseline_duckdb", {}).get("seconds")
    for entry in contenders.values():
        if entry.get("status") == "ok" and base:
            entry["ratio_to_baseline"] = round(entry["seconds"] / base, 2)


def agreement(contenders: dict[str, dict], generated: Generated) -> dict:
    """Every validating contender that ran must find exactly the generated bad lines, duplicate keys
    counted by its own rule (every copy after the first, or every copy)."""
    by = {}
    for name, entry in contenders.items():
        found = entry.pop("_bad_lines", None)
        if entry.get("status") != "ok" or found is None:
            continue
        rule = CONTENDERS[name].duplicates
        expected = generated.expected_bad_lines(rule)
        found = set(found)
        missing, extra = sorted(expected - found), sorted(found - expected)
        agrees = not missing and not extra and entry["same_bad_lines_every_run"]
        entry["agrees"] = agrees
        by[name] = {
            "agrees": agrees,
            "duplicates": rule,
            "expected": len(expected),
            "found": len(found),
            "missing": len(missing),
            "extra": len(extra),
            "missing_sample": missing[:10],
            "extra_sample": extra[:10],
        }
    return {
        "expected_bad_lines": len(generated.bad),
        "first_copies_of_duplicates": len(generated.first_copies),
        "all_agree": bool(by) and all(v["agrees"] for v in by.values()),
        "contenders": by,
    }


def commit_agreement(contenders: dict[str, dict]) -> dict | None:
    """Our commit and the MERGE doing the same work must leave the same production table and ledger counts."""
    ours, plain = contenders.get("bulkimport_commit", {}), contenders.get("duckdb_merge", {})
    if ours.get("status") != "ok" or plain.get("status") != "ok":
        return None
    keys = ("production_rows", "production_hash", "ledger")
    same = all(ours["extra"].get(k) == plain["extra"].get(k) for k in keys)
    return {
        "same_production": same,
        **{f"bulkimport_commit_{k}": ours["extra"].get(k) for k in keys},
        **{f"duckdb_merge_{k}": plain["extra"].get(k) for k in keys},
    }


def paths_text(contenders: dict[str, dict]) -> list[str]:
    """Which staging path each of our staging contenders took, and why the careful one where it did."""
    lines = []
    for name in ("bulkimport_stage", "bulkimport_careful", "bulkimport_e2e"):
        extra = contenders.get(name, {}).get("extra", {})
        if contenders.get(name, {}).get("status") == "ok" and "path" in extra:
            because = f" because: {extra['careful_because']}" if extra.get("careful_because") else ""
            lines.append(f"{name}: {extra['path']} path{because}")
    return lines


# ---------------------------------------------------------------- goals


def _ratio_goal(goal: str, ratio: float | None, limit: float, note: str = "") -> dict:
    if ratio is None:
        return {"goal": goal, "holds": None, "note": note or "not measured"}
    return {
        "goal": goal,
        "holds": ratio <= limit,
        "ratio": round(ratio, 2),
        "limit": limit,
        "missed_by": None if ratio <= limit else round(ratio / limit, 2),
    }


def _seconds(contenders: dict[str, dict], name: str) -> float | None:
    entry = contenders.get(name, {})
    return entry.get("seconds") if entry.get("status") == "ok" else None


def _why_not(files: dict[str, dict], file: str, *names: str) -> str:
    if file not in files:
        return f"the {file} file was not run (--file)"
    missing = [n for n in names if _seconds(files[file]["contenders"], n) is None]
    reasons = [f"{n}: {files[file]['contenders'].get(n, {}).get('reason', 'not run')}" for n in missing]
    return "did not run: " + "; ".join(reasons)


def goals(files: dict[str, dict], memory: dict | None) -> list[dict]:
    """Issue 13's goals for staging, committing and memory, each with whether it holds and by how much it misses."""
    found = []
    clean = files.get("clean", {}).get("contenders", {})
    stage, base = _seconds(clean, "bulkimport_stage"), _seconds(clean, "baseline_duckdb")
    rows = files.get("clean", {}).get("rows")
    found.append(
        _ratio_goal(
            f"bulkimport_stage within {STAGE_LIMIT}x of baseline_duckdb on the clean file"
            + (f" ({rows:,} rows)" if rows else ""),
            stage / base if stage and base else None,
            STAGE_LIMIT,
            _why_not(files, "clean", "bulkimport_stage", "baseline_duckdb"),
        )
    )
    for file in ("clean", "messy"):
        contenders = files.get(file, {}).get("contenders", {})
        ours = _seconds(contenders, "bulkimport_stage")
        for other in OTHER_VALIDATORS:
            theirs = _seconds(contenders, other)
            entry = {"goal": f"bulkimport_stage faster than {other} on the {file} file"}
            if ours and theirs:
                entry.update(
                    holds=ours < theirs,
                    ratio=round(ours / theirs, 2),
                    missed_by=None if ours < theirs else round(ours / theirs, 2),
                )
            else:
                entry.update(holds=None, note=_why_not(files, file, "bulkimport_stage", other))
            found.append(entry)
    for file in ("clean", "messy"):
        contenders = files.get(file, {}).get("contenders", {})
        commit, merge = _seconds(contenders, "bulkimport_commit"), _seconds(contenders, "duckdb_merge")
        found.append(
            _ratio_goal(
                f"bulkimport_commit at or below duckdb_merge (the same work) on the {file} file",
                commit / merge if commit and merge else None,
                COMMIT_LIMIT,
                _why_not(files, file, "bulkimport_commit", "duckdb_merge"),
            )
        )
    found.append(memory_goal(memory))
    return found


def memory_goal(memory: dict | None) -> dict:
    goal = f"stage peak memory at the larger file no more than {MEMORY_LIMIT}x its peak at the smaller"
    if memory and memory.get("ratio"):
        sizes = " / ".join(f"{r:,}" for r in memory["rows"])
        return {**_ratio_goal(f"{goal} ({sizes} rows)", memory["ratio"], MEMORY_LIMIT), "rows": memory["rows"]}
    return {"goal": goal, "holds": None, "note": "not measured in this run: python -m bench --memory-check"}


def goals_text(found: list[dict]) -> str:
    lines = ["goals (printed, not tested):"]
    for g in found:
        if g["holds"] is None:
            lines.append(f"  [ -- ] {g['goal']}: {g.get('note', 'not measured')}")
            continue
        mark = "HOLDS" if g["holds"] else "MISSED"
        detail = g.get("detail") or f"ratio {g['ratio']:.2f}" + (f" (limit {g['limit']})" if "limit" in g else "")
        if g.get("missed_by") and not g.get("detail"):
            detail += f", missed by {g['missed_by']:.2f}x"
        lines.append(f"  [{mark}] {g['goal']}: {detail}")
    return "\n".join(lines)


# ---------------------------------------------------------------- output


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def table(contenders: dict[str, dict]) -> str:
    head = (
        f"{'contender':<19} {'seconds':>9} {'rows/s':>11} {'peak RSS MB':>12} {'x baseline':>11} "
        f"{'bad rows':>9} {'agrees':>7}"
    )
    lines = [head, "-" * len(head)]
    for name, e in contenders.items():
        if e.get("status") != "ok":
            lines.append(f"{name:<19} {e.get('status', '?')}: {e.get('reason', '')}")
            continue
        agrees = "-" if "agrees" not in e else ("yes" if e["agrees"] else "NO")
        lines.append(
            f"{name:<19} {e['seconds']:>9.2f} {_fmt(e['rows_per_s'], ',d'):>11} "
            f"{e['peak_rss_mb']:>12.0f} {_fmt(e.get('ratio_to_baseline'), '.2f'):>11} "
            f"{_fmt(e['bad_lines_found'], ',d'):>9} {agrees:>7}"
        )
    return "\n".join(lines)


def chart(contenders: dict[str, dict], title: str, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ran = {n: e for n, e in contenders.items() if e.get("status") == "ok"}
    names = list(ran)[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 1.8), sharey=True)
    colours = ["tab:orange" if n.startswith("bulkimport") else "tab:gray" for n in names]
    seconds = [ran[n]["seconds"] for n in names]
    left.barh(names, seconds, color=colours)
    left.set_xscale("log")
    left.set_xlim(min(seconds) / 1.5, max(seconds) * 4)  # room for the labels
    left.set_xlabel("seconds (median, log scale)")
    for y, s in enumerate(seconds):
        left.text(s, y, f" {s:.2f}s", va="center", fontsize=8)
    peaks = [ran[n]["peak_rss_mb"] for n in names]
    right.barh(names, peaks, color=colours)
    right.set_xlim(0, max(peaks) * 1.18)
    right.set_xlabel("peak RSS of the working process (MB)")
    for y, p in enumerate(peaks):
        right.text(p, y, f" {p:.0f}", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
