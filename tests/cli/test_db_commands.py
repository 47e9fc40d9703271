"""``azora db ...`` and ``azora up`` against real databases on both backends."""

from __future__ import annotations

import re
import secrets

import pytest

from azora.catalog import SERVICES
from azora.db.migrate import head_revision
from azora.settings import Settings
from azora.types import ServiceName
from tests.cli.helpers import (
    SERVICE_NAMES,
    assert_clean_failure,
    downgrade_to_base,
    execute_sql,
    flat,
    invoke,
    read_rows,
    read_table,
    total_rows,
)

#: The seed table's columns: every row a database holds, and the rows one seed run added.
ROWS, ADDED = "rows (all tables)", "added by this seed"


def _head(service: str) -> str | None:
    return head_revision(SERVICES[ServiceName(service)].migrations)


def _setup() -> None:
    result = invoke("db", "setup")
    assert result.exit_code == 0, result.output


def _seed() -> tuple[int, str]:
    """Seed through the CLI; returns the total row's created count, and the output."""
    result = invoke("db", "seed")
    assert result.exit_code == 0, result.output
    assert "Rows per database" in result.stdout
    table = read_table(result.stdout, "Rows per database")
    assert set(table) == {*SERVICE_NAMES, "total"}
    return int(table["total"][ADDED]), result.stdout


def test_setup_creates_and_migrates_all_then_has_nothing_to_do(cli_settings: Settings) -> None:
    first = invoke("db", "setup")
    assert first.exit_code == 0, first.output
    for name in SERVICE_NAMES:
        assert f"{name}: created and migrated - → {_head(name)}" in first.stdout
    assert "nothing to do" not in first.stdout

    second = invoke("db", "setup")
    assert second.exit_code == 0, second.output
    assert "nothing to do: all 9 databases exist and are at head" in second.stdout
    assert "created and migrated" not in second.stdout


def test_seed_creates_rows_once(cli_settings: Settings) -> None:
    _setup()
    created, output = _seed()
    assert "rows created" in output
    rows = total_rows(cli_settings)
    assert created == rows > 0

    created, output = _seed()
    assert created == 0
    assert "nothing to do" in output
    assert total_rows(cli_settings) == rows


def _status() -> tuple[int, dict[str, str]]:
    """``azora db status``: its exit code and each database's state."""
    result = invoke("db", "status")
    table = read_table(result.stdout, "Migration status")
    assert set(table) == set(SERVICE_NAMES), result.output
    return result.exit_code, {name: row["state"] for name, row in table.items()}


def test_status_is_up_to_date_after_setup(cli_settings: Settings) -> None:
    _setup()
    code, states = _status()
    assert code == 0
    assert all(state == "up to date" for state in states.values()), states


def test_status_fails_when_migrations_are_pending(cli_settings: Settings) -> None:
    _setup()
    downgrade_to_base(cli_settings, ServiceName.HEALTH)
    code, states = _status()
    assert code == 1
    assert states.pop("health").startswith("migrations pending")
    assert all(state == "up to date" for state in states.values()), states


def test_status_fails_on_drift(cli_settings: Settings) -> None:
    _setup()
    execute_sql(cli_settings, ServiceName.HEALTH, "ALTER TABLE logs ADD COLUMN surprise INTEGER")
    code, states = _status()
    assert code == 1
    health = states.pop("health")
    assert health.startswith("drift:")
    assert "surprise" in health
    assert all(state == "up to date" for state in states.values()), states


def _health() -> tuple[int, dict[str, dict[str, str]], str]:
    """``azora db health``: its exit code, its rows, and its whole output on one line."""
    result = invoke("db", "health")
    table = read_table(result.stdout, "Database health")
    assert set(table) == set(SERVICE_NAMES), result.output
    return result.exit_code, table, flat(result.stdout)


def test_health_is_up_after_setup(cli_settings: Settings) -> None:
    _setup()
    code, table, _ = _health()
    assert code == 0
    for name, row in table.items():
        assert row["status"] == "up", row
        assert row["revision"] == _head(name), row


def test_health_reports_databases_not_created(cli_settings: Settings) -> None:
    code, table, text = _health()
    assert code == 1
    assert all(row["status"].startswith("down") for row in table.values()), table
    if cli_settings.database_url is None:
        assert text.count("not created yet") == len(SERVICE_NAMES), text
    else:
        for name in SERVICE_NAMES:
            assert re.search(rf"the {name} database at \S+ does not exist", text), text


