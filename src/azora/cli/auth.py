"""``azora auth``: operator tasks on accounts (set a password, e.g. the studio admin's)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from azora.auth.service import AuthService
from azora.catalog import SERVICES
from azora.cli.runner import console, fail, run
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.errors import InvalidInput
from azora.types import ServiceName

app = typer.Typer(help="Operator tasks on accounts.", no_args_is_help=True)


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or asked twice on the terminal
    (never an argument, which other users of the machine could read)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        fail(
            InvalidInput(
                "no terminal to ask the new password on",
                hint="pipe it in and pass --password-stdin",
            )
        )
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    if not password:
        fail(InvalidInput("the new password is empty", hint="send one line with the password"))
    return password


@app.command("set-password")
def set_password(
    email: Annotated[str, typer.Argument(help="The account's email address.")],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the new password from standard input."),
    ] = False,
) -> None:
    """Set (or reset) an account's password; its sessions are signed out and a lockout is
    lifted. The password is asked for, or read from standard input, never shown."""
    password = _read_password(password_stdin)

    async def job(databases: Databases) -> int:
        await lifecycle.require_head(databases, SERVICES[ServiceName.AUTH].migrations)
        return await AuthService(databases).set_password(email, password)

    revoked = run(job)
    console.print(f"password set for {email.strip().lower()}; {revoked} session(s) signed out")
