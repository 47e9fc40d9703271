"""Reading a database's outbox in tests (as the tables' owner, past row-level security)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from azora.db.engines import Databases
from azora.db.infra import OUTBOX_TABLE
from azora.types import ServiceName


async def outbox_rows(databases: Databases, service: ServiceName) -> list[dict[str, Any]]:
    """Every row of ``service``'s ``outbox_events``, oldest first."""
    async with databases.owner_engine(service).connect() as connection:
        rows = await connection.execute(select(OUTBOX_TABLE).order_by(OUTBOX_TABLE.c.id))
        return [dict(row._mapping) for row in rows]
