"""How every command runs: settings, databases, one event loop, readable failures.

An :class:`~azora.errors.AzoraError` becomes one red line (plus a hint) on stderr and
exit code 1; Ctrl-C exits 130. Anything else is a bug: the entry point
(:func:`azora.cli.app.main`) reports it with :func:`report_bug` as one line naming the
file that holds its traceback, never the traceback itself.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from azora.catalog import SERVICES, ServiceSpec, select_services
from azora.db.engines import Databases
from azora.db.urls import mask_passwords
from azora.errors import AzoraError
from azora.settings import Settings, get_settings

T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def report(error: AzoraError) -> int:
    """Print ``error`` as one readable line (and its hint) on stderr; returns the exit code."""
    err_console.print(f"[bold red]error:[/] {escape(mask_passwords(error.message))}")
    if error.hint:
        err_console.print(f"[dim]hint:[/] {escape(error.hint)}")
    return EXIT_ERROR


def fail(error: AzoraError) -> NoReturn:
    """Print ``error`` as one readable line (and its hint) and exit non-zero."""
    raise typer.Exit(report(error))


def report_bug(exc: BaseException) -> int:
    """Report an unexpected exception (a bug) as one line on stderr, with its traceback
    written to a new private file in the temporary directory; returns the exit code.

    Passwords in URLs are masked, in the line and in the file.
    """
    trace = mask_passwords("".join(traceback.format_exception(exc)))
    try:
        handle, path = tempfile.mkstemp(prefix="azora-error-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(trace)
        where = f"the traceback is in {path}"
    except OSError as error:
        where = f"its traceback could not be saved ({error.strerror})"
    lines = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    err_console.print(f"[bold red]error:[/] internal error: {escape(mask_passwords(detail))}")
    err_console.print(f"[dim]hint:[/] this is a bug in azora; {escape(where)}")
    return EXIT_ERROR


#: The optional list of services a command acts on (all nine when none is named).
ServicesArg = Annotated[
    list[str] | None,
    typer.Argument(help=f"Services to act on (default: all). One of: {', '.join(SERVICES)}."),
]


def selected(names: list[str] | None) -> list[ServiceSpec]:
    """The services ``names`` (all of them when empty), or a readable exit for an unknown one."""
    try:
        return select_services(names or [])
    except AzoraError as error:
        fail(error)


def settings() -> Settings:
    """The configured settings, or a readable exit when they are invalid."""
    try:
        return get_settings()
    except AzoraError as error:
        fail(error)


def run(
    job: Callable[[Databases], Awaitable[T]],
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run ``job`` with the configured databases on a fresh event loop, then close them.

    ``loop_factory`` picks the loop (long-running commands pass
    :func:`azora.loop.serving_loop`'s); asyncio's own by default.
    """

    async def main() -> T:
        async with Databases(settings()) as databases:
            return await job(databases)

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main())
    except AzoraError as error:
        fail(error)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
