"""The dashboard's login, in front of Streamlit: a login page, logout, and a guard on every request.

``serve.py`` mounts these on Streamlit's own server (``st.App``: Starlette). The page and
its websocket open only with a live session cookie (bulkimport.sessions); any other
request for a page is sent to ``/login?next=<that page>``, which sends it back after
the login, so a refreshed tab, a new tab and a pasted ``/review?job=`` link all work.
The cookie is HttpOnly (no script on the page can read it), SameSite=Lax, Secure over
HTTPS. Password checks are throttled (bulkimport.throttle). With single sign-on
configured (``[auth]`` in secrets.toml) Streamlit's own login and cookie are used instead.
"""

from __future__ import annotations

import html
import secrets
import urllib.parse

from itsdangerous import BadSignature, TimestampSigner
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bulkimport import sessions, throttle
from bulkimport.errors import LoginsBusy, Throttled

CSRF_COOKIE = "bulkimport_login_form"
# Paths that answer without a session: the login itself, and what its page and a health check load.
OPEN_PATHS = ("/login", "/logout", "/_stcore/health", "/_stcore/host-config", "/favicon.png")
OPEN_PREFIXES = ("/static/",)
_serving = {"on": False}


def serving() -> bool:
    """True in the process serve.py runs: its login page is there to send people to."""
    return _serving["on"]


def _oidc() -> bool:
    import streamlit as st

    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file (or an unreadable one) means no single sign-on
        return False


def _base() -> str:
    from streamlit import config

    return "/" + (config.get_option("server.baseUrlPath") or "").strip("/")


def _local(path: str) -> str:
    """``path`` without the server's base URL path ('/review' for '/base/review')."""
    base = _base().rstrip("/")
    return path[len(base) :] or "/" if base and path.startswith(base) else path


def _url(path: str) -> str:
    return _base().rstrip("/") + path


def _safe_next(target: str | None) -> str:
    """Only a path on this server: never another site (``//evil``, ``https://evil``, ``\\evil``)."""
    target = target or ""
    parts = urllib.parse.urlsplit(target)
    if not target.startswith("/") or target.startswith(("//", "/\\")) or parts.scheme or parts.netloc:
        return _url("/")
    return target


def _client(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def live_user(connection: HTTPConnection):
    """The user of the request's session cookie, if that session is live."""
    return sessions.user_of(sessions.session_of_cookie(connection.cookies.get(sessions.COOKIE)))


class SessionGuard:
    """ASGI middleware: no page, websocket, upload or media without a live session."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or _oidc():
            await self.app(scope, receive, send)
            return
        path = _local(scope["path"])
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if await run_in_threadpool(live_user, connection) is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: the handshake gets a 403
            return
        headers = Headers(scope=scope)
        wants_page = scope["method"] == "GET" and not path.startswith(("/_stcore/", "/media/", "/component/"))
        if wants_page and "text/html" in headers.get("accept", "text/html"):
            wanted = scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
            response: Response = RedirectResponse(
                _url("/login") + "?" + urllib.parse.urlencode({"next": wanted}), status_code=303
            )
        else:
            response = PlainTextResponse("log in first", status_code=401)
        await response(scope, receive, send)


def _csrf_signer() -> TimestampSigner:
    return TimestampSigner(sessions._signer().secret_keys[-1], salt="bulkimport-login-form")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bulkimport: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: "Source Sans Pro", system-ui, sans-serif; background: #f6f7f9; color: #262730; }}
 main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: .6rem;
        box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
 h1 {{ font-size: 1.6rem; margin: 0 0 1.2rem; }}
 label {{ display: block; margin: .8rem 0 .3rem; }}
 input {{ width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem; border: 1px solid #c8cad1;
         border-radius: .4rem; }}
 button {{ margin-top: 1.3rem; width: 100%; padding: .6rem; font-size: 1rem; border: 0; border-radius: .4rem;
          background: #ff4b4b; color: #fff; cursor: pointer; }}
 .message {{ margin: 0 0 1rem; padding: .7rem; border-radius: .4rem; background: #ffe0e0; color: #7d1a1a; }}
 .note {{ margin: 0 0 1rem; padding: .7rem; border-radius: .4rem; background: #e6f0ff; color: #1a3d7d; }}
 p.hint {{ font-size: .85rem; color: #6b6f78; margin-top: 1.2rem; }}
</style></head>
<body><main>
<h1>bulkimport</h1>
{message}
<form method="post" action="{action}">
 <input type="hidden" name="next" value="{next}">
 <input type="hidden" name="form" value="{form}">
 <label for="name">User name</label>
 <input id="name" name="name" autocomplete="username" value="{name}" required autofocus>
 <label for="password">Password</label>
 <input id="password" name="password" type="password" autocomplete="current-password" required>
 <button type="submit">Log in</button>
</form>
<p class="hint">Accounts are managed with <code>bulkimport users add NAME --role analyst|operator|admin
--brands ...</code>.</p>
</main></body></html>
"""


def _page(request: Request, status: int, message: str = "", note: bool = False, name: str = "") -> Response:
    """The login form; every value from the request is escaped, and a fresh form token is set."""
    form = secrets.token_urlsafe(24)
    box = f'<p class="{"note" if note else "message"}" role="alert">{html.escape(message)}</p>' if message else ""
    body = _PAGE.format(
        message=box,
        action=html.escape(_url("/login")),
        next=html.escape(_safe_next(request.query_params.get("next"))),
        form=html.escape(form),
        name=html.escape(name),
    )
    response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        CSRF_COOKIE,
        _csrf_signer().sign(form).decode(),
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=_url("/login"),
    )
    return response


