"""The dashboard in a real headless browser: real Redis, a real worker, the real Streamlit server.

What AppTest cannot show: the login form, a file chosen through the page's own file
input, and a status that changes on screen by itself. Uses Debian's chromium through
Playwright (never `playwright install`). Screenshots of every step go to test-artifacts/.
Without chromium the test skips locally and fails in CI (CI set).
"""

from __future__ import annotations

import re

import pytest

from bulkimport import api, registry, ui, workflow
from bulkimport.datasets import get_dataset
from tests.conftest import EXAMPLE, PASSWORD, REPO, who, write_csv

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 60_000


def settle(page) -> None:
    """Until the script run is over and no element from the previous run is left (Streamlit fades those)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-stale=\"true\"]')"
    )
    page.wait_for_timeout(500)  # tables draw on a canvas a moment later


def shot(page, name: str) -> None:
    page.mouse.move(0, 0)  # no tooltip left over from the last click
    settle(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)


def log_in(browser, url: str, name: str, width: int = 1400):
    """A fresh browser context (its own session) logged in as ``name`` at ``url``."""
    page = browser.new_context(viewport={"width": width, "height": 1800}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text(f"{name} ·").wait_for()
    return page


def badge(page, status: str):
    """The job's status badge (an icon's name, then the status; tables draw on a canvas, badges are text)."""
    return page.locator(".stMarkdownBadge", has_text=re.compile(rf"\b{status}$")).first


def failure_shots(browser) -> None:
    """A screenshot of every open page, to see what the browser saw when a step failed."""
    ARTIFACTS.mkdir(exist_ok=True)
    for i, context in enumerate(browser.contexts):
        for j, page in enumerate(context.pages):
            page.screenshot(path=str(ARTIFACTS / f"browser-failed-{i}-{j}.png"), full_page=True)


def test_upload_in_the_browser_watch_it_stage_then_another_user_approves_it(browser, worker, dashboard):
    try:
        upload_stage_approve(browser, dashboard)
    except BaseException:
        failure_shots(browser)
        raise


def warm_up_the_worker() -> None:
    """One job of a brand the test's users do not see, so the timed upload meets a warm worker
    (its lake connection open, the schema compiled), as `python -m bench --latency` times the CLI."""
    warm = api.submit(EXAMPLE, dataset="products", brand="warmup")
    assert workflow.wait(warm.id, timeout=120).status == "staged"


def upload_stage_approve(browser, dashboard: str) -> None:
    warm_up_the_worker()
    ana = log_in(browser, dashboard, "ana")
    ana.get_by_role("heading", name="Upload a CSV").wait_for()
    shot(ana, "1-logged-in")

    ana.locator("input[type='file']").set_input_files(str(EXAMPLE))
    ana.get_by_text("Read products.csv with encoding").wait_for()
    ana.get_by_text("First rows as the worker will read them").wait_for()
    shot(ana, "2-preview")

    ana.evaluate("window.__no_reload = true")  # gone if the page reloads
    start_submit_clock(ana)
    ana.get_by_role("button", name="Submit for validation").click()
    ana.get_by_text("is queued for validation").wait_for()
    [job] = [j for j in registry.list_jobs() if j.brand != "warmup"]
    assert (job.created_by, job.brand, job.file_name) == ("ana", "acme", "products.csv")
    shot(ana, "3-submitted")

    badge(ana, "staged").wait_for()
    assert ana.evaluate("window.__no_reload === true"), "the status changed on screen without a reload"
    record_submit_to_staged(ana)
    assert registry.get(job.id).status == "staged"
    shot(ana, "4-staged")

    olga = log_in(browser, f"{dashboard}/review?job={job.id}", "olga")  # a deep link survives the login
    olga.get_by_role("heading", name="Review").wait_for()
    olga.get_by_text("Rows to insert").wait_for()
    shot(olga, "5-review")
    olga.get_by_role("button", name="Approve and commit to production").click()
    olga.get_by_text("Approved by olga").first.wait_for()
    badge(olga, "committed").wait_for()
    shot(olga, "6-committed")

    assert registry.get(job.id).status == "committed"
    assert api.production("products", "acme").count("*").fetchone()[0] == 7


# ---------------------------------------------------------------- the dashboard as people use it all day

DAMAGED = (
    "sku,name,price,currency,stock,ean,launch_date\n"
    "ACME-3001,Knock box,-3.00,EUR,40,,\n"  # a bad value: fixed by hand in the grid
    "ACME-3002,Cup, large,4.50,EUR,10,,\n"  # a comma in an unquoted name: one repair suggestion
    "ACME-3003,Pot,4.00,EUR,5,,\n"
)
HEADER_PX, ROW_PX = 35, 35  # the grid's header and row heights (Streamlit's defaults)
GRID_COLUMNS = [*ui.FIX_LEAD, *get_dataset("products").columns, *ui.FIX_TAIL]


def cell_centre(grid, row: int, column: int) -> tuple[float, float]:
    """Where a cell of the fixing grid is drawn (its canvas has no elements to click; widths are fixed)."""
    widths = [ui.FIX_WIDTHS.get(name, ui.FIX_CELL_PX) for name in GRID_COLUMNS]
    box = grid.bounding_box()
    return box["x"] + sum(widths[:column]) + widths[column] / 2, box["y"] + HEADER_PX + ROW_PX * (row + 0.5)


def grid_type(page, grid, row: int, column: int, text: str) -> None:
    """Type a new value into a cell as a person does: double-click it, write, confirm with Enter.

    A double-click that lands while the page redraws opens no editor: then it is done again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    editor = page.locator("textarea.gdg-input")
    for _ in range(5):
        settle(page)
        page.mouse.dblclick(*cell_centre(grid, row, column))
        try:
            editor.wait_for(timeout=3_000)
            break
        except PlaywrightTimeout:
            continue
    editor.fill(text)
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)


