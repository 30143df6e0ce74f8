"""`xrm users ...`: the console's users (add, list, passwd).

The lead registers it: ``app.add_typer(_users.users_app, name="users")``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["users_app"]

users_app = typer.Typer(help="Console users: roles admin, marketer, viewer; language de or en.",
                        no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
PasswordOpt = Annotated[
    str | None,
    typer.Option("--password", help="The password (at least 10 characters); asked for when left out.",
                 envvar="XRM_NEW_PASSWORD"),
]


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name: lower-case letters, digits, . _ @ -.")],
    role: Annotated[str, typer.Option("--role", help="admin, marketer or viewer.")] = "viewer",
    lang: Annotated[str, typer.Option("--lang", help="Console language: de or en.")] = "de",
    password: PasswordOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a console user."""
    with fail_cleanly(as_json):
        from xrm.store import Store
        from xrm.web import add_user

        secret = _password(password)
        with Store.open(state(ctx).settings()) as store:
            user = add_user(store, username, secret, role=role, lang=lang)
        emit({"username": user.username, "role": user.role, "lang": user.lang}, as_json,
             lambda d: console.print(f"created {d['username']} ({d['role']}, {d['lang']})", highlight=False))


@users_app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the console users with role and language."""
    with fail_cleanly(as_json):
        from xrm.store import Store
        from xrm.web import list_users

        with Store.open(state(ctx).settings()) as store:
            users = [{"username": u.username, "role": u.role, "lang": u.lang, "disabled": u.disabled}
                     for u in list_users(store)]

        def render(rows: list[dict[str, object]]) -> None:
            table = Table("user", "role", "lang", "disabled")
            for r in rows:
                disabled = "yes" if r["disabled"] else ""
                table.add_row(str(r["username"]), str(r["role"]), str(r["lang"]), disabled)
            console.print(table)

        emit(users, as_json, render)


@users_app.command("passwd")
def passwd(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user whose password changes.")],
    password: PasswordOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a user's password; the user's open sessions end."""
    with fail_cleanly(as_json):
        from xrm.store import Store
        from xrm.web import set_password

        secret = _password(password)
        with Store.open(state(ctx).settings()) as store:
            user = set_password(store, username, secret)
        emit({"username": user.username, "changed": True}, as_json,
             lambda d: console.print(f"password of {d['username']} changed", highlight=False))