def test_health_reports_an_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_DATABASE_URL", "postgresql://postgres@127.0.0.1:1")
    code, table, text = _health()
    assert code == 1
    assert all(row["status"].startswith("down") for row in table.values()), table
    for name in SERVICE_NAMES:
        assert f"cannot reach the {name} database at" in text
    assert text.count("connection refused") == len(SERVICE_NAMES), text


def test_migrate_on_a_missing_database_suggests_setup(cli_settings: Settings) -> None:
    result = invoke("db", "migrate", "health")
    line = assert_clean_failure(result)
    assert "health database" in line
    assert "does not exist" in line
    assert "azora db setup" in result.stderr


def test_reset_yes_drops_and_recreates(cli_settings: Settings) -> None:
    _setup()
    assert _seed()[0] > 0
    result = invoke("db", "reset", "--yes")
    assert result.exit_code == 0, result.output
    for name in SERVICE_NAMES:
        assert f"{name}: reset to {_head(name)}" in result.stdout
    assert total_rows(cli_settings) == 0
    created, output = _seed()
    assert created > 0
    assert "rows created" in output


def test_reset_declined_at_the_prompt_changes_nothing(cli_settings: Settings) -> None:
    _setup()
    _seed()
    rows = total_rows(cli_settings)
    result = invoke("db", "reset", stdin="n\n")
    assert result.exit_code == 1, result.output
    assert "Drop and recreate" in result.stdout
    assert "aborted" in result.stderr
    assert total_rows(cli_settings) == rows


def test_reset_is_refused_in_production(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup()
    _seed()
    rows = total_rows(cli_settings)
    monkeypatch.setenv("AZORA_ENV", "production")
    monkeypatch.setenv("AZORA_JWT_SECRET", secrets.token_hex(20))
    monkeypatch.setenv("AZORA_ENCRYPTION_KEY", secrets.token_hex(20))
    result = invoke("db", "reset", "--yes")
    line = assert_clean_failure(result)
    assert "production" in line
    assert "reset to" not in result.stdout
    assert total_rows(cli_settings) == rows


def test_makemigrations_without_model_changes_writes_nothing(cli_settings: Settings) -> None:
    versions = SERVICES[ServiceName.HEALTH].migrations.versions

    def listing() -> set[str]:
        return {p.name for p in versions.iterdir() if p.name != "__pycache__"}

    before = listing()
    result = invoke("db", "makemigrations", "health", "-m", "x")
    assert result.exit_code == 0, result.output
    assert "health: no changes" in result.stdout
    assert listing() == before


def test_up_sets_up_seeds_and_reports(cli_settings: Settings) -> None:
    result = invoke("up")
    assert result.exit_code == 0, result.output
    if cli_settings.database_url is None:
        assert f"on embedded SQLite in {cli_settings.data_dir}" in result.stdout
    else:
        assert "on PostgreSQL" in result.stdout
    assert "Rows per database" in result.stdout
    assert "rows created" in result.stdout
    assert "Database health" in result.stdout
    for name in SERVICE_NAMES:
        assert f"{name}: created and migrated" in result.stdout
    health = read_table(result.stdout, "Database health")
    assert set(health) == set(SERVICE_NAMES)
    assert all(row["status"] == "up" for row in health.values()), health
    seeded = read_table(result.stdout, "Rows per database")
    assert int(seeded["total"][ROWS]) == int(seeded["total"][ADDED]) > 0
    assert total_rows(cli_settings) > 0


def _production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_ENV", "production")
    monkeypatch.setenv("AZORA_JWT_SECRET", secrets.token_hex(20))
    monkeypatch.setenv("AZORA_ENCRYPTION_KEY", secrets.token_hex(20))


def _user_emails(settings: Settings) -> list[str]:
    return [row["email"] for row in read_rows(settings, ServiceName.AUTH, "users")]


def test_up_in_production_loads_the_production_seed_only(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _production(monkeypatch)
    result = invoke("up")
    assert result.exit_code == 0, result.output
    assert "loading the production seed only" in result.stdout
    assert "seeded the production set" in result.stdout
    assert "development" not in result.stdout
    assert _user_emails(cli_settings) == []
    # The production set is there: the system wallets of the mint.
    assert read_rows(cli_settings, ServiceName.MINT, "wallets")


def test_the_development_seed_is_refused_in_production_and_writes_nothing(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup()
    _production(monkeypatch)
    line = assert_clean_failure(invoke("db", "seed"))
    assert "development seed" in line
    assert "production" in line
    assert total_rows(cli_settings) == 0
    result = invoke("db", "seed", "--prod")
    assert result.exit_code == 0, result.output
    assert _user_emails(cli_settings) == []
