"""`python -m bench`: time bulkimport against DuckDB's own load and the usual alternatives.

Every contender runs in a fresh process (``python -m bench.run_one``) on the
same generated file, ``--repeat`` times, interleaved (one round of every
contender, then the next round), so background load hits them alike; then the
same on the next file (clean, messy). ``--latency`` times small jobs instead.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import latency as bench_latency
from bench import profile as bench_profile
from bench import report
from bench.contenders import CONTENDERS
from bench.generate import FILES, FileKind, Generated, generate_file
from bench.measure import REPO

# Settings that would point a contender at someone else's home, lake or Redis.
_SCRUBBED = (
    "BULKIMPORT_HOME",
    "REDIS_URL",
    "BULKIMPORT_REDIS_PORT",
    "BULKIMPORT_DB_URL",
    "BULKIMPORT_LAKE_CATALOG",
    "BULKIMPORT_LAKE_DATA",
    "BULKIMPORT_USERS_FILE",
    "BULKIMPORT_DATASETS",
    "BULKIMPORT_TOKEN",
    "BULKIMPORT_USER",
    "BULKIMPORT_FAST_PATH",  # bulkimport_stage runs with the defaults, bulkimport_careful sets it itself
)


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["BULKIMPORT_HOME"] = str(work / "default-home")  # never ~/.bulkimport
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_step(
    name: str,
    csv: Path,
    kind: FileKind,
    work: Path,
    tag: str,
    profile: Path | None = None,
    wrap: list[str] | None = None,
) -> dict:
    """One contender, once, in a fresh process; its outcome (status, seconds, peak, bad lines).

    ``wrap`` prefixes the command (a profiler that starts the process).
    """
    out = work / "results" / f"{name}-{tag}.json"
    log = work / "logs" / f"{name}-{tag}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bench.run_one", name, "--file", str(csv), "--kind", kind.name]
    command += ["--work", str(work), "--out", str(out)]
    if profile:
        command += ["--profile", str(profile)]
    command = [*(wrap or []), *command]
    with open(log, "w") as stream:
        done = subprocess.run(
            command, cwd=REPO, env=_env(work), stdout=stream, stderr=subprocess.STDOUT, timeout=6 * 3600
        )
    if not out.exists():
        tail = log.read_text()[-1500:]
        return {"status": "failed", "reason": f"exit {done.returncode} without a result; {log}:\n{tail}"}
    result = json.loads(out.read_text())
    if result["status"] == "failed":
        result["reason"] += f" (log: {log})"
    return result


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _versions() -> dict:
    found = {"python": platform.python_version()}
    for package in ("duckdb", "pandas", "pandera", "polars", "pyarrow", "frictionless", "dramatiq"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def _machine() -> dict:
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "memory_gib": memory,
        "load_average_at_start": list(os.getloadavg()),
        **_versions(),
        **_code(),
    }


def _code() -> dict:
    """Which bulkimport was measured: the commit, and files changed on top of it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "bulkimport").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or None, "bulkimport_uncommitted": changed}


def make_file(kind: FileKind, work: Path, rows: int, bad_share: float, seed: int, quiet: bool) -> Generated:
    csv = work / f"products-{kind.name}-{rows}.csv"
    started = time.perf_counter()
    generated = generate_file(kind, csv, rows, bad_share, seed)
    _say(
        f"generated {csv.name}: {rows:,} rows, {len(generated.bad):,} bad ({dict(Counter(generated.bad.values()))}), "
        f"{csv.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.1f}s",
        quiet,
    )
    return generated


