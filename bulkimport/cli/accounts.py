"""Who may use the CLI: `bulkimport users`, `login`, `logout`, `whoami`."""

from __future__ import annotations

import getpass
import sys

from bulkimport import users
from bulkimport.cli.output import _who
from bulkimport.errors import BulkImportError


def cmd_user_token(args) -> int:
    if args.revoke:
        print(f"revoked {users.revoke_tokens(args.name)} token(s) of {args.name}")
        return 0
    token = users.create_token(args.name)
    print(
        f"a personal token for {args.name}; it is shown only this once. They use it with `bulkimport login`\n"
        "(or BULKIMPORT_TOKEN=..., or bi.login(...) in a notebook). "
        "Revoke: `bulkimport users token NAME --revoke`.",
        file=sys.stderr,
    )
    print(token)
    return 0


def cmd_user_list(args) -> int:
    for user in users.list_users():
        print(f"{user.name}\t{user.role}\t{','.join(user.brands)}")
    return 0


def cmd_user_remove(args) -> int:
    users.remove(args.name)
    print(f"removed {args.name}")
    return 0


def cmd_user_add(args) -> int:
    brands = [b.strip() for b in args.brands.split(",") if b.strip()]
    user = users.add(args.name, args.role, brands, _password(args))
    print(f"{user.name}: {user.role} of {', '.join(user.brands)}")
    return 0


def _password(args) -> str:
    """The new user's password: from standard input (--password-stdin, or no terminal), else asked for."""
    if args.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise BulkImportError(
                f"no password for {args.name}: without a terminal to ask on, give it on standard input "
                f"(echo PASSWORD | bulkimport users add {args.name} ... --password-stdin)"
            )
        return password
    try:
        return getpass.getpass(f"password for {args.name}: ")
    except EOFError:
        raise BulkImportError("no password given; use --password-stdin to read it from standard input") from None


def cmd_login(args) -> int:
    from bulkimport import auth

    if args.token_stdin:
        token = sys.stdin.readline().strip()
    else:
        try:
            token = getpass.getpass("paste your token (from `bulkimport users token NAME`): ").strip()
        except EOFError:
            token = ""
    if not token:
        raise BulkImportError("no token given; an admin creates one with `bulkimport users token NAME`")
    path = auth.save_token(token)
    user = auth.user_of_token(token)
    print(f"logged in as {user.name} ({user.role} of {', '.join(user.brands)}); token saved in {path}")
    return 0


def cmd_logout(args) -> int:
    from bulkimport import auth

    removed = auth.forget_token()
    print(f"token removed from {auth.token_file()}" if removed else "no saved token")
    return 0


def cmd_whoami(args) -> int:
    user = _who()
    print(f"{user.name}\t{user.role}\t{','.join(user.brands)}")
    return 0
