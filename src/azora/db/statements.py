"""Running Core statements inside a unit of work's transaction, without ORM overhead."""

from __future__ import annotations

from typing import Any

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