def benchmark(
    kind: FileKind,
    rows: int,
    repeat: int,
    bad_share: float,
    seed: int,
    work: Path,
    only: list[str] | None = None,
    quiet: bool = False,
) -> dict:
    """Generate one file, run every contender on it ``repeat`` times, and summarise."""
    work = work / kind.name  # each file's lakes and commit template apart
    generated = make_file(kind, work, rows, bad_share, seed, quiet)
    csv = generated.path
    names = [n for n in CONTENDERS if not only or n in only]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    given_up: dict[str, dict] = {}
    prepared = None
    for round_ in range(repeat):
        for name in names:
            if name in given_up:
                continue
            if CONTENDERS[name].needs_staged_job and prepared is None:
                result = {"status": "skipped", "reason": "needs a staged job from bulkimport_stage, which did not run"}
            else:
                _say(f"{kind.name} file, round {round_ + 1}/{repeat}: {name} ...", quiet)
                result = run_step(name, csv, kind, work, f"{rows}-{round_}")
            runs[name].append(result)
            if result["status"] != "ok":
                given_up[name] = result
                _say(f"  {name} {result['status']}: {result.get('reason', '')}", quiet)
                continue
            _say(f"  {result['seconds']:.2f}s, peak {result['peak_rss_mb']:.0f} MB", quiet)
            if name == "bulkimport_stage" and prepared is None:
                prepared = _prepare_commit(csv, kind, work, rows, quiet)
    contenders = {n: report.summarise(n, runs[n], rows) for n in names}
    report.add_ratios(contenders)
    agreed = report.agreement(contenders, generated)
    return {
        "file": kind.name,
        "dialect": {
            "delimiter": kind.delimiter,
            "encoding": kind.encoding,
            "decimal_comma": kind.decimal_comma,
            "date_formats": list(kind.date_formats),
        },
        "rows": rows,
        "lines": _lines(csv),
        "repeat": repeat,
        "bad_share": bad_share,
        "seed": seed,
        "file_bytes": csv.stat().st_size,
        "bad_rows_expected": len(generated.bad),
        "bad_kinds": dict(Counter(generated.bad.values())),
        "commit_setup": prepared,
        "contenders": contenders,
        "agreement": agreed,
        "commit_agreement": report.commit_agreement(contenders),
    }


