"""``azora db reset`` never leaves rows of other databases referring to nothing unasked."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Select, column, select, table, text

from azora.db.engines import Databases
from azora.db.scope import SERVICE, scoped_connection
from azora.references import REFERENCES, Reference
from azora.settings import Settings
from azora.types import ServiceName
from tests.cli.helpers import SERVICE_NAMES, assert_clean_failure, invoke, total_rows

DEPENDENTS_OF_AUTH = [name for name in SERVICE_NAMES if name != "auth"]


def _setup_and_seed() -> None:
    assert invoke("db", "setup").exit_code == 0
    assert invoke("db", "seed").exit_code == 0


def _orphans(settings: Settings) -> dict[str, int]:
    """Per reference, the rows whose id names no row of the referenced table."""

    async def ids(databases: Databases, service: ServiceName, query: Select[Any]) -> set[Any]:
        async with scoped_connection(databases.owner_engine(service), SERVICE) as connection:
            return set(await connection.scalars(query))

    async def missing(databases: Databases, ref: Reference) -> int:
        query: Select[Any] = select(column(ref.column)).select_from(table(ref.table))
        query = query.where(column(ref.column).is_not(None))
        if ref.where:
            query = query.where(text(ref.where))
        referring = await ids(databases, ref.service, query)
        existing = await ids(
            databases, ref.target, select(column("id")).select_from(table(ref.target_table))
        )
        return len(referring - existing)

    async def go() -> dict[str, int]:
        async with Databases(settings) as databases:
            return {
                f"{ref.service}.{ref.describe()}": await missing(databases, ref)
                for ref in REFERENCES
            }

    return {name: count for name, count in asyncio.run(go()).items() if count}


def test_the_seeded_databases_refer_only_to_rows_that_exist(cli_settings: Settings) -> None:
    _setup_and_seed()
    assert _orphans(cli_settings) == {}


def test_reset_auth_on_yes_is_refused_naming_the_rows_that_would_dangle(
    cli_settings: Settings,
) -> None:
    _setup_and_seed()
    rows = total_rows(cli_settings)
    result = invoke("db", "reset", "auth", "--yes")
    line = assert_clean_failure(result)
    assert line.startswith("error: not resetting auth: rows in ")
    assert "--cascade" in result.stderr
    assert "keep ids of rows in auth" in result.stdout
    listed = {line.split(":")[0].strip() for line in result.stdout.splitlines()[1:]}
    assert {"education", "mint", "forge", "sapiens"} <= listed <= set(DEPENDENTS_OF_AUTH)
    assert "wallets.user_id where kind = 'user' → auth.users" in result.stdout
    assert "reset to" not in result.stdout
    assert total_rows(cli_settings) == rows


def test_reset_auth_declined_at_the_warning_changes_nothing(cli_settings: Settings) -> None:
    _setup_and_seed()
    rows = total_rows(cli_settings)
    result = invoke("db", "reset", "auth", stdin="n\n")
    assert result.exit_code == 1, result.output
    assert "wallets.user_id" in result.stdout
    assert "leaving those rows referring to nothing?" in result.stdout
    assert "aborted; nothing was changed" in result.stderr
    assert total_rows(cli_settings) == rows


def test_reset_auth_confirmed_at_the_warning_resets_auth_alone(cli_settings: Settings) -> None:
    _setup_and_seed()
    rows_elsewhere = total_rows(cli_settings, skip=ServiceName.AUTH)
    result = invoke("db", "reset", "auth", stdin="y\n")
    assert result.exit_code == 0, result.output
    assert "auth: reset to" in result.stdout
    assert "mint: reset to" not in result.stdout
    assert total_rows(cli_settings, skip=ServiceName.AUTH) == rows_elsewhere
    assert "mint.wallets.user_id where kind = 'user'" in _orphans(cli_settings)


def test_reset_auth_cascade_resets_every_database_that_keeps_user_ids(
    cli_settings: Settings,
) -> None:
    _setup_and_seed()
    result = invoke("db", "reset", "auth", "--cascade", "--yes")
    assert result.exit_code == 0, result.output
    for name in SERVICE_NAMES:
        assert f"{name}: reset to" in result.stdout
    assert "warning" not in result.stdout
    assert total_rows(cli_settings) == 0

    assert invoke("db", "seed").exit_code == 0
    assert _orphans(cli_settings) == {}


def test_reset_of_a_database_nobody_refers_to_goes_ahead(cli_settings: Settings) -> None:
    _setup_and_seed()
    result = invoke("db", "reset", "health", "--yes")
    assert result.exit_code == 0, result.output
    assert "health: reset to" in result.stdout
    assert "warning" not in result.stdout
