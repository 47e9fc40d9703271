"""Reading a database's outbox in tests (as the tables' owner, past row-level security)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from azora.db.engines import Databases
from azora.db.infra import OUTBOX_TABLE
from azora.types import ServiceName


async def outbox_rows(databases: Databases, service: ServiceName) -> list[dict[str, Any]]:
    """Every row of ``service``'s ``outbox_events``, oldest first."""
    async with databases.owner_engine(service).connect() as connection:
        rows = await connection.execute(select(OUTBOX_TABLE).order_by(OUTBOX_TABLE.c.id))
        return [dict(row._mapping) for row in rows]


async def unpublished(databases: Databases, service: ServiceName) -> int:
    """How many rows of ``service``'s outbox the relay has not published yet."""
    async with databases.owner_engine(service).connect() as connection:
        count: Any = await connection.scalar(
            select(func.count())
            .select_from(OUTBOX_TABLE)
            .where(OUTBOX_TABLE.c.published_at.is_(None))
        )
        return int(count)
