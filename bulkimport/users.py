"""People and what they may do: users, roles and brands, from a file under BULKIMPORT_HOME.

Roles: ``analyst`` uploads and sees the jobs of their brands; ``operator`` also
approves, rejects and reverts for their brands, but never a job they uploaded
(four eyes); ``admin`` may do everything on every brand. Brands ``*`` means all.
Passwords are stored as argon2 hashes.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bulkimport.config import settings
from bulkimport.errors import BulkImportError

ROLES = ("analyst", "operator", "admin")
ALL_BRANDS = "*"
_hasher = PasswordHasher()


class NotAllowed(BulkImportError):
    """The user may not do this (role, brand or the four-eyes rule)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    brands: tuple[str, ...]

    def sees(self, brand: str) -> bool:
        return self.role == "admin" or ALL_BRANDS in self.brands or brand in self.brands

    @property
    def reviews(self) -> bool:
        return self.role in ("operator", "admin")

    def visible_brands(self, brands: list[str]) -> list[str]:
        return [b for b in brands if self.sees(b)]


def users_file() -> Path:
    return Path(os.environ.get("BULKIMPORT_USERS_FILE") or settings().home / "users.json")


def _load() -> dict:
    path = users_file()
    if not path.exists():
        return {}
    return json.loads(path.read_text()).get("users", {})


def _save(users: dict) -> None:
    path = users_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-")
    with os.fdopen(fd, "w") as out:
        json.dump({"users": users}, out, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)  # atomic: readers see the old or the new file


def _user(name: str, entry: dict) -> User:
    return User(name, entry["role"], tuple(entry.get("brands", ())))


def list_users() -> list[User]:
    return [_user(n, e) for n, e in sorted(_load().items())]


def get(name: str) -> User:
    """The user called ``name``; NotAllowed with a hint if there is none."""
    users = _load()
    if not users:
        raise NotAllowed("no users are configured; add one with `bulkimport users add NAME --role admin --brands '*'`")
    if name not in users:
        raise NotAllowed(f"unknown user {name!r}; `bulkimport users list` shows who exists")
    return _user(name, users[name])


def add(name: str, role: str, brands: list[str], password: str) -> User:
    if role not in ROLES:
        raise BulkImportError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").replace("@", "").isalnum():
        raise BulkImportError(f"user name {name!r}: use letters, digits, '.', '-', '_' or '@'")
    if len(password) < 8:
        raise BulkImportError("the password must have at least 8 characters")
    users = _load()
    users[name] = {"role": role, "brands": sorted(set(brands)), "password_hash": _hasher.hash(password)}
    _save(users)
    return _user(name, users[name])


def remove(name: str) -> None:
    users = _load()
    if users.pop(name, None) is None:
        raise BulkImportError(f"unknown user {name!r}")
    _save(users)


def authenticate(name: str, password: str) -> User | None:
    """The user if the password matches, else None (same answer for unknown names)."""
    entry = _load().get(name)
    if entry is None:
        _hasher.hash(password)  # spend the same time, so names cannot be probed
        return None
    try:
        _hasher.verify(entry["password_hash"], password)
    except (VerificationError, InvalidHashError):
        return None
    return _user(name, entry)


def ensure_initial_admin() -> str | None:
    """On a fresh install, create `admin` with a random password; return it (else None)."""
    if _load():
        return None
    password = secrets.token_urlsafe(12)
    add("admin", "admin", [ALL_BRANDS], password)
    return password


# ---------------------------------------------------------------- rules


def require_upload(user: User, brand: str) -> None:
    if not user.sees(brand):
        raise NotAllowed(f"{user.name} may not import data for brand {brand!r} (brands: {', '.join(user.brands)})")


def require_review(user: User, brand: str, created_by: str | None = None, action: str = "approve") -> None:
    """Operators and admins of the brand; for approval, never the uploader (four eyes)."""
    if not user.reviews:
        raise NotAllowed(f"{user.name} is an {user.role}; only an operator or admin may {action} jobs")
    if not user.sees(brand):
        raise NotAllowed(f"{user.name} may not {action} jobs of brand {brand!r}")
    if action == "approve" and created_by == user.name:
        raise NotAllowed(f"{user.name} uploaded this job and so may not approve it: a second person must (four eyes)")


def require_view(user: User, brand: str) -> None:
    if not user.sees(brand):
        raise NotAllowed(f"{user.name} may not see jobs of brand {brand!r}")
