"""How every command runs: settings, databases, one event loop, readable failures.

An :class:`~azora.errors.AzoraError` becomes one red line (plus a hint) on stderr and
exit code 1; Ctrl-C exits 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from azora.catalog import SERVICES, ServiceSpec, select_services
from azora.db.engines import Databases
from azora.errors import AzoraError
from azora.settings import Settings, get_settings

T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def fail(error: AzoraError) -> NoReturn:
    """Print ``error`` as one readable line (and its hint) and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {escape(error.message)}")
    if error.hint:
        err_console.print(f"[dim]hint:[/] {escape(error.hint)}")
    raise typer.Exit(EXIT_ERROR)


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
