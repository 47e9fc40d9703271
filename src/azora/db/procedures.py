"""Server-side functions that are a whole unit of work, called in one round trip.

A hot operation whose transaction is one PL/pgSQL function (installed by a migration)
needs neither ``BEGIN`` nor ``COMMIT`` as round trips of their own: a single statement
outside an explicit transaction is atomic by itself. When :func:`call_function` returns,
everything the function wrote is committed; when it raises, nothing is. The function
writes its own outbox and audit rows (handed to it by the caller, see
:func:`azora.db.outbox.events_json`), so the unit of work's guarantees hold: the event
exists if and only if the change committed. PostgreSQL only.

The call goes through the service engine's pool on the asyncpg connection under it,
which caches the prepared statement per connection.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import asyncpg
from asyncpg import Record

from azora.db.engines import Databases
from azora.types import ServiceName

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class FunctionError(Exception):
    """The function (or a constraint it hit) refused: nothing it did was kept."""

    def __init__(self, sqlstate: str, message: str, constraint: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.constraint = constraint


@functools.cache
def _statement(name: str, arity: int) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a function name: {name!r}")
    placeholders = ", ".join(f"${i}" for i in range(1, arity + 1))
    return f"SELECT * FROM {name}({placeholders})"


async def call_function(
    databases: Databases, service: ServiceName, name: str, *args: Any
) -> list[Record]:
    """Run ``name(*args)`` on ``service``'s PostgreSQL database as one atomic statement.

    Returns the rows the function returned (it committed).

    Raises:
        FunctionError: the function raised, or a constraint refused a write; SQLSTATE
            40001/40P01 (serialization failure, deadlock) are among them, for the caller
            to retry. Nothing was written.
        ValueError: ``name`` is not a plain lower-case identifier.
    """
    statement = _statement(name, len(args))
    async with databases.engine(service).connect() as connection:
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        try:
            rows: list[Record] = await driver.fetch(statement, *args)
        except asyncpg.PostgresError as exc:
            raise FunctionError(
                str(exc.sqlstate),
                str(getattr(exc, "message", exc)),
                getattr(exc, "constraint_name", None),
            ) from exc
    return rows
