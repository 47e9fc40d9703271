"""``azora db ...`` and ``azora up`` against real databases on both backends."""

from __future__ import annotations

import secrets

import pytest

from azora.catalog import SERVICES
from azora.settings import Settings
from azora.types import ServiceName
from tests.cli.helpers import (
    SERVICE_NAMES,
    assert_clean_failure,
    downgrade_to_base,
    execute_sql,
    invoke,
    table_row,
    total_rows,
)


def _setup(settings: Settings) -> None:
    result = invoke("db", "setup")
    assert result.exit_code == 0, result.output


def _seed() -> int:
    """Seed through the CLI; returns the created count of the table's total row."""
    result = invoke("db", "seed")
    assert result.exit_code == 0, result.output
    assert "Rows per database" in result.stdout
    cells = [c.strip() for c in table_row(result.stdout, "total").strip("│").split("│")]
    assert cells[0] == "total"
    return int(cells[2])


def test_setup_creates_and_migrates_all_then_has_nothing_to_do(cli_settings: Settings) -> None:
    first = invoke("db", "setup")
    assert first.exit_code == 0, first.output
    for name in SERVICE_NAMES:
        assert f"{name}: created and migrated - → 0001" in first.stdout
    assert "nothing to do" not in first.stdout

    second = invoke("db", "setup")
    assert second.exit_code == 0, second.output
    assert "nothing to do: all 9 databases exist and are at head" in second.stdout
    assert "created and migrated" not in second.stdout


def test_seed_creates_rows_once(cli_settings: Settings) -> None:
    _setup(cli_settings)
    first = invoke("db", "seed")
    assert first.exit_code == 0, first.output
    assert "Rows per database" in first.stdout
    assert "rows created" in first.stdout
    for name in SERVICE_NAMES:
        table_row(first.stdout, name)
    rows = total_rows(cli_settings)
    assert rows > 0

    assert _seed() == 0
    assert total_rows(cli_settings) == rows
    again = invoke("db", "seed")
    assert "nothing to do" in again.stdout


def test_status_is_up_to_date_after_setup(cli_settings: Settings) -> None:
    _setup(cli_settings)
    result = invoke("db", "status")
    assert result.exit_code == 0, result.output
    for name in SERVICE_NAMES:
        assert "up to date" in table_row(result.stdout, name)


def test_status_fails_when_migrations_are_pending(cli_settings: Settings) -> None:
    _setup(cli_settings)
    downgrade_to_base(cli_settings, ServiceName.HEALTH)
    result = invoke("db", "status")
    assert result.exit_code == 1, result.output
    assert "migrations pending" in table_row(result.stdout, "health")
    assert "up to date" in table_row(result.stdout, "auth")


def test_status_fails_on_drift(cli_settings: Settings) -> None:
    _setup(cli_settings)
    execute_sql(cli_settings, ServiceName.HEALTH, "ALTER TABLE logs ADD COLUMN surprise INTEGER")
    result = invoke("db", "status")
    assert result.exit_code == 1, result.output
    row = table_row(result.stdout, "health")
    assert "drift:" in row
    assert "surprise" in row
    assert "up to date" in table_row(result.stdout, "mint")


def test_health_is_up_after_setup(cli_settings: Settings) -> None:
    _setup(cli_settings)
    result = invoke("db", "health")
    assert result.exit_code == 0, result.output
    assert "Database health" in result.stdout
    for name in SERVICE_NAMES:
        cells = [c.strip() for c in table_row(result.stdout, name).strip("│").split("│")]
        assert cells[2] == "up", cells
        assert cells[4] == cells[5] == "0001", cells


def test_health_reports_databases_not_created(cli_settings: Settings) -> None:
    result = invoke("db", "health")
    assert result.exit_code == 1, result.output
    expected = "not created yet" if cli_settings.database_url is None else "does not exist"
    for name in SERVICE_NAMES:
        row = table_row(result.stdout, name)
        assert "down" in row
        assert expected in row


def test_health_reports_an_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_DATABASE_URL", "postgresql://postgres@127.0.0.1:1")
    result = invoke("db", "health")
    assert result.exit_code == 1, result.output
    for name in SERVICE_NAMES:
        row = table_row(result.stdout, name)
        assert "down" in row
        assert "connection refused" in row


def test_migrate_on_a_missing_database_suggests_setup(cli_settings: Settings) -> None:
    result = invoke("db", "migrate", "health")
    line = assert_clean_failure(result)
    assert "health database" in line
    assert "does not exist" in line
    assert "azora db setup" in result.stderr


def test_reset_yes_drops_and_recreates(cli_settings: Settings) -> None:
    _setup(cli_settings)
    assert _seed() > 0
    result = invoke("db", "reset", "--yes")
    assert result.exit_code == 0, result.output
    for name in SERVICE_NAMES:
        assert f"{name}: reset to 0001" in result.stdout
    assert total_rows(cli_settings) == 0
    assert _seed() > 0


def test_reset_declined_at_the_prompt_changes_nothing(cli_settings: Settings) -> None:
    _setup(cli_settings)
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
    _setup(cli_settings)
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
        assert "│ up " in table_row(result.stdout.split("Database health")[1], name)
    assert total_rows(cli_settings) > 0
