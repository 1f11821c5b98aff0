"""Password checks that cannot be hammered: backoff after repeated failures, and a bound on checks at once.

After ``FREE_FAILURES`` wrong passwords for one user name, or from one client (a browser's
address, a terminal's account), that subject must wait: 30 s, then twice as long after each
further failure, at most 15 minutes; no password is checked meanwhile, not even the right
one. The failures live in the job registry, so every dashboard process and the CLI share
them. Each argon2 check takes 64 MiB, so at most ``BULKIMPORT_LOGIN_CHECKS`` run at once
per process; more wait a little, then are told to try again.
"""

from __future__ import annotations

import datetime as dt
import threading

from bulkimport import registry, users
from bulkimport.config import settings
from bulkimport.errors import LoginsBusy, Throttled

FREE_FAILURES = 5
FIRST_WAIT_S = 30
LONGEST_WAIT_S = 15 * 60
FORGET_AFTER_S = 15 * 60  # failures older than this (with none since) no longer count
BUSY_WAIT_S = 10

_checks: dict[int, threading.BoundedSemaphore] = {}
_checks_lock = threading.Lock()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _wait_s(failures: int) -> float:
    return min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** (failures - FREE_FAILURES))


def locked_until(subjects: list[str]) -> dt.datetime | None:
    """The latest time until which any of ``subjects`` must wait, if one must."""
    if not subjects:
        return None
    with registry.transaction() as con:
        rows = con.execute(
            f"SELECT locked_until FROM login_failures WHERE subject IN ({', '.join('?' * len(subjects))})",
            tuple(subjects),
        ).fetchall()
    until = [dt.datetime.fromisoformat(r["locked_until"]) for r in rows if r["locked_until"]]
    latest = max(until, default=None)
    return latest if latest and latest > _now() else None


def record_failure(subjects: list[str]) -> None:
    now = _now()
    with registry.transaction() as con:
        for subject in subjects:
            row = con.execute(
                "SELECT failures, last_failure FROM login_failures WHERE subject = ?" + registry.for_update(),
                (subject,),
            ).fetchone()
            failures = 1
            if row and (now - dt.datetime.fromisoformat(row["last_failure"])).total_seconds() < FORGET_AFTER_S:
                failures = row["failures"] + 1
            locked = (now + dt.timedelta(seconds=_wait_s(failures))).isoformat() if failures >= FREE_FAILURES else None
            con.execute(
                "INSERT INTO login_failures (subject, failures, last_failure, locked_until) VALUES (?,?,?,?) "
                "ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, "
                "last_failure = excluded.last_failure, locked_until = excluded.locked_until",
                (subject, failures, now.isoformat(), locked),
            )


def forget(subject: str) -> None:
    with registry.transaction() as con:
        con.execute("DELETE FROM login_failures WHERE subject = ?", (subject,))


def _semaphore() -> threading.BoundedSemaphore:
    limit = max(1, settings().login_checks)
    with _checks_lock:
        return _checks.setdefault(limit, threading.BoundedSemaphore(limit))


def check_password(name: str, password: str, client: str) -> users.User | None:
    """The user if the password is right, None if not; Throttled while locked out, LoginsBusy when overloaded.

    A right password clears the user name's failures; the client's count on (an
    attacker who owns one account must not reset their address by logging in to it).
    """
    subjects = [f"user:{name}", f"client:{client}"]
    until = locked_until(subjects)
    if until is not None:
        raise Throttled(until)
    checks = _semaphore()
    if not checks.acquire(timeout=BUSY_WAIT_S):
        raise LoginsBusy("The server is busy checking other logins; try again in a few seconds.")
    try:
        user = users.authenticate(name, password)
    finally:
        checks.release()
    if user is None:
        record_failure(subjects)
        return None
    forget(subjects[0])
    return user
