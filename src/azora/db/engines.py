"""Engines for the nine service databases, built on first use by an entry point.

SQLite connections run in WAL mode with foreign keys on; transactions start with
``BEGIN IMMEDIATE`` so a writer takes the write lock up front (no lock-upgrade
deadlocks) and DDL is transactional (a failed migration leaves nothing behind). Reads
take no lock: a connection of :func:`reading`'s engine begins with a plain ``BEGIN``,
a snapshot that never holds up a writer (nor waits for one).
PostgreSQL connections get a pool of ``AZORA_DB_POOL_SIZE``, a statement timeout and
an application name.

On PostgreSQL there are two kinds of engine per database. The application engine
(:meth:`Databases.engine`) logs in as ``AZORA_DB_APP_ROLE``, a role that owns no table
and cannot bypass row-level security, so every query it runs is policed (see
:mod:`azora.db.rls`). The owner engine (:meth:`Databases.owner_engine`) uses the
configured URL's own credentials and is for migrations and administration only.
On SQLite both are the same engine.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from azora.db.urls import DatabaseTarget, resolve_target
from azora.settings import Settings
from azora.types import ServiceName

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: The execution option that marks a connection as reading only (see :func:`reading`).
READS_ONLY = "azora_reads_only"


def reading(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for connections that only read: on SQLite their transactions take no
    write lock (a snapshot of the database as of their first read), so a long read
    never holds up the writers. Writing through one is a mistake (it may then fail with
    "database is locked"); PostgreSQL is unaffected."""
    return engine.execution_options(**{READS_ONLY: True})


def app_target(target: DatabaseTarget, settings: Settings) -> DatabaseTarget:
    """``target`` logged in as the application role (unchanged for SQLite)."""
    if target.backend == "sqlite":
        return target
    password = settings.db_app_password.get_secret_value() if settings.db_app_password else None
    return DatabaseTarget(
        target.service, target.url.set(username=settings.db_app_role, password=password)
    )


def build_engine(target: DatabaseTarget, settings: Settings, *, pooled: bool = True) -> AsyncEngine:
    """A new engine for ``target`` with its own credentials; the caller disposes of it.

    ``pooled=False`` opens a connection per use (for one-off administrative work).
    """
    pool_args: dict[str, Any] = (
        {
            "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow,
            "pool_timeout": settings.db_pool_timeout_s,
            "pool_recycle": 1800,
        }
        if pooled
        else {"poolclass": NullPool}
    )
    if target.backend == "sqlite":
        engine = create_async_engine(
            target.url,
            echo=settings.db_echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **pool_args,
        )
        _configure_sqlite(engine)
        return engine
    server_settings = {"application_name": f"azora-{target.service}"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return create_async_engine(
        target.url,
        echo=settings.db_echo,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            "server_settings": server_settings,
        },
        **pool_args,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (the driver's own BEGIN skips DDL).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        reads_only = connection.get_execution_options().get(READS_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")


class Databases:
    """The engines of the service databases under one settings object.

    Engines are created on first use and closed together by :meth:`aclose`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: dict[ServiceName, AsyncEngine] = {}
        self._owner_engines: dict[ServiceName, AsyncEngine] = {}

    def target(self, service: ServiceName) -> DatabaseTarget:
        """Where ``service``'s database lives.

        Raises:
            ConfigurationError: its URL is malformed.
        """
        return resolve_target(self.settings, service)

    def engine(self, service: ServiceName) -> AsyncEngine:
        """The shared, pooled application engine of ``service``'s database.

        On PostgreSQL it runs as ``AZORA_DB_APP_ROLE``: row-level security applies, so
        user-owned rows are visible only inside a unit of work that names their user
        (or runs as the service).
        """
        engine = self._engines.get(service)
        if engine is None:
            target = self.target(service)
            if target.backend == "sqlite":
                engine = self.owner_engine(service)
            else:
                engine = build_engine(app_target(target, self.settings), self.settings)
            self._engines[service] = engine
        return engine

    def owner_engine(self, service: ServiceName) -> AsyncEngine:
        """The engine with the configured URL's own credentials (the tables' owner).

        For migrations and administration; application code uses :meth:`engine`.
        """
        engine = self._owner_engines.get(service)
        if engine is None:
            engine = build_engine(self.target(service), self.settings)
            self._owner_engines[service] = engine
        return engine

    async def dispose(self, service: ServiceName) -> None:
        """Close ``service``'s pools (e.g. before its database is dropped)."""
        found = [engines.pop(service, None) for engines in (self._engines, self._owner_engines)]
        for engine in {id(e): e for e in found if e is not None}.values():
            await engine.dispose()

    async def aclose(self) -> None:
        """Dispose of every engine this object built."""
        engines = {id(e): e for e in [*self._engines.values(), *self._owner_engines.values()]}
        self._engines, self._owner_engines = {}, {}
        for engine in engines.values():
            await engine.dispose()

    async def __aenter__(self) -> Databases:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()
