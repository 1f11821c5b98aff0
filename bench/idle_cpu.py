"""How much CPU the dashboard uses while someone just looks at it.

    .venv/bin/python -m bench.idle_cpu [--seconds 60] [--jobs 5] [--compare]

Starts what `bulkimport up` starts (a private redis-server, one worker, the dashboard with
the same command line) in a fresh BULKIMPORT_HOME, stages a few jobs, opens the Jobs page
in headless chromium (Debian's, through Playwright) as a logged-in user, lets it settle,
then reads the dashboard process's CPU time from /proc over ``--seconds`` and prints it as
a share of one core. ``--compare`` measures the same with Streamlit's defaults (file watcher
on, a full garbage collection after every run), as `streamlit run` behaves without the
project's settings. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BULKIMPORT_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "idle measurement"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / TICKS


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise SystemExit("the dashboard exited")
        time.sleep(0.2)
    raise SystemExit("the dashboard did not start")


def measure(seconds: float, jobs: int, watcher: bool) -> dict:
    from playwright.sync_api import sync_playwright

    from bulkimport import launcher, users, workflow

    home = Path(tempfile.mkdtemp(prefix="bulkimport-idle-"))
    redis_port, port = launcher.free_port(), launcher.free_port()
    os.environ.update(BULKIMPORT_HOME=str(home), REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    users.add("ana", "analyst", ["acme"], PASSWORD)
    started = [launcher.start_redis(redis_port, home / "redis")]
    try:
        logs = open(home / "processes.log", "wb")
        started.append(subprocess.Popen(launcher.worker_command(1, 2), stdout=logs, stderr=logs, cwd=REPO))
        command = launcher.dashboard_command(port)
        if watcher:  # Streamlit's defaults: watch every file under the working folder (.venv included), GC per run
            command += [
                "--server.fileWatcherType",
                "auto",
                "--server.runOnSave",
                "true",
                "--runner.postScriptGC",
                "true",
            ]
        dashboard = subprocess.Popen(command, stdout=logs, stderr=logs, cwd=REPO)
        started.append(dashboard)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, dashboard)
        for _ in range(jobs):
            job = workflow.submit(
                REPO / "examples" / "products.csv",
                dataset="products",
                brand="acme",
                user=users.get("ana"),
                allow_duplicate=True,
            )
            workflow.wait(job.id, timeout=300)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("textbox", name="User name").fill("ana")
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("link", name="Jobs").click()
            page.get_by_role("heading", name="Jobs").wait_for(timeout=60_000)
            page.wait_for_timeout(10_000)  # settle: imports, first renders, caches
            before, clock = cpu_seconds(dashboard.pid), time.monotonic()
            page.wait_for_timeout(seconds * 1000)
            used, elapsed = cpu_seconds(dashboard.pid) - before, time.monotonic() - clock
            browser.close()
        return {
            "file_watcher": watcher,
            "seconds": round(elapsed, 1),
            "cpu_seconds": round(used, 2),
            "share_of_one_core": round(used / elapsed, 4),
            "jobs_listed": jobs,
        }
    finally:
        launcher.stop(started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="how long to measure (default 60)")
    parser.add_argument("--jobs", type=int, default=5, help="jobs staged before measuring (default 5)")
    parser.add_argument("--compare", action="store_true", help="also measure with Streamlit's defaults")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"no chromium at {CHROMIUM}: apt-get install chromium (or set BULKIMPORT_CHROMIUM)", file=sys.stderr)
        return 2
    results = [measure(args.seconds, args.jobs, watcher=False)]
    if args.compare:
        results.append(measure(args.seconds, args.jobs, watcher=True))
    for result in results:
        if args.json:
            print(json.dumps(result))
        else:
            how = "with Streamlit's defaults" if result["file_watcher"] else "as `bulkimport up` runs it"
            print(
                f"dashboard, {how}, Jobs page open ({result['jobs_listed']} jobs): {result['cpu_seconds']} s of CPU "
                f"in {result['seconds']} s = {result['share_of_one_core']:.1%} of one core"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