def _lines(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(block.count(b"\n") for block in iter(lambda: stream.read(1 << 20), b""))


def _prepare_commit(csv: Path, kind: FileKind, work: Path, rows: int, quiet: bool) -> dict | None:
    """Seed production with half the keys and approve the staged job; keep that lake as the commits' start."""
    result = run_step("prepare_commit", csv, kind, work, f"{rows}")
    if result["status"] != "ok":
        _say(f"  preparing the commit failed: {result.get('reason')}", quiet)
        return None
    template = work / "commit-template"
    shutil.rmtree(template, ignore_errors=True)
    shutil.copytree(work / "stage-home", template)
    _say(f"  commit set-up: {result['extra']}", quiet)
    return result["extra"]


def file_text(result: dict, machine: dict) -> str:
    """One file's table and what goes with it: agreement, the staging paths, the commit comparison."""
    d = result["dialect"]
    lines = [
        f"{result['file']} file: products CSV, {result['rows']:,} rows on {result['lines']:,} lines "
        f"({result['file_bytes'] / 1e6:.0f} MB, {d['encoding']}, '{d['delimiter']}'), "
        f"{result['bad_rows_expected']:,} bad {result['bad_kinds']}; median of {result['repeat']}; "
        f"{machine['cpus']} cores, load {machine['load_average_at_start'][0]:.2f}",
        report.table(result["contenders"]),
    ]
    agreed = result["agreement"]
    if agreed["all_agree"]:
        every_copy = [n for n, v in agreed["contenders"].items() if v["duplicates"] == "every"]
        also = (
            f" ({', '.join(every_copy)} also the {agreed['first_copies_of_duplicates']:,} first copies of repeated "
            "keys: it rejects every copy)"
            if every_copy and agreed["first_copies_of_duplicates"]
            else ""
        )
        lines.append(
            f"bad rows: every validating contender that ran found exactly the {agreed['expected_bad_lines']:,} "
            f"generated bad lines{also}"
        )
    else:
        lines.append("bad rows: contenders DISAGREE: " + json.dumps(agreed["contenders"]))
    lines += report.paths_text(result["contenders"])
    if result["commit_agreement"]:
        same = result["commit_agreement"]["same_production"]
        lines.append(
            "commit: bulkimport_commit and duckdb_merge leave "
            + ("the same production table and ledger counts" if same else "DIFFERENT production tables or ledgers")
        )
    return "\n".join(lines)


def memory_check(
    kind: FileKind, rows_list: list[int], bad_share: float, seed: int, work: Path, quiet: bool = False
) -> dict:
    """bulkimport_stage once per size, each in a fresh process: peak RSS and how it grows."""
    sizes = []
    for rows in rows_list:
        csv = make_file(kind, work, rows, bad_share, seed, quiet).path
        _say(f"memory check: bulkimport_stage at {rows:,} rows of the {kind.name} file ...", quiet)
        result = run_step("bulkimport_stage", csv, kind, work, f"memory-{rows}")
        csv.unlink()
        if result["status"] != "ok":
            sizes.append({"rows": rows, "status": result["status"], "reason": result.get("reason")})
            continue
        sizes.append(
            {
                "rows": rows,
                "status": "ok",
                "seconds": round(result["seconds"], 2),
                "rows_per_s": round(rows / result["seconds"]),
                "peak_rss_mb": round(result["peak_rss_mb"], 1),
            }
        )
        _say(f"  {result['seconds']:.1f}s, peak {result['peak_rss_mb']:.0f} MB", quiet)
    ok = [s for s in sizes if s["status"] == "ok"]
    ratio = ok[-1]["peak_rss_mb"] / ok[0]["peak_rss_mb"] if len(ok) >= 2 else None
    return {
        "file": kind.name,
        "sizes": sizes,
        "rows": [s["rows"] for s in sizes],
        "ratio": None if ratio is None else round(ratio, 2),
    }


def memory_text(memory: dict) -> str:
    lines = [f"memory check (bulkimport_stage, {memory['file']} file, fresh process per size):"]
    for s in memory["sizes"]:
        if s["status"] != "ok":
            lines.append(f"  {s['rows']:>11,} rows: {s['status']}: {s.get('reason')}")
        else:
            lines.append(
                f"  {s['rows']:>11,} rows: peak {s['peak_rss_mb']:.0f} MB, {s['seconds']:.1f}s "
                f"({s['rows_per_s']:,} rows/s)"
            )
    if memory["ratio"] is not None:
        lines.append(f"  peak ratio {memory['rows'][-1]:,} / {memory['rows'][0]:,} rows: {memory['ratio']:.2f}x")
    return "\n".join(lines)


def profile(
    kind: FileKind,
    rows: int,
    bad_share: float,
    seed: int,
    work: Path,
    target: Path,
    profiler: str,
    quiet: bool = False,
) -> dict:
    """bulkimport_stage once under a profiler: pyinstrument (in the process) or py-spy (from outside)."""
    csv = make_file(kind, work, rows, bad_share, seed, quiet).path
    _say(f"profiling bulkimport_stage at {rows:,} rows ({profiler}) ...", quiet)
    if profiler == "pyinstrument":
        result = run_step("bulkimport_stage", csv, kind, work, f"profile-{rows}", profile=target)
        written = [target.with_suffix(s) for s in (".txt", ".flat.txt", ".html")]
    else:
        spy = bench_profile.py_spy_binary()
        if not spy:
            return {"status": "skipped", "reason": "py-spy is not installed (pip install py-spy)"}
        raw, rate = target.with_suffix(".raw"), 100
        target.parent.mkdir(parents=True, exist_ok=True)
        wrap = [spy, "record", "--format", "raw", "--rate", str(rate), "--output", str(raw), "--"]
        result = run_step("bulkimport_stage", csv, kind, work, f"profile-{rows}", wrap=wrap)
        if result["status"] == "ok":
            summary = target.with_suffix(".spy.txt")
            summary.write_text(bench_profile.summarise(raw, rate))
            written = [raw, summary]
            print(summary.read_text())
    if result["status"] == "ok":
        _say(f"  {result['seconds']:.1f}s under the profiler; wrote {', '.join(map(str, written))}", quiet)
    return result


def _rows(text: str) -> int:
    return int(text.replace("_", "").replace(",", ""))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=_rows, default=1_000_000, help="data rows in the generated file (default 1,000,000)")
    p.add_argument("--repeat", type=int, default=3, help="runs per contender; the table shows the median (default 3)")
    p.add_argument(
        "--file",
        choices=[*FILES, "both"],
        help="which generated file: clean (UTF-8, ',', one line per row) or messy (cp1252, ';', decimal commas, "
        "values over lines, duplicate keys); default both (--memory-check and --profile: clean)",
    )
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--png", type=Path, help="draw a bar chart per file here (PATH-clean.png, PATH-messy.png)")
    p.add_argument("--bad-share", type=float, default=0.01, help="share of bad rows (default 0.01)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--only", action="append", choices=list(CONTENDERS), help="run only these contenders")
    p.add_argument(
        "--memory-check",
        action="store_true",
        help="instead: bulkimport_stage at --memory-rows sizes, peak RSS of each and their ratio",
    )
    p.add_argument("--memory-rows", default="1000000,5000000", help="sizes for --memory-check (default 1M,5M)")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="PATH",
        help="instead: profile bulkimport_stage once at --rows (pyinstrument: PATH.txt/.flat.txt/.html; "
        "py-spy: PATH.raw and the summary PATH.spy.txt)",
    )
    p.add_argument("--profiler", choices=("pyinstrument", "py-spy"), default="pyinstrument")
    p.add_argument(
        "--latency",
        action="store_true",
        help="instead: small-job latency (--help, submit --wait, approve --wait, the dashboard's submit to staged)",
    )
    p.add_argument("--latency-runs", type=int, default=10, help="runs of each command for --latency (default 10)")
    p.add_argument(
        "--browser",
        choices=("run", "reuse", "skip"),
        default="run",
        help="--latency: run the browser test for the dashboard's figure (default), reuse the figure it last "
        "wrote to test-artifacts/ (run it if there is none), or skip it",
    )
    p.add_argument("--workdir", type=Path, help="keep files, lakes and logs here (default: a temporary folder)")
    p.add_argument("--quiet", action="store_true", help="no progress on standard error")
    return p


