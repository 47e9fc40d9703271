"""Each service's migration history builds, rolls back and guards its database.

Every test works on its own databases (``fresh_settings``) because it changes the schema.
Services are migrated one after another: Alembic's ``op`` and ``context`` are
process-wide proxies.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, text

from azora.catalog import SERVICES
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.db.errors import DatabaseNotMigrated, MigrationFailed, UnknownRevision
from azora.db.migrate import (
    MigrationSource,
    current_revision,
    downgrade,
    drift,
    head_revision,
    upgrade,
)
from azora.db.seeding import count_rows, run_seeds
from azora.settings import Settings
from azora.types import ServiceName

HEALTH = SERVICES[ServiceName.HEALTH].migrations

BROKEN_REVISION = '''"""create a table, then fail half-way"""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute("THIS IS NOT SQL")


def downgrade() -> None:
    op.drop_table("half_done")
'''


@pytest.fixture
async def fresh(fresh_settings: Settings) -> AsyncIterator[Databases]:
    """Engines for nine databases that do not exist yet."""
    async with Databases(fresh_settings) as databases:
        yield databases


async def _set_up(databases: Databases, *sources: MigrationSource) -> None:
    for source in sources or [spec.migrations for spec in SERVICES.values()]:
        await lifecycle.setup(databases, source)


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _tables(databases: Databases, service: ServiceName) -> set[str]:
    async with databases.owner_engine(service).connect() as connection:
        return await connection.run_sync(_table_names)


async def test_setup_from_empty_reaches_head_without_drift(fresh: Databases) -> None:
    await _set_up(fresh)
    for spec in SERVICES.values():
        engine = fresh.owner_engine(spec.name)
        assert await current_revision(engine) == head_revision(spec.migrations), spec.name
        assert await drift(engine, spec.migrations) == [], spec.name


async def test_downgrade_to_base_empties_the_schema_and_upgrade_rebuilds_it(
    fresh: Databases,
) -> None:
    await _set_up(fresh)
    for spec in SERVICES.values():
        engine = fresh.owner_engine(spec.name)
        await downgrade(engine, spec.migrations, "base")
        assert await _tables(fresh, spec.name) == {"alembic_version"}, spec.name
        assert await current_revision(engine) is None
        await upgrade(engine, spec.migrations)
        assert await drift(engine, spec.migrations) == [], spec.name


async def test_a_failing_migration_leaves_the_database_as_it_was(
    fresh: Databases, tmp_path: Path
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    for script in HEALTH.versions.glob("*.py"):
        shutil.copy(script, versions)
    broken_revision = BROKEN_REVISION.replace("{head}", head_revision(HEALTH))
    (versions / "9999_broken.py").write_text(broken_revision, encoding="utf-8")
    broken = MigrationSource(HEALTH.service, HEALTH.metadata, versions)
    await _set_up(fresh, HEALTH)
    engine = fresh.owner_engine(ServiceName.HEALTH)
    tables_before = await _tables(fresh, ServiceName.HEALTH)

    with pytest.raises(MigrationFailed, match=r"health database failed.*syntax error"):
        await upgrade(engine, broken)

    assert await current_revision(engine) == head_revision(HEALTH)
    assert "half_done" not in await _tables(fresh, ServiceName.HEALTH)
    assert await _tables(fresh, ServiceName.HEALTH) == tables_before


async def test_a_revision_this_release_does_not_know_is_refused(fresh: Databases) -> None:
    await _set_up(fresh, HEALTH)
    async with fresh.owner_engine(ServiceName.HEALTH).begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))

    with pytest.raises(UnknownRevision) as refused:
        await lifecycle.migrate(fresh, HEALTH)

    assert "health" in refused.value.message
    assert "ffffffffffff" in refused.value.message
    assert await current_revision(fresh.owner_engine(ServiceName.HEALTH)) == "ffffffffffff"


async def test_status_reports_a_column_the_models_do_not_have(fresh: Databases) -> None:
    await _set_up(fresh, HEALTH)
    async with fresh.owner_engine(ServiceName.HEALTH).begin() as connection:
        await connection.execute(text("ALTER TABLE logs ADD COLUMN surprise INTEGER"))

    report = await lifecycle.status(fresh, HEALTH)

    assert not report.pending
    assert any("surprise" in line for line in report.drift), report.drift
    assert not report.ok


async def test_status_reports_pending_migrations_of_a_database_behind_head(
    fresh: Databases,
) -> None:
    await _set_up(fresh, HEALTH)
    await downgrade(fresh.owner_engine(ServiceName.HEALTH), HEALTH, "base")

    report = await lifecycle.status(fresh, HEALTH)

    assert report.current is None
    assert report.head == head_revision(HEALTH)
    assert report.pending
    assert not report.ok


async def test_seeding_refuses_an_unmigrated_database_before_writing_anything(
    fresh: Databases,
) -> None:
    await _set_up(fresh)
    mint = SERVICES[ServiceName.MINT].migrations
    await downgrade(fresh.owner_engine(ServiceName.MINT), mint, "base")
    plan = [(spec.migrations, spec.seed_development) for spec in SERVICES.values()]

    with pytest.raises(DatabaseNotMigrated, match="mint"):
        await run_seeds(fresh, plan, production=False)

    async with fresh.owner_engine(ServiceName.AUTH).connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM users")) == 0
    for spec in SERVICES.values():
        if spec.name is not ServiceName.MINT:
            assert await count_rows(fresh, spec.migrations) == 0, spec.name
