"""Dashboard sessions: a record in the job registry, and a signed, expiring cookie that names it.

The cookie holds only the session's random id, signed with a key kept 0600 under
BULKIMPORT_HOME (itsdangerous: tampered or expired values are refused before any
lookup). The record decides the rest: logging out ends it, so every tab of that
browser is logged out at its next step; so does ``BULKIMPORT_SESSION_IDLE_MINUTES``
without a click, and ``BULKIMPORT_SESSION_HOURS`` after the login whatever happens.
The registry keeps only a hash of the id: reading the registry gives no usable cookie.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from itsdangerous import BadSignature, TimestampSigner

from bulkimport import private, registry, users
from bulkimport.config import settings
from bulkimport.errors import NotAllowed

COOKIE = "bulkimport_session"
TOUCH_EVERY_S = 30  # last_seen is written at most this often per session


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _signer() -> TimestampSigner:
    key = private.read_or_create_secret(settings().home / "dashboard.key", lambda: secrets.token_urlsafe(48))
    return TimestampSigner(key, salt="bulkimport-session")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def lifetime_s() -> int:
    return settings().session_hours * 3600


def start(user: users.User, client: str | None = None) -> str:
    """A new session for ``user``; returns its id (what the cookie carries, signed)."""
    session_id = secrets.token_urlsafe(32)
    stamp = _now().isoformat()
    with registry.transaction() as con:
        con.execute(
            "INSERT INTO sessions (id_sha256, user_name, client, created_at, last_seen) VALUES (?,?,?,?,?)",
            (_hash(session_id), user.name, client, stamp, stamp),
        )
    return session_id


def cookie_value(session_id: str) -> str:
    return _signer().sign(session_id).decode()


def session_of_cookie(value: str | None) -> str | None:
    """The session id in a cookie value, if its signature holds and it is younger than a session may live."""
    if not value:
        return None
    try:
        return _signer().unsign(value, max_age=lifetime_s()).decode()
    except (BadSignature, UnicodeDecodeError):
        return None


def user_of(session_id: str | None, touch: bool = True) -> users.User | None:
    """The user of a live session (not ended, not idle too long, not too old, user still there), else None.

    ``touch`` counts this as activity (a click), keeping the session alive.
    """
    if not session_id:
        return None
    now = _now()
    with registry.transaction() as con:
        row = con.execute(
            "SELECT user_name, created_at, last_seen, ended_at FROM sessions WHERE id_sha256 = ?", (_hash(session_id),)
        ).fetchone()
        if row is None or row["ended_at"]:
            return None
        idle = (now - dt.datetime.fromisoformat(row["last_seen"])).total_seconds()
        age = (now - dt.datetime.fromisoformat(row["created_at"])).total_seconds()
        if idle > settings().session_idle_minutes * 60 or age > lifetime_s():
            con.execute("UPDATE sessions SET ended_at = ? WHERE id_sha256 = ?", (now.isoformat(), _hash(session_id)))
            return None
        if touch and idle > TOUCH_EVERY_S:
            con.execute("UPDATE sessions SET last_seen = ? WHERE id_sha256 = ?", (now.isoformat(), _hash(session_id)))
    try:
        return users.get(row["user_name"])
    except NotAllowed:  # removed from the users file since
        end(session_id)
        return None


def end(session_id: str | None) -> None:
    """Log the session out, in every tab that shares it."""
    if not session_id:
        return
    with registry.transaction() as con:
        con.execute(
            "UPDATE sessions SET ended_at = ? WHERE id_sha256 = ? AND ended_at IS NULL",
            (_now().isoformat(), _hash(session_id)),
        )
