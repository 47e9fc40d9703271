"""Throwaway service databases for the tests: created, migrated, emptied and dropped here.

PostgreSQL databases are named ``azt_<random>_<service>`` on the server given by
``AZORA_TEST_POSTGRES_URL`` and never collide with development ones; SQLite databases
live in pytest's temporary directories.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from azora.catalog import SERVICES
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.settings import Settings
from azora.types import Environment


def new_prefix() -> str:
    """A database-name prefix no other test run uses."""
    return f"azt_{uuid.uuid4().hex[:12]}"


def settings_for(backend: str, *, data_dir: Path, prefix: str, pg_url: str | None) -> Settings:
    """Settings that point every service at throwaway databases of ``backend``."""
    if backend == "sqlite":
        return Settings(env=Environment.TEST, data_dir=data_dir)
    assert pg_url is not None
    return Settings(env=Environment.TEST, database_url=pg_url, db_name_prefix=prefix)


def _dsn(pg_url: str, database: str = "postgres") -> str:
    url = make_url(pg_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def ping_postgres(pg_url: str) -> None:
    """Connect once; raises when the server cannot be used."""
    connection = await asyncpg.connect(_dsn(pg_url), timeout=5)
    await connection.close()


async def drop_prefixed(pg_url: str, prefix: str) -> None:
    """Drop every database whose name starts with ``prefix_``."""
    connection = await asyncpg.connect(_dsn(pg_url), timeout=5)
    try:
        names = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "\\_%"
        )
        for row in names:
            await connection.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await connection.close()


async def setup_all(settings: Settings) -> None:
    """Create and migrate all nine databases."""
    async with Databases(settings) as databases:
        for spec in SERVICES.values():
            await lifecycle.setup(databases, spec.migrations)


async def truncate_all(settings: Settings) -> None:
    """Empty every table of the nine PostgreSQL databases (the schema stays)."""
    async with Databases(settings) as databases:
        for spec in SERVICES.values():
            tables = ", ".join(f'"{t.name}"' for t in spec.migrations.metadata.sorted_tables)
            async with databases.owner_engine(spec.name).begin() as connection:
                # The only place the append-only audit log is emptied: triggers off here.
                await connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
                await connection.exec_driver_sql(f"TRUNCATE {tables} CASCADE")


def copy_sqlite_files(template: Path, destination: Path) -> None:
    """Copy a migrated set of SQLite files (checkpointed, so the copy is complete)."""
    destination.mkdir(parents=True, exist_ok=True)
    for path in template.glob("*.db"):
        shutil.copyfile(path, destination / path.name)
