"""People and what they may do: users, roles and brands, from a file under BULKIMPORT_HOME.

Roles: ``analyst`` uploads and sees the jobs of their brands; ``operator`` also
approves, rejects and reverts for their brands, but never a job they uploaded
(four eyes); ``admin`` may do everything on every brand. Brands ``*`` means all.
Passwords are stored as argon2 hashes. Personal API tokens (for the CLI and the
Python API) are stored as sha256 hashes: a token is 32 random bytes, so a fast
hash is enough, and checking one costs nothing like a password's 64 MiB.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bulkimport import private
from bulkimport.config import settings
from bulkimport.errors import BulkImportError, NotAllowed

ROLES = ("analyst", "operator", "admin")
ALL_BRANDS = "*"
TOKEN_PREFIX = "bi_"
_hasher = PasswordHasher()


@dataclass(frozen=True)
class User:
    name: str
    role: str
    brands: tuple[str, ...]

    @property
    def sees_all(self) -> bool:
        """Admins and users of brand '*' see (and may act for) every brand: the one place this rule lives."""
        return self.role == "admin" or ALL_BRANDS in self.brands

    def sees(self, brand: str) -> bool:
        return self.sees_all or brand in self.brands

    @property
    def reviews(self) -> bool:
        return self.role in ("operator", "admin")


def users_file() -> Path:
    s = settings()
    return s.users_file or s.home / "users.json"


def _load() -> dict:
    path = users_file()
    if not path.exists():
        return {}
    return json.loads(path.read_text()).get("users", {})


def _save(users: dict) -> None:
    private.write_atomically(users_file(), json.dumps({"users": users}, indent=2, sort_keys=True))


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
    tokens = users.get(name, {}).get("tokens", {})  # changing a role or password keeps the person's tokens
    users[name] = {"role": role, "brands": sorted(set(brands)), "password_hash": _hasher.hash(password)}
    if tokens:
        users[name]["tokens"] = tokens
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


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str) -> str:
    """A new personal API token for ``name`` (shown once: only its hash is kept). Earlier tokens stay valid."""
    users = _load()
    if name not in users:
        raise BulkImportError(f"unknown user {name!r}; `bulkimport users list` shows who exists")
    token_id = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    users[name].setdefault("tokens", {})[token_id] = {
        "sha256": _token_hash(token),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    _save(users)
    return token


def revoke_tokens(name: str) -> int:
    """Remove every token of ``name``; returns how many there were."""
    users = _load()
    if name not in users:
        raise BulkImportError(f"unknown user {name!r}")
    revoked = len(users[name].pop("tokens", {}))
    _save(users)
    return revoked


def authenticate_token(token: str) -> User | None:
    """The user whose token this is, else None (malformed, revoked, or of a removed user)."""
    token = (token or "").strip()
    parts = token.removeprefix(TOKEN_PREFIX).split("_", 1)
    if not token.startswith(TOKEN_PREFIX) or len(parts) != 2:
        return None
    for name, entry in _load().items():
        stored = entry.get("tokens", {}).get(parts[0])
        if stored and hmac.compare_digest(stored["sha256"], _token_hash(token)):
            return _user(name, entry)
    return None


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
        raise NotAllowed(f"brand {brand!r}: not found or not yours")


def require_admin(user: User, what: str) -> None:
    if user.role != "admin":
        raise NotAllowed(f"{user.name} is an {user.role}; {what} is for admins only")


def brand_filter(user: User) -> list[str] | None:
    """The brands a query must be limited to for ``user``; None means every brand."""
    return None if user.sees_all else list(user.brands)
