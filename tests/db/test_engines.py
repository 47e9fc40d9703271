"""Engines apply the configured connection behaviour on each backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from azora.db.engines import Databases, build_engine
from azora.db.urls import DatabaseTarget, parse_url
from azora.settings import Settings
from azora.types import Environment, ServiceName


def _postgres_target(postgres_url: str) -> DatabaseTarget:
    return DatabaseTarget(ServiceName.MINT, parse_url(postgres_url, variable="test"))


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    settings = Settings(env=Environment.TEST, data_dir=tmp_path)
    databases = Databases(settings)
    try:
        async with databases.engine(ServiceName.AUTH).connect() as connection:
            assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
            assert await connection.scalar(text("PRAGMA busy_timeout")) == 30_000
    finally:
        await databases.aclose()


async def test_postgres_sessions_get_the_statement_timeout_and_a_name(postgres_url: str) -> None:
    settings = Settings(env=Environment.TEST, db_statement_timeout_ms=1234)
    engine = build_engine(_postgres_target(postgres_url), settings)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SHOW statement_timeout")) == "1234ms"
            assert await connection.scalar(text("SHOW application_name")) == "azora-mint"
    finally:
        await engine.dispose()


async def test_a_statement_over_the_timeout_is_cancelled(postgres_url: str) -> None:
    settings = Settings(env=Environment.TEST, db_statement_timeout_ms=50)
    engine = build_engine(_postgres_target(postgres_url), settings)
    try:
        async with engine.connect() as connection:
            with pytest.raises(Exception, match="statement timeout"):
                await connection.execute(text("SELECT pg_sleep(2)"))
    finally:
        await engine.dispose()


async def test_the_pool_holds_the_configured_number_of_connections(
    migrated_settings: Settings,
) -> None:
    settings = migrated_settings.model_copy(
        update={"db_pool_size": 3, "db_max_overflow": 0, "db_pool_timeout_s": 0.2}
    )
    async with Databases(settings) as databases:
        engine = databases.engine(ServiceName.FORGE)
        connections = [await engine.connect() for _ in range(3)]
        try:
            assert "Pool size: 3" in engine.pool.status()
            with pytest.raises(Exception, match="QueuePool limit"):
                await engine.connect()  # a fourth waits for the pool timeout, then fails
        finally:
            for connection in connections:
                await connection.close()
