"""Create, find and drop service databases (PostgreSQL databases or SQLite files), and
check that the application role can log in to them."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from azora.db.engines import app_target, build_engine
from azora.db.errors import (
    DatabaseError,
    app_login_refusal,
    explain_connection_error,
    explain_damage,
)
from azora.db.urls import DatabaseTarget
from azora.settings import Settings

_MAINTENANCE_DATABASES = ("postgres", "template1")


def explain(exc: BaseException, target: DatabaseTarget) -> DatabaseError:
    """The readable error for a failure to use ``target`` (a generic one if unknown)."""
    known = explain_damage(
        exc, service=target.service, where=target.display
    ) or explain_connection_error(exc, service=target.service, where=target.display)
    if known is not None:
        return known
    orig = getattr(exc, "orig", None)
    detail = str(orig if orig is not None else exc).strip().splitlines() or [type(exc).__name__]
    return DatabaseError(f"the {target.service} database at {target.display} failed: {detail[0]}")


async def _maintenance_engine(target: DatabaseTarget, settings: Settings) -> AsyncEngine:
    """An autocommit engine on the server's maintenance database."""
    last: BaseException | None = None
    for name in _MAINTENANCE_DATABASES:
        engine = build_engine(target.with_database(name), settings, pooled=False)
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return engine
        except (OperationalError, InterfaceError, DBAPIError, OSError) as exc:
            await engine.dispose()
            last = exc
            known = explain_connection_error(exc, service=target.service, where=target.display)
            if known is not None and known.code != "database_missing":
                raise known from None
    assert last is not None
    raise explain(last, target) from None


async def database_exists(target: DatabaseTarget, settings: Settings) -> bool:
    """True when ``target``'s database (or SQLite file) exists.

    Raises:
        DatabaseError: the server cannot be reached or refuses the login.
    """
    if target.backend == "sqlite":
        return target.sqlite_path.exists()
    engine = await _maintenance_engine(target, settings)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            )
    finally:
        await engine.dispose()
    return found is not None


async def create_database(target: DatabaseTarget, settings: Settings) -> bool:
    """Create ``target``'s database if missing; returns whether it was created.

    Raises:
        DatabaseError: the server cannot be reached or refuses the login.
    """
    if target.backend == "sqlite":
        existed = target.sqlite_path.exists()
        target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return not existed
    if await database_exists(target, settings):
        return False
    engine = await _maintenance_engine(target, settings)
    try:
        quoted = engine.dialect.identifier_preparer.quote(target.database)
        async with engine.connect() as connection:
            await connection.execute(text(f"CREATE DATABASE {quoted}"))
    except DBAPIError as exc:
        if "already exists" in str(exc):  # created concurrently by another process
            return False
        raise explain(exc, target) from exc
    finally:
        await engine.dispose()
    return True


async def drop_database(target: DatabaseTarget, settings: Settings) -> bool:
    """Drop ``target``'s database (disconnecting its sessions); returns whether it existed.

    Raises:
        DatabaseError: the server cannot be reached or refuses the login.
    """
    if target.backend == "sqlite":
        existed = target.sqlite_path.exists()
        for suffix in ("", "-wal", "-shm", "-journal"):
            target.sqlite_path.with_name(target.sqlite_path.name + suffix).unlink(missing_ok=True)
        return existed
    engine = await _maintenance_engine(target, settings)
    try:
        quoted = engine.dialect.identifier_preparer.quote(target.database)
        async with engine.connect() as connection:
            result = await connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            if result.scalar() is None:
                return False
            await connection.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    finally:
        await engine.dispose()
    return True


async def check_app_login(target: DatabaseTarget, settings: Settings) -> None:
    """Make sure the application role will be able to log in to ``target`` (PostgreSQL).

    Checked when ``AZORA_DB_APP_PASSWORD`` is unset, before set-up writes anything: the
    role is then created without a password, which only a server that lets it in without
    one (trust or peer authentication) accepts. So this logs in as the role with no
    password: a server that asks for one (it does so even before the role exists) is
    refused here rather than after set-up, when the application first connects.

    Raises:
        ConfigurationError: the server asks the role for a password, or refuses it.
    """
    if target.backend != "postgresql" or settings.db_app_password is not None:
        return
    app = app_target(target, settings)
    engine = build_engine(app, settings, pooled=False)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (DBAPIError, OSError) as exc:
        refusal = app_login_refusal(exc, role=settings.db_app_role, where=app.display)
        if refusal is not None:
            raise refusal from None
    finally:
        await engine.dispose()