def grid_tick(page, grid, row: int, column: int) -> None:
    """Tick a checkbox cell with one click (again if the click landed while the page redrew: each click toggles)."""
    for _ in range(3):
        settle(page)
        page.mouse.click(*cell_centre(grid, row, column))
        for _ in range(30):
            if grid_text(grid, row, column) == "true":
                settle(page)
                return
            page.wait_for_timeout(100)
    raise AssertionError(f"could not tick row {row}, column {column} of the grid")


def grid_text(grid, row: int, column: int) -> str:
    """A cell's text, from the accessible table the grid keeps next to its canvas."""
    return grid.locator(f"td#glide-cell-{column}-{row}").text_content()


def metric(page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).first


def test_fix_a_rejected_row_in_the_grid_and_accept_a_repair_suggestion(browser, worker, dashboard, tmp_path):
    try:
        fix_in_the_grid(browser, dashboard, tmp_path)
    except BaseException:
        failure_shots(browser)
        raise


def fix_in_the_grid(browser, dashboard: str, tmp_path) -> None:
    path = tmp_path / "damaged.csv"
    path.write_text(DAMAGED)
    job = workflow.submit(path, dataset="products", brand="acme", user=who("ana"))
    assert workflow.wait(job.id, timeout=120).status == "staged"

    ana = log_in(browser, f"{dashboard}/review?job={job.id}", "ana", width=2000)  # the whole grid in view
    ana.get_by_text("Fix rejected rows here").wait_for()
    grid = ana.get_by_test_id("stDataFrameResizable").first
    price, accept = GRID_COLUMNS.index("price"), GRID_COLUMNS.index("accept")
    assert [grid_text(grid, r, 0) for r in (0, 1)] == ["2", "3"]
    assert grid_text(grid, 0, price) == "-3.00"  # (the grid's accessible table holds only the columns in view)
    ana.get_by_text("Repair suggestions (1)").wait_for()
    shot(ana, "7-fix-grid")
    # The README's picture: the grid, its buttons and the suggestion, as a person sees them.
    top = grid.bounding_box()
    bottom = ana.get_by_text("Every problem, one row per failing cell").bounding_box()
    ana.screenshot(
        path=str(ARTIFACTS / "browser-fix-grid-only.png"),
        clip={
            "x": top["x"] - 10,
            "y": top["y"] - 90,
            "width": top["width"] + 20,
            "height": bottom["y"] - top["y"] + 80,
        },
    )

    grid_type(ana, grid, 0, price, "3.00")  # line 2
    settle(ana)
    assert grid_text(grid, 0, price) == "3.00"
    grid_tick(ana, grid, 1, accept)  # line 3: take its repair suggestion
    shot(ana, "8-fix-edited")
    ana.get_by_role("button", name="Check again").click()
    ana.get_by_text(
        "ana fixed 2 rejected row(s): line 2 price '-3.00' → '3.00'; line 3: accepted the suggestion "
        "(join 'Cup' and ' large' into one cell: 'Cup, large')"
    ).wait_for()

    metric(ana, "Rows rejected").filter(has_text="0").wait_for()
    ana.get_by_text("No row was rejected.").wait_for()
    shot(ana, "9-fixed")
    done = registry.get(job.id)
    assert (done.status, done.rows_valid, done.rows_rejected) == ("staged", 3, 0)
    staged = api.staged(job.id).df().set_index("line")
    assert float(staged.loc[2, "price"]) == 3.0 and staged.loc[3, "name"] == "Cup, large"
    audit = api.fixes(job.id)
    by_hand, suggested = audit[audit.line == 2], audit[audit.line == 3]
    assert by_hand[["column", "before", "after", "suggestion"]].values.tolist() == [["price", "-3.00", "3.00", False]]
    assert suggested.suggestion.all() and set(suggested.fixed_by) == {"ana"}


def test_a_replace_shows_its_deletes_before_approval_is_reverted_after_and_the_same_file_twice_is_warned(
    browser, worker, dashboard, tmp_path
):
    try:
        replace_and_revert(browser, dashboard, tmp_path)
    except BaseException:
        failure_shots(browser)
        raise


