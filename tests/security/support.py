"""What the attack replays share: staged jobs made by the real worker, HTTP against the real dashboard."""

from __future__ import annotations

import http.cookiejar
import io
import json
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from bulkimport import workflow
from tests.conftest import run_cli, who


def submit(path: Path, brand: str = "acme", user: str = "ana", *extra: str) -> dict:
    """`bulkimport submit ... --wait --json` as ``user``: the job as a worker left it."""
    done = run_cli(
        "submit", str(path), "--dataset", "products", "--brand", brand, "--wait", "--json", *extra, user=user
    )
    return json.loads(done.stdout)


def staged(path: Path, brand: str = "acme", user: str = "ana", mapping: dict | None = None):
    job = workflow.submit(path, dataset="products", brand=brand, user=who(user), mapping=mapping)
    done = workflow.wait(job.id, timeout=120)
    assert done.status == "staged", done
    return done


class Browserless:
    """A client of the real dashboard's HTTP side (login page, guard), with its own cookie jar."""

    def __init__(self, url: str):
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def get(self, path: str, accept: str = "text/html"):
        return self._open(urllib.request.Request(self.url + path, headers={"Accept": accept}))

    def login(self, name: str, password: str, next_: str = "/"):
        page = self.get("/login?" + urllib.parse.urlencode({"next": next_}))
        form = _hidden(page.body, "form")
        data = urllib.parse.urlencode({"name": name, "password": password, "next": next_, "form": form}).encode()
        return self._open(urllib.request.Request(self.url + "/login", data=data, method="POST"))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def _open(self, request):
        try:
            answer = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            answer = error
        body = answer.read().decode("utf-8", "replace")
        return Answer(answer.status, dict(answer.headers), body)


class Answer:
    def __init__(self, status: int, headers: dict, body: str):
        self.status, self.headers, self.body = status, {k.lower(): v for k, v in headers.items()}, body

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _hidden(body: str, name: str) -> str:
    marker = f'name="{name}" value="'
    start = body.index(marker) + len(marker)
    return body[start : body.index('"', start)]


def workbook_with_shared_strings(strings: int, text: bytes = b"a") -> bytes:
    """A valid .xlsx whose header row uses shared strings, and whose shared-strings part holds ``strings``
    strings: deflated, a few MB of them zip to almost nothing."""
    header = ["sku", "name", "price", "currency", "stock"]
    cells = "".join(f'<c r="{chr(65 + i)}1" t="s"><v>{i}</v></c>' for i in range(len(header)))
    row2 = '<c r="A2" t="inlineStr"><is><t>AB-0001</t></is></c><c r="B2" t="inlineStr"><is><t>x</t></is></c>'
    row2 += '<c r="C2"><v>1</v></c><c r="D2" t="inlineStr"><is><t>EUR</t></is></c><c r="E2"><v>1</v></c>'
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        f'2006/main"><sheetData><row r="1">{cells}</row><row r="2">{row2}</row></sheetData></worksheet>'
    ).encode()
    main = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    sst = io.BytesIO()
    sst.write(b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="' + main + b'" count="5" uniqueCount="5">')
    for name in header:
        sst.write(b"<si><t>" + name.encode() + b"</t></si>")
    sst.write((b"<si><t>" + text + b"</t></si>") * max(0, strings - len(header)))
    sst.write(b"</sst>")
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
            b'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            b'officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType='
            b'"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            f'2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ).encode(),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main.decode()}" xmlns:r="{rel}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ).encode(),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            f'2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
        ).encode(),
        "xl/worksheets/sheet1.xml": sheet,
        "xl/sharedStrings.xml": sst.getvalue(),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()
