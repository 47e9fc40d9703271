"""Engines for the nine service databases, built on first use by an entry point.

SQLite connections run in WAL mode with foreign keys on; transactions start with
``BEGIN IMMEDIATE`` so a writer takes the write lock up front (no lock-upgrade
deadlocks) and DDL is transactional (a failed migration leaves nothing behind).
PostgreSQL connections get a pool of ``AZORA_DB_POOL_SIZE``, a statement timeout and
an application name.
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


def build_engine(target: DatabaseTarget, settings: Settings, *, pooled: bool = True) -> AsyncEngine:
    """A new engine for ``target``; the caller disposes of it.

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
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Databases:
    """The engines of the service databases under one settings object.

    Engines are created on first use and closed together by :meth:`aclose`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: dict[ServiceName, AsyncEngine] = {}

    def target(self, service: ServiceName) -> DatabaseTarget:
        """Where ``service``'s database lives.

        Raises:
            ConfigurationError: its URL is malformed.
        """
        return resolve_target(self.settings, service)

    def engine(self, service: ServiceName) -> AsyncEngine:
        """The shared, pooled engine of ``service``'s database."""
        engine = self._engines.get(service)
        if engine is None:
            engine = self._engines[service] = build_engine(self.target(service), self.settings)
        return engine

    async def dispose(self, service: ServiceName) -> None:
        """Close ``service``'s pool (e.g. before its database is dropped)."""
        engine = self._engines.pop(service, None)
        if engine is not None:
            await engine.dispose()

    async def aclose(self) -> None:
        """Dispose of every engine this object built."""
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            await engine.dispose()

    async def __aenter__(self) -> Databases:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()