def _set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(
        sessions.COOKIE,
        sessions.cookie_value(session_id),
        max_age=sessions.lifetime_s(),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=_url("/"),
    )


def _clear_session_cookie(response: Response) -> None:
    response.delete_cookie(sessions.COOKIE, path=_url("/"))


async def login(request: Request) -> Response:
    if request.method == "GET":
        if await run_in_threadpool(live_user, request) is not None:
            return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
        ended = sessions.COOKIE in request.cookies
        response = _page(request, 200, "Your session ended: log in again." if ended else "", note=True)
        if ended:
            _clear_session_cookie(response)
        return response
    form = await request.form()
    target = _safe_next(str(form.get("next") or ""))
    request.scope["query_string"] = urllib.parse.urlencode({"next": target}).encode()
    name = str(form.get("name") or "").strip()
    try:
        sent = _csrf_signer().unsign(request.cookies.get(CSRF_COOKIE, ""), max_age=3600).decode()
    except BadSignature:
        sent = None
    if not sent or not secrets.compare_digest(sent, str(form.get("form") or "")):
        return _page(request, 400, "This form expired; please log in again.", name=name)
    try:
        user = await run_in_threadpool(throttle.check_password, name, str(form.get("password") or ""), _client(request))
    except (Throttled, LoginsBusy) as exc:
        status = 429 if isinstance(exc, Throttled) else 503
        response = _page(request, status, str(exc), name=name)
        if isinstance(exc, Throttled):
            response.headers["Retry-After"] = str(exc.seconds)
        return response
    if user is None:
        return _page(request, 401, "Wrong user name or password.", name=name)
    session_id = await run_in_threadpool(sessions.start, user, _client(request))
    response = RedirectResponse(target, status_code=303)
    _set_session_cookie(response, request, session_id)
    response.delete_cookie(CSRF_COOKIE, path=_url("/login"))
    return response


async def logout(request: Request) -> Response:
    """End the session (every tab of this browser) and clear its cookie."""
    session_id = sessions.session_of_cookie(request.cookies.get(sessions.COOKIE))
    await run_in_threadpool(sessions.end, session_id)
    response = RedirectResponse(_url("/login"), status_code=303)
    _clear_session_cookie(response)
    return response


def routes() -> list[Route]:
    _serving["on"] = True
    return [Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["GET", "POST"])]


def middleware() -> list[Middleware]:
    return [Middleware(SessionGuard)]
