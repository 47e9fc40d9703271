"""``azora db health`` checks integrity: a damaged database is reported as damaged, with
the way to recover, and every command that meets it says so in one line."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from pathlib import Path

import pytest

from azora.db.engines import Databases
from azora.settings import Settings
from azora.types import ServiceName
from tests.cli.helpers import SERVICE_NAMES, assert_clean_failure, flat, invoke, read_table

only_sqlite = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
only_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def _health(*services: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """``azora db health``: its exit code, its rows, and its whole output on one line."""
    result = invoke("db", "health", *services)
    table = read_table(result.stdout, "Database health")
    assert set(table) == set(services or SERVICE_NAMES), result.output
    return result.exit_code, table, flat(result.stdout)


def _damage_table(path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` in a SQLite file with garbage (not a page type)."""
    with sqlite3.connect(path) as connection:
        (root,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        (page_size,) = connection.execute("PRAGMA page_size").fetchone()
    connection.close()
    with path.open("r+b") as file:
        file.seek(page_size * (root - 1))
        file.write((b"garbage!" * page_size)[:page_size])


def _expected_integrity(settings: Settings) -> str:
    """What a healthy database's integrity check says on this backend and server."""
    if settings.database_url is None:
        return "ok"

    async def checksums() -> str:
        async with (
            Databases(settings) as databases,
            databases.owner_engine(ServiceName.HEALTH).connect() as connection,
        ):
            return str((await connection.exec_driver_sql("SHOW data_checksums")).scalar())

    on = asyncio.run(checksums()) == "on"
    return "ok (data checksums)" if on else "not checked (no data checksums)"


def test_health_reports_the_integrity_check_of_healthy_databases(cli_settings: Settings) -> None:
    assert invoke("db", "setup").exit_code == 0
    code, table, _ = _health()
    assert code == 0
    expected = _expected_integrity(cli_settings)
    assert {row["integrity"] for row in table.values()} == {expected}, table


@only_sqlite
def test_health_reports_a_damaged_page_as_damaged_with_the_recovery(
    cli_settings: Settings,
) -> None:
    assert invoke("db", "setup").exit_code == 0
    assert invoke("db", "seed").exit_code == 0
    _damage_table(cli_settings.data_dir / "mint.db", "wallets")

    code, table, text = _health()
    assert code == 1
    assert table.pop("mint")["status"] == "damaged"
    assert all(row["status"] == "up" for row in table.values()), table
    assert "mint: the mint database at" in text
    assert "is damaged" in text
    assert "restore it from a backup" in text
    assert "azora db reset mint" in text

    line = assert_clean_failure(invoke("mint", "verify"))
    assert "the mint database at" in line
    assert "is damaged" in line


@only_sqlite
def test_a_file_that_is_not_a_database_is_named_so_by_every_command(
    cli_settings: Settings,
) -> None:
    assert invoke("db", "setup").exit_code == 0
    path = cli_settings.data_dir / "health.db"
    path.write_text("notes, not a database\n")

    code, table, text = _health("health")
    assert code == 1
    assert table["health"]["status"] == "damaged"
    assert f"{path} is not an SQLite database" in text
    for args in (["db", "setup", "health"], ["db", "migrate", "health"], ["up"]):
        result = invoke(*args)
        line = assert_clean_failure(result)
        assert f"{path} is not an SQLite database" in line, args
        assert "rolled back" not in line
        assert "azora db reset health" in result.stderr
    assert path.read_text() == "notes, not a database\n"


@only_postgresql
def test_health_before_setup_says_the_databases_do_not_exist_yet(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Neither the databases nor the application role exist yet.
    monkeypatch.setenv("AZORA_DB_APP_ROLE", f"azt_role_{uuid.uuid4().hex[:12]}")
    code, table, text = _health()
    assert code == 1
    assert all(row["status"] == "down" for row in table.values()), table
    for name in SERVICE_NAMES:
        pattern = rf"{name}: the {name} database at postgresql://\S+ does not exist yet"
        assert re.search(pattern, text), text
    assert text.count("run `azora db setup`") == len(SERVICE_NAMES), text
    assert "azt_role_" not in text
    assert "role" not in text


@only_postgresql
def test_health_names_the_application_role_when_it_cannot_log_in(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("db", "setup").exit_code == 0
    role = f"azt_role_{uuid.uuid4().hex[:12]}"  # never created
    monkeypatch.setenv("AZORA_DB_APP_ROLE", role)
    code, table, text = _health("health")
    assert code == 1
    assert table["health"]["status"] == "down"
    assert f"postgresql://{role}@" in text  # the role's own URL, not the owner's
    assert f'role "{role}" does not exist' in text
    assert "azora db setup" in text
