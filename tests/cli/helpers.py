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


def read_table(output: str, title: str) -> dict[str, dict[str, str]]:
    """The rows of the table titled ``title``: first cell -> column header -> cell text."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == title), None)
    assert start is not None, f"no table {title!r} in:\n{output}"
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("┃"))
    columns = [c.strip() for c in lines[header].strip("┃").split("┃")]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[header + 1 :]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            assert cells[0], f"a wrapped row in {title!r}:\n{output}"
            rows[cells[0]] = dict(zip(columns, cells, strict=True))
    return rows


def flat(text: str) -> str:
    """``text`` with every run of whitespace (including line wraps) as one space."""
    return " ".join(text.split())


def execute_sql(settings: Settings, service: ServiceName, sql: str) -> None:
    """Run one statement in ``service``'s database, committed."""

    async def go() -> None:
        async with (
            Databases(settings) as databases,
            databases.owner_engine(service).begin() as conn,
        ):
            await conn.exec_driver_sql(sql)

    asyncio.run(go())


def downgrade_to_base(settings: Settings, service: ServiceName) -> None:
    """Roll ``service``'s database back to an empty schema with the library."""

    async def go() -> None:
        async with Databases(settings) as databases:
            await downgrade(databases.owner_engine(service), SERVICES[service].migrations)

    asyncio.run(go())


def total_rows(settings: Settings, *, skip: ServiceName | None = None) -> int:
    """Rows in every model table of the nine databases (but ``skip``) together."""

    async def go() -> int:
        async with Databases(settings) as databases:
            return sum(
                [
                    await count_rows(databases, spec.migrations)
                    for spec in SERVICES.values()
                    if spec.name != skip
                ]
            )

    return asyncio.run(go())


def read_rows(settings: Settings, service: ServiceName, table: str) -> list[dict[str, object]]:
    """Every row of ``table`` in ``service``'s database, read as its owner."""

    async def go() -> list[dict[str, object]]:
        async with (
            Databases(settings) as databases,
            databases.owner_engine(service).connect() as conn,
        ):
            result = await conn.exec_driver_sql(f'SELECT * FROM "{table}"')
            return [dict(row._mapping) for row in result]

    return asyncio.run(go())
