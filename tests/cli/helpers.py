"""Drive the ``azora`` command line in-process, and reach into its databases directly."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner, Result

from azora.catalog import SERVICES
from azora.cli.app import app
from azora.db.engines import Databases
from azora.db.migrate import downgrade
from azora.db.seeding import count_rows
from azora.settings import Settings, get_settings
from azora.types import ServiceName

SERVICE_NAMES: tuple[str, ...] = tuple(str(name) for name in SERVICES)


def invoke(*args: str, stdin: str | None = None) -> Result:
    """Run ``azora <args>`` as a fresh process would: settings are read again."""
    get_settings.cache_clear()
    return CliRunner().invoke(app, list(args), input=stdin)


def assert_clean_failure(result: Result) -> str:
    """Exit 1 through the CLI's own error path: one ``error:`` line (plus a hint), no bug.

    Returns the error line.
    """
    # A bug escapes as the exception itself; a handled error as typer.Exit -> SystemExit.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines, result.output
    assert lines[0].startswith("error: "), result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr
    assert len(lines) <= 2, result.stderr
    return lines[0]


def table_row(output: str, service: str) -> str:
    """The line of a rendered table whose first cell is ``service``."""
    rows = [line for line in output.splitlines() if line.startswith(f"│ {service} ")]
    assert len(rows) == 1, f"no single row for {service!r} in:\n{output}"
    return rows[0]


def execute_sql(settings: Settings, service: ServiceName, sql: str) -> None:
    """Run one statement in ``service``'s database, committed."""

    async def go() -> None:
        async with Databases(settings) as databases:
            async with databases.engine(service).begin() as connection:
                await connection.exec_driver_sql(sql)

    asyncio.run(go())


def downgrade_to_base(settings: Settings, service: ServiceName) -> None:
    """Roll ``service``'s database back to an empty schema with the library."""

    async def go() -> None:
        async with Databases(settings) as databases:
            await downgrade(databases.engine(service), SERVICES[service].migrations)

    asyncio.run(go())


def total_rows(settings: Settings) -> int:
    """Rows in every model table of the nine databases together."""

    async def go() -> int:
        async with Databases(settings) as databases:
            return sum([await count_rows(databases, spec.migrations) for spec in SERVICES.values()])

    return asyncio.run(go())