def replace_and_revert(browser, dashboard: str, tmp_path) -> None:
    base = write_csv(tmp_path / "base.csv", [f"AB-000{i},p{i},{i}.00,EUR,1,," for i in range(1, 6)])
    first = workflow.submit(base, dataset="products", brand="acme", user=who("ana"))
    workflow.wait(first.id, timeout=120)
    workflow.approve(first.id, user=who("olga"))
    assert workflow.wait(first.id, until=registry.FINAL, timeout=120).status == "committed"
    catalogue = write_csv(tmp_path / "catalogue.csv", ["AB-0001,p1,1.00,EUR,1,,", "AB-0006,p6,6.00,EUR,1,,"])

    ana = log_in(browser, dashboard, "ana")
    ana.locator("input[type='file']").set_input_files(str(catalogue))
    ana.get_by_text("First rows as the worker will read them").wait_for()
    ana.get_by_text("replace", exact=True).click()
    ana.get_by_text("whose key is not in this file are deleted").wait_for()
    shot(ana, "10-replace-upload")
    ana.get_by_role("button", name="Submit for validation").click()
    ana.get_by_text("is queued for validation (mode replace)").wait_for()
    [job] = [j for j in registry.list_jobs() if j.id != first.id]
    assert workflow.wait(job.id, timeout=120).status == "staged"

    olga = log_in(browser, f"{dashboard}/review?job={job.id}", "olga")
    metric(olga, "Rows to delete").filter(has_text="4").wait_for()
    olga.get_by_text("Deletes: all of 4").wait_for()
    olga.get_by_text("approving deletes 4 of the 5 rows of brand acme").wait_for()
    approve = olga.get_by_role("button", name="Approve and commit to production")
    assert approve.is_disabled()
    shot(olga, "11-replace-review")
    olga.get_by_text("Yes, delete 4 rows").click()
    settle(olga)
    approve.click()
    badge(olga, "committed").wait_for()
    assert sorted(api.production("products", "acme").df()["sku"]) == ["AB-0001", "AB-0006"]
    metric(olga, "Rows deleted").filter(has_text="4").wait_for()
    olga.get_by_role("button", name="Revert this import").click()
    badge(olga, "reverted").wait_for()
    shot(olga, "12-reverted")
    assert sorted(api.production("products", "acme").df()["sku"]) == [f"AB-000{i}" for i in range(1, 6)]

    # The same file again: the upload names the job that has it and waits for a confirmation.
    ana.get_by_role("link", name="Upload").click()
    ana.locator("input[type='file']").set_input_files(str(base))
    ana.get_by_text(f"is already committed as job {first.id}").wait_for()
    submit = ana.get_by_role("button", name="Submit for validation")
    assert submit.is_disabled()
    shot(ana, "13-same-file-twice")
    ana.get_by_text("Import this file again anyway").click()
    settle(ana)
    assert submit.is_enabled()


# The browser's own clock, so the test's other steps (screenshots, waits) do not count.
SUBMIT_TO_STAGED_CLOCK = """() => {
  window.__submitted_at = null;
  window.__staged_at = null;
  window.__queued_at = null;
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (window.__submitted_at === null && button && button.innerText.includes("Submit for validation")) {
      window.__submitted_at = performance.now();
    }
  }, true);
  const staged = () => [...document.querySelectorAll(".stMarkdownBadge")]
    .some((badge) => /\\bstaged$/.test(badge.innerText.trim()));
  new MutationObserver(() => {
    if (window.__submitted_at !== null && window.__queued_at === null
        && document.body.innerText.includes("is queued for validation")) {
      window.__queued_at = performance.now();
    }
    if (window.__submitted_at !== null && window.__staged_at === null && staged()) {
      window.__staged_at = performance.now();
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def start_submit_clock(page) -> None:
    """From now on the page notes when Submit is clicked and when a "staged" badge first shows."""
    page.evaluate(SUBMIT_TO_STAGED_CLOCK)


def record_submit_to_staged(page) -> float:
    """The seconds from clicking Submit to "staged" on screen, written to test-artifacts/dashboard-latency.json
    for `python -m bench --latency` (issue 13's goal: at most 1.5 s; printed there, never asserted here)."""
    import datetime as dt
    import json

    page.wait_for_function("window.__staged_at !== null && window.__submitted_at !== null")
    seconds = page.evaluate("(window.__staged_at - window.__submitted_at) / 1000")
    queued = page.evaluate("window.__queued_at === null ? null : (window.__queued_at - window.__submitted_at) / 1000")
    ARTIFACTS.mkdir(exist_ok=True)
    figure = {
        "submit_to_staged_s": round(seconds, 3),
        "submit_to_queued_on_screen_s": None if queued is None else round(queued, 3),
        "measured_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "file": "examples/products.csv",
        "rows": 16,
        "worker": "a worker started for the test, warmed by one job of another brand",
        "how": "the browser's clock, from the click on Submit to the first 'staged' badge on the page",
    }
    (ARTIFACTS / "dashboard-latency.json").write_text(json.dumps(figure, indent=1) + "\n")
    return seconds
