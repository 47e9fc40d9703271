"""Operator workflows on service databases: set up, migrate, inspect, reset.

Each function works on one database and reports what it did; the command line runs
them for the services asked for and renders the reports. Driver and network failures
come out as :class:`~azora.db.errors.DatabaseError` with a readable message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError

from azora.db.admin import create_database, database_exists, drop_database, explain
from azora.db.engines import Databases
from azora.db.errors import DatabaseMissing, DatabaseNotMigrated, OperationRefused
from azora.db.migrate import (
    MigrationResult,
    MigrationSource,
    check_known,
    current_revision,
    drift,
    head_revision,
    upgrade,
)
from azora.db.rls import prepare_app_role
from azora.errors import AzoraError
from azora.types import Environment


@asynccontextmanager
async def explained(databases: Databases, source: MigrationSource) -> AsyncIterator[None]:
    """Re-raise driver and network failures inside the block as readable errors."""
    try:
        yield
    except AzoraError:
        raise
    except (DBAPIError, OSError, TimeoutError) as exc:
        raise explain(exc, databases.target(source.service)) from exc


@dataclass(frozen=True)
class SetupReport:
    """What ``setup`` did to one database."""

    created: bool
    migration: MigrationResult

    @property
    def changed(self) -> bool:
        """True when the database was created or migrated."""
        return self.created or self.migration.changed


async def setup(databases: Databases, source: MigrationSource) -> SetupReport:
    """Create the database if missing, migrate it to head and give the application role
    (``AZORA_DB_APP_ROLE``, created when missing) its privileges; idempotent.

    Raises:
        DatabaseError: unreachable server, refused login, unknown revision, failed migration.
    """
    async with explained(databases, source):
        created = await create_database(databases.target(source.service), databases.settings)
        owner = databases.owner_engine(source.service)
        result = await upgrade(owner, source)
        await prepare_app_role(owner, databases.settings)
    return SetupReport(created, result)


async def _require_exists(databases: Databases, source: MigrationSource) -> None:
    target = databases.target(source.service)
    if not await database_exists(target, databases.settings):
        raise DatabaseMissing(
            f"the {source.service} database at {target.display} does not exist",
            hint="run `azora db setup` to create it",
        )


async def migrate(databases: Databases, source: MigrationSource) -> MigrationResult:
    """Apply pending migrations to an existing database and renew the application
    role's privileges (new tables included).

    Raises:
        DatabaseMissing: the database has not been created (``azora db setup`` does).
        DatabaseError: unreachable server, unknown revision, failed migration.
    """
    async with explained(databases, source):
        await _require_exists(databases, source)
        owner = databases.owner_engine(source.service)
        result = await upgrade(owner, source)
        await prepare_app_role(owner, databases.settings)
        return result


@dataclass(frozen=True)
class StatusReport:
    """One database's revision and drift."""

    current: str | None
    head: str | None
    drift: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """True when migrations remain to apply."""
        return self.current != self.head

    @property
    def ok(self) -> bool:
        """True when at head with no drift."""
        return not self.pending and not self.drift


async def status(databases: Databases, source: MigrationSource) -> StatusReport:
    """The database's revision against the history's head, and drift from the models.

    Drift is only computed at head (before it, the pending migrations are the difference).

    Raises:
        DatabaseMissing: the database has not been created.
        DatabaseError: unreachable server, or a revision this release does not know.
    """
    async with explained(databases, source):
        await _require_exists(databases, source)
        engine = databases.owner_engine(source.service)
        current = await current_revision(engine)
        check_known(source, current)
        head = head_revision(source)
        differences = await drift(engine, source) if current == head else []
    return StatusReport(current, head, differences)


async def require_head(databases: Databases, source: MigrationSource) -> None:
    """Make sure the database exists and is fully migrated.

    Raises:
        DatabaseMissing, DatabaseNotMigrated: with the command that fixes it.
    """
    async with explained(databases, source):
        await _require_exists(databases, source)
        current = await current_revision(databases.owner_engine(source.service))
    head = head_revision(source)
    if current != head:
        raise DatabaseNotMigrated(
            f"the {source.service} database is not migrated"
            f" (at {current or 'an empty schema'}, head is {head})",
            hint="run `azora db setup` (or `azora db migrate`) first",
        )


async def reset(databases: Databases, source: MigrationSource) -> SetupReport:
    """Drop the database and set it up again from empty. Destroys its data.

    Raises:
        OperationRefused: ``AZORA_ENV=production``.
        DatabaseError: unreachable server, refused login, failed migration.
    """
    if databases.settings.env is Environment.PRODUCTION:
        raise OperationRefused(
            "refusing to reset databases when AZORA_ENV=production",
            hint="reset is for development; restore a backup in production",
        )
    target = databases.target(source.service)
    async with explained(databases, source):
        await databases.dispose(source.service)
        await drop_database(target, databases.settings)
    return await setup(databases, source)
