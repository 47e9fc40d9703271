"""Operator workflows on service databases: set up, migrate, inspect, reset (and find
what a reset would leave referring to nothing).

Each function works on one database and reports what it did; the command line runs
them for the services asked for and renders the reports. Driver and network failures
come out as :class:`~azora.db.errors.DatabaseError` with a readable message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import column, func, select, table, text
from sqlalchemy.exc import DBAPIError

from azora.db.admin import (
    check_app_login,
    create_database,
    database_exists,
    drop_database,
    explain,
)
from azora.db.engines import Databases
from azora.db.errors import (
    DatabaseMissing,
    DatabaseNotMigrated,
    MigrationFailed,
    OperationRefused,
    explain_damage,
)
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
from azora.db.scope import SERVICE, scoped_connection
from azora.errors import AzoraError
from azora.references import Reference, referring_to
from azora.types import Environment, ServiceName


@asynccontextmanager
async def explained(databases: Databases, source: MigrationSource) -> AsyncIterator[None]:
    """Re-raise driver and network failures inside the block as readable errors.

    A migration that failed because the database is damaged says so, not that the
    migration failed.
    """
    async with _explained(databases, source.service):
        yield


@asynccontextmanager
async def _explained(databases: Databases, service: ServiceName) -> AsyncIterator[None]:
    try:
        yield
    except MigrationFailed as error:
        target = databases.target(service)
        damage = explain_damage(error, service=service, where=target.display)
        if damage is None:
            raise
        raise damage from error
    except AzoraError:
        raise
    except (DBAPIError, OSError, TimeoutError) as exc:
        raise explain(exc, databases.target(service)) from exc


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

    On PostgreSQL without ``AZORA_DB_APP_PASSWORD``, the server must let the role in
    without a password; that is checked first, before anything is written.

    Raises:
        ConfigurationError: the server asks the application role for a password that is
            not configured (or refuses the role).
        DatabaseDamaged: the database (file) is damaged or not a database at all.
        DatabaseError: unreachable server, refused login, unknown revision, failed migration.
    """
    async with explained(databases, source):
        target = databases.target(source.service)
        await check_app_login(target, databases.settings)
        created = await create_database(target, databases.settings)
        owner = databases.owner_engine(source.service)
        await current_revision(owner)  # a damaged file says so here, not as a failed upgrade
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
        ConfigurationError: as for :func:`setup`, the application role cannot log in.
        DatabaseDamaged: the database (file) is damaged or not a database at all.
        DatabaseError: unreachable server, unknown revision, failed migration.
    """
    async with explained(databases, source):
        await _require_exists(databases, source)
        await check_app_login(databases.target(source.service), databases.settings)
        owner = databases.owner_engine(source.service)
        await current_revision(owner)  # a damaged file says so here, not as a failed upgrade
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

    Rows of other databases that keep ids of its rows stay as they are, referring to
    nothing: :func:`dangling` finds them first.

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


@dataclass(frozen=True)
class Dangling:
    """Rows of one database that keep ids of another's rows (see :mod:`azora.references`)."""

    reference: Reference
    rows: int


async def dangling(databases: Databases, resetting: Collection[ServiceName]) -> list[Dangling]:
    """The rows outside ``resetting`` that keep ids of rows inside it: what would refer to
    nothing once those databases are reset. Only references with such rows are listed;
    a database not created yet, or with an empty schema, holds none. Reads only.

    Raises:
        DatabaseError: a database cannot be read.
    """
    found: list[Dangling] = []
    readable: dict[ServiceName, bool] = {}
    for reference in referring_to(resetting):
        service = reference.service
        async with _explained(databases, service):
            if service not in readable:
                exists = await database_exists(databases.target(service), databases.settings)
                engine = databases.owner_engine(service)
                readable[service] = exists and await current_revision(engine) is not None
            if not readable[service]:
                continue
            query = (
                select(func.count())
                .select_from(table(reference.table))
                .where(column(reference.column).is_not(None))
            )
            if reference.where:
                query = query.where(text(reference.where))
            async with scoped_connection(databases.owner_engine(service), SERVICE) as connection:
                rows = await connection.scalar(query)
        if rows:
            found.append(Dangling(reference, int(rows)))
    return found
