"""Item 4: file names and header names shown in errors and captions were rendered as Markdown: a crafted
name made an operator's browser fetch an outside image and showed a live "re-login" link."""

from __future__ import annotations

import http.server
import re
import threading

import pytest
from streamlit.testing.v1 import AppTest

from bulkimport import registry, sessions, ui, users, workflow
from tests.conftest import PASSWORD, REPO, who

pytestmark = pytest.mark.e2e


class Pixel(http.server.BaseHTTPRequestHandler):
    """An outside server on loopback: any request it gets is the page leaking."""

    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the http.server API
        Pixel.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def pixel():
    server = http.server.HTTPServer(("127.0.0.1", 0), Pixel)
    Pixel.hits = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def crafted(outside: str) -> tuple[str, bytes]:
    """A file name (no '/' in a file name) and header names that are Markdown links and images."""
    name = "prices [re-login](javascript:alert(1)) ![x](https:evil.example) **bold**.csv"
    header = f"sku,name,price,currency,stock,![t]({outside}/header.png),[click]({outside}/header)"
    return name, (header + "\nAB-0001,Cup,1.00,EUR,1,x,y\nAB-0002,Jug,n/a,EUR,2,x,y\n").encode()


def test_names_from_a_file_are_text_in_every_view(redis_url, pixel):
    name, data = crafted(pixel)
    job = workflow.submit(
        __import__("io").BytesIO(data), dataset="products", brand="acme", user=who("ana"), file_name=name
    )
    registry.transition(job.id, "pending", "failed", actor="worker", error=f"could not read {name}")
    for view, query in (("views/review.py", {"job": job.id}), ("views/upload.py", {}), ("views/jobs.py", {})):
        at = AppTest.from_file(REPO / "app.py", default_timeout=60)
        at.session_state[ui.SESSION] = sessions.start(users.get("olga"))
        at.switch_page(view)
        at.query_params.update(query)
        at.run()
        assert not at.exception, at.exception
        rendered = [e.value for kind in ("markdown", "caption", "error", "warning", "info") for e in at.get(kind)]
        for markdown in rendered:
            assert "](" not in markdown.replace("\\](", "").replace("\\]\\(", ""), markdown
            assert "![" not in markdown.replace("\\!\\[", ""), markdown


def test_a_crafted_file_and_header_show_as_text_in_a_real_browser(browser, worker, dashboard, pixel):
    name, data = crafted(pixel)
    page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
    page.set_default_timeout(60_000)
    page.goto(dashboard)
    page.get_by_role("textbox", name="User name").fill("ana")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Upload a CSV").wait_for()
    page.locator("input[type='file']").set_input_files({"name": name, "mimeType": "text/csv", "buffer": data})
    page.get_by_text("Ignored file columns").wait_for()
    page.get_by_text(f"[click]({pixel}/header)", exact=False).first.wait_for()
    page.get_by_role("button", name="Submit for validation").click()
    page.get_by_text("is queued for validation").wait_for()
    [job] = registry.list_jobs()
    assert workflow.wait(job.id, timeout=120).status == "staged"

    olga = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
    olga.set_default_timeout(60_000)
    olga.goto(f"{dashboard}/review?job={job.id}")
    olga.get_by_role("textbox", name="User name").fill("olga")
    olga.get_by_role("textbox", name="Password").fill(PASSWORD)
    olga.get_by_role("button", name="Log in").click()
    olga.get_by_text("Rows to insert").wait_for()
    olga.get_by_text("[re-login](javascript:alert(1))", exact=False).first.wait_for()  # the name, as written
    olga.wait_for_timeout(1500)
    for viewer in (page, olga):
        for link in (pixel, "javascript:", "https:evil"):
            assert viewer.locator(f"a[href^='{link}']").count() == 0, f"no link from data: {link}"
            assert viewer.locator(f"img[src^='{link}']").count() == 0, f"no image from data: {link}"
        emphasis = viewer.locator("strong").filter(has_text=re.compile(r"^\s*bold\s*$"))
        assert emphasis.count() == 0, "no emphasis from data"
    assert Pixel.hits == [], f"the browser fetched {Pixel.hits} from an outside server"
