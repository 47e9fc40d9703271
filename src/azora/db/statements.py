"""Core statements inside a unit of work's transaction, without ORM overhead."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import Executable


async def core_execute(
    session: AsyncSession, statement: Executable, parameters: Any = None
) -> Result[Any]:
    """Execute a Core statement on the session's connection (same transaction).

    Skips the ORM's statement handling, which hot paths that write with plain
    INSERT/UPDATE statements do not need. A list of parameter dicts runs as executemany.
    """
    connection = await session.connection()
    return await connection.execute(statement, parameters)


@functools.cache
def _skipping_insert(dialect: str, table: Table, conflict: tuple[str, ...]) -> Insert:
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement: Insert = builder(table).on_conflict_do_nothing(index_elements=list(conflict))
    return statement


def insert_or_skip(
    session: AsyncSession, model: Any, conflict: Sequence[str], **values: Any
) -> Executable:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING`` on the session's backend.

    Its result's ``rowcount`` is 1 when the row was inserted, 0 when it already existed.
    """
    base = _skipping_insert(session.get_bind().dialect.name, model.__table__, tuple(conflict))
    return base.values(**values)
