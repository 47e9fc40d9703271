"""Database health: reachable, how fast, and at which revision — per service database.

The CLI's ``azora db health`` and the HTTP API's health endpoint both call
:func:`check_databases`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from azora.db.admin import explain
from azora.db.engines import Databases
from azora.db.migrate import MigrationSource, current_revision, head_revision
from azora.types import ServiceName


@dataclass(frozen=True)
class DatabaseHealth:
    """The health of one service database at one moment."""

    service: ServiceName
    backend: str
    location: str
    up: bool
    latency_ms: float | None
    revision: str | None
    head: str | None
    error: str | None = None

    @property
    def migrated(self) -> bool:
        """True when the database is reachable and at the head revision."""
        return self.up and self.revision == self.head


async def _round_trip_ms(connection: AsyncConnection, samples: int = 3) -> float:
    best = float("inf")
    for _ in range(samples):
        started = time.perf_counter()
        await connection.execute(text("SELECT 1"))
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


async def check_database(
    databases: Databases, source: MigrationSource, *, timeout_s: float = 5.0
) -> DatabaseHealth:
    """Probe one database; never raises for an unhealthy database.

    ``latency_ms`` is the fastest of three ``SELECT 1`` round trips on an open
    connection (the fastest, so concurrent checks do not inflate each other).
    """
    target = databases.target(source.service)
    head = head_revision(source)

    def down(error: str) -> DatabaseHealth:
        return DatabaseHealth(
            source.service, target.backend, target.short, False, None, None, head, error
        )

    if target.backend == "sqlite" and not target.sqlite_path.exists():
        return down("not created yet: run `azora db setup`")
    engine = databases.engine(source.service)
    try:
        async with asyncio.timeout(timeout_s):
            async with engine.connect() as connection:
                latency_ms = await _round_trip_ms(connection)
            revision = await current_revision(engine)
    except TimeoutError:
        return down(f"no answer within {timeout_s:g} s")
    except Exception as exc:  # any failure here is the answer, reported not raised
        return down(explain(exc, target).message)
    return DatabaseHealth(
        source.service, target.backend, target.short, True, latency_ms, revision, head
    )


async def check_databases(
    databases: Databases, sources: Sequence[MigrationSource], *, timeout_s: float = 5.0
) -> list[DatabaseHealth]:
    """Probe the given databases concurrently; results keep the order of ``sources``."""
    return list(
        await asyncio.gather(*(check_database(databases, s, timeout_s=timeout_s) for s in sources))
    )
