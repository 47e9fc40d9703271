"""``azora audit seal`` and ``azora audit verify`` against real databases on both backends."""

from __future__ import annotations

import asyncio
import uuid

from azora.db.engines import Databases
from azora.settings import Settings
from azora.types import ServiceName
from tests.cli.helpers import SERVICE_NAMES, assert_clean_failure, flat, invoke, read_table
from tests.db.audit_helpers import append, guard_off


def _append(settings: Settings, service: ServiceName, count: int) -> list[uuid.UUID]:
    async def go() -> list[uuid.UUID]:
        async with Databases(settings) as databases:
            return await append(databases, service, count)

    return asyncio.run(go())


def _tamper(settings: Settings, service: ServiceName, sql: str) -> None:
    async def go() -> None:
        async with Databases(settings) as databases, guard_off(databases, service) as connection:
            await connection.exec_driver_sql(sql)

    asyncio.run(go())


def test_seal_then_verify_passes_and_a_row_changed_behind_the_guard_is_named(
    cli_settings: Settings,
) -> None:
    assert invoke("db", "setup").exit_code == 0
    ids = _append(cli_settings, ServiceName.AUTH, 3)
    _append(cli_settings, ServiceName.MINT, 2)

    sealed = invoke("audit", "seal")
    assert sealed.exit_code == 0, sealed.output
    assert "auth: sealed 3 rows" in sealed.stdout
    assert "mint: sealed 2 rows" in sealed.stdout
    clean = invoke("audit", "verify")
    assert clean.exit_code == 0, clean.output
    chains = read_table(clean.stdout, "Audit chains")
    assert set(chains) == set(SERVICE_NAMES)
    assert {row["status"] for row in chains.values()} == {"ok"}
    assert (chains["auth"]["rows"], chains["auth"]["sealed"]) == ("3", "3")

    _tamper(cli_settings, ServiceName.AUTH, "UPDATE audit_logs SET ip = '10.0.0.1' WHERE seq = 2")
    broken = invoke("audit", "verify")

    assert broken.exit_code == 1, broken.output
    chains = read_table(broken.stdout, "Audit chains")
    assert chains["auth"]["status"] == "broken at seq 2"
    assert chains["mint"]["status"] == "ok"
    assert f"auth: seq 2, row {ids[1]}: row content changed" in flat(broken.stdout)


def test_verify_reports_a_deleted_row_and_checks_only_the_services_named(
    cli_settings: Settings,
) -> None:
    assert invoke("db", "setup").exit_code == 0
    ids = _append(cli_settings, ServiceName.FORGE, 3)
    assert invoke("audit", "seal", "forge").exit_code == 0
    _tamper(cli_settings, ServiceName.FORGE, "DELETE FROM audit_logs WHERE seq = 1")

    broken = invoke("audit", "verify", "forge", "health")

    assert broken.exit_code == 1, broken.output
    assert set(read_table(broken.stdout, "Audit chains")) == {"forge", "health"}
    assert f"forge: seq 2, row {ids[1]}: row missing before seq 2" in flat(broken.stdout)


def test_unsealed_rows_are_reported_but_are_not_a_failure(cli_settings: Settings) -> None:
    assert invoke("db", "setup").exit_code == 0
    _append(cli_settings, ServiceName.NEXUS, 4)

    result = invoke("audit", "verify", "nexus")

    assert result.exit_code == 0, result.output
    row = read_table(result.stdout, "Audit chains")["nexus"]
    assert (row["rows"], row["sealed"], row["unsealed"], row["status"]) == ("4", "0", "4", "ok")


def test_audit_commands_on_an_unmigrated_database_are_a_readable_error(
    cli_settings: Settings,
) -> None:
    assert "not exist" in assert_clean_failure(invoke("audit", "verify"))
    assert "not exist" in assert_clean_failure(invoke("audit", "seal", "mint"))


def test_an_unknown_service_is_a_readable_error(cli_settings: Settings) -> None:
    assert "unknown service" in assert_clean_failure(invoke("audit", "verify", "ledger"))