def _charts(files: dict[str, dict], target: Path) -> list[Path]:
    drawn = []
    for name, result in files.items():
        path = target.with_name(f"{target.stem}-{name}{target.suffix or '.png'}")
        title = f"bulkimport benchmark: {name} products CSV, {result['rows']:,} rows"
        report.chart(result["contenders"], title, path)
        drawn.append(path)
    return drawn


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bulkimport-bench-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    single = FILES[args.file] if args.file in FILES else FILES["clean"]  # for the modes that take one file
    result: dict = {"machine": _machine(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        if args.latency:
            found = bench_latency.latency(work, args.latency_runs, args.browser, _env(work), args.quiet)
            result["latency"] = found
            result["goals"] = bench_latency.goals(found)
            print(bench_latency.text(found))
            print(report.goals_text(result["goals"]))
            ok = found["dashboard"]["status"] != "failed"
        elif args.profile:
            result["profile"] = profile(
                single, args.rows, args.bad_share, args.seed, work, args.profile.resolve(), args.profiler, args.quiet
            )
            print(json.dumps(result["profile"].get("extra", result["profile"]), indent=1))
            ok = result["profile"]["status"] == "ok"
        elif args.memory_check:
            sizes = [_rows(s) for s in args.memory_rows.split(",") if s.strip()]
            memory = memory_check(single, sizes, args.bad_share, args.seed, work, args.quiet)
            result["memory_check"] = memory
            result["goals"] = [report.memory_goal(memory)]
            print(memory_text(memory))
            print(report.goals_text(result["goals"]))
            ok = all(s["status"] == "ok" for s in memory["sizes"])
        else:
            kinds = list(FILES.values()) if args.file in (None, "both") else [FILES[args.file]]
            files = {}
            for kind in kinds:
                files[kind.name] = benchmark(
                    kind, args.rows, args.repeat, args.bad_share, args.seed, work, args.only, args.quiet
                )
                print(file_text(files[kind.name], result["machine"]) + "\n")
            result["files"] = files
            result["goals"] = report.goals(files, None)
            print(report.goals_text(result["goals"]))
            if args.png:
                print("charts: " + ", ".join(map(str, _charts(files, args.png))))
            ok = all(
                f["agreement"]["all_agree"]
                and all(e["status"] != "failed" for e in f["contenders"].values())
                and (f["commit_agreement"] is None or f["commit_agreement"]["same_production"])
                for f in files.values()
            )
    finally:
        result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        result["machine"]["load_average_at_end"] = list(os.getloadavg())
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1, default=str))
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1
