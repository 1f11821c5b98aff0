"""Who acts, in the CLI and the Python API: proven by a personal token or, on a terminal, a password.

A token (``bulkimport users token NAME``) is given in ``BULKIMPORT_TOKEN`` or saved by
``bulkimport login`` in a 0600 file under the user's config folder. Without a token, a
command run on a terminal asks for a user name and password (throttled like the
dashboard's login). Nothing else counts: a name on the command line is no proof.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from bulkimport import throttle, users
from bulkimport.config import settings
from bulkimport.errors import NotLoggedIn

TOKEN_ENV = "BULKIMPORT_TOKEN"


def how_to_log_in(api: bool = False) -> str:
    first = "call bi.login() (it reads BULKIMPORT_TOKEN or asks for your token)" if api else "run `bulkimport login`"
    return (
        f"not logged in: {first}, or set {TOKEN_ENV} to your personal token. "
        "An admin creates one with `bulkimport users token NAME`."
    )


def token_file() -> Path:
    """Where `bulkimport login` keeps the token: $XDG_CONFIG_HOME/bulkimport/token (~/.config by default)."""
    return settings().xdg_config_home / "bulkimport" / "token"


def save_token(token: str) -> Path:
    """Check the token, then keep it (0600, in a 0700 folder) for the commands that follow."""
    from bulkimport import private

    user_of_token(token)
    path = token_file()
    private.write_atomically(path, token.strip() + "\n")
    path.parent.chmod(0o700)
    return path


def forget_token() -> bool:
    """Remove the saved token; False if there was none."""
    try:
        token_file().unlink()
        return True
    except FileNotFoundError:
        return False


def found_token() -> str | None:
    """The token from BULKIMPORT_TOKEN, else the saved one, else None."""
    if token := settings().token:
        return token.get_secret_value()
    try:
        return token_file().read_text().strip() or None
    except OSError:
        return None


def user_of_token(token: str) -> users.User:
    """The user the token proves; NotLoggedIn (saying what to do) for a wrong or revoked one."""
    user = users.authenticate_token(token)
    if user is None:
        from_env = settings().token
        where = TOKEN_ENV if from_env and from_env.get_secret_value() == token.strip() else "the token given"
        if token.strip() == _saved():
            where = f"the token saved in {token_file()}"
        raise NotLoggedIn(
            f"{where} is not valid here (mistyped, revoked, or for another installation); "
            "ask an admin for a new one (`bulkimport users token NAME`) and run `bulkimport login`"
        )
    return user


def _saved() -> str | None:
    try:
        return token_file().read_text().strip()
    except OSError:
        return None


def ask_token() -> str:
    """Ask for a token on the terminal (or in a notebook), without echoing it."""
    try:
        token = getpass.getpass("bulkimport token: ").strip()
    except (EOFError, OSError, RuntimeError) as exc:  # no terminal, or a kernel without input
        raise NotLoggedIn(how_to_log_in(api=True)) from exc
    if not token:
        raise NotLoggedIn(how_to_log_in(api=True))
    return token


def who_acts(interactive: bool | None = None) -> users.User:
    """The user a command acts as: the token if there is one, else a password asked on the terminal."""
    token = found_token()
    if token is not None:
        return user_of_token(token)
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        raise NotLoggedIn(how_to_log_in())
    try:
        name = input("bulkimport user: ").strip()
        password = getpass.getpass("password: ")
    except EOFError as exc:
        raise NotLoggedIn(how_to_log_in()) from exc
    user = throttle.check_password(name, password, client=f"terminal:{_account()}")
    if user is None:
        raise NotLoggedIn("wrong user name or password")
    return user


def _account() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
