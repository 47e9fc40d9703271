"""Write audit rows behind the sealer's back, and tamper with them behind the guard's."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from azora.db.columns import utcnow
from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.infra import AUDIT_TABLE
from azora.db.scope import SERVICE, apply_scope
from azora.types import ServiceName


def audit_row(action: str = "test.action", **values: Any) -> dict[str, Any]:
    """The columns of one unsealed audit row, as a writer inserts them."""
    row: dict[str, Any] = {
        "id": new_id(),
        "user_id": None,
        "action": action,
        "resource": "thing",
        "resource_id": None,
        "ip": None,
        "user_agent": None,
        "metadata": {},
        "created_at": utcnow(),
    }
    row.update(values)
    return row


async def insert_rows(
    databases: Databases, service: ServiceName, rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows`` through the application engine, without a unit of work (so no
    sealer is poked and they stay unsealed)."""
    async with databases.engine(service).begin() as connection:
        await connection.execute(insert(AUDIT_TABLE), rows)


async def append(databases: Databases, service: ServiceName, count: int) -> list[uuid.UUID]:
    """Insert ``count`` unsealed rows, a microsecond apart; returns their ids in order."""
    start = utcnow()
    rows = [
        audit_row(f"test.{i}", created_at=start + dt.timedelta(microseconds=i))
        for i in range(count)
    ]
    await insert_rows(databases, service, rows)
    return [row["id"] for row in rows]


async def chain(databases: Databases, service: ServiceName) -> list[tuple[Any, ...]]:
    """``(seq, id, prev_hash, row_hash)`` of every sealed row, in ``seq`` order."""
    log = AUDIT_TABLE.c
    async with databases.engine(service).begin() as connection:
        await apply_scope(connection, SERVICE)
        result = await connection.execute(
            select(log.seq, log.id, log.prev_hash, log.row_hash)
            .where(log.seq.is_not(None))
            .order_by(log.seq)
        )
        return [tuple(row) for row in result]


@asynccontextmanager
async def guard_off(databases: Databases, service: ServiceName) -> AsyncIterator[AsyncConnection]:
    """A transaction of the tables' owner in which the append-only guard does not fire.

    PostgreSQL: ``session_replication_role = replica`` (a superuser's privilege) skips
    the triggers. SQLite: the triggers are dropped and put back before the commit.
    """
    async with databases.owner_engine(service).begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            await apply_scope(connection, SERVICE)
            yield connection
            return
        result = await connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_logs'"
        )
        triggers = [(row["name"], row["sql"]) for row in result.mappings()]
        assert triggers, "the audit log has no guard to switch off"
        for name, _ in triggers:
            await connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
        yield connection
        for _, sql in triggers:
            await connection.exec_driver_sql(sql)
