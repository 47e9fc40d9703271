"""Hot single-row reads (a cache's loader) at close to the driver's own speed.

    BY_ID = RowQuery(select(User.id, User.email).where(User.id == bindparam("user_id")))
    row = await BY_ID.fetch(databases, ServiceName.AUTH, user_id=some_id)

On PostgreSQL the statement is compiled once per dialect and runs as a prepared
statement on the asyncpg connection under the engine's pool: no ORM, no result
processing and no ``BEGIN``/``ROLLBACK`` round trips (a single ``SELECT`` outside a
transaction sees one committed snapshot). Elsewhere it runs through SQLAlchemy Core.
Values are what the driver returns (a ``str`` for an enumeration column, say), so the
caller validates the row into its pydantic view, which converts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.engine import Dialect

from azora.db.engines import Databases, reading
from azora.types import ServiceName


class RowQuery:
    """A ``SELECT`` of at most one row with named bind parameters (see the module docs)."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...]]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            sql = self._statement.compile(dialect=dialect)
            compiled = self._compiled[dialect.name] = (str(sql), tuple(sql.positiontup or ()))
        return compiled

    async def fetch(
        self, databases: Databases, service: ServiceName, **params: Any
    ) -> Mapping[str, Any] | None:
        """The first row for ``params`` as a column-name mapping, or None.

        Raises:
            KeyError: a bind parameter of the statement is missing from ``params``.
        """
        engine = databases.engine(service)
        sql, names = self._for(engine.dialect)
        missing = [name for name in names if name not in params]
        if missing:
            raise KeyError(f"no value for the bind parameter(s) {', '.join(missing)}")
        async with reading(engine).connect() as connection:
            if engine.dialect.name != "postgresql":
                row = (await connection.execute(self._statement, params)).first()
                return None if row is None else dict(row._mapping)
            raw = await connection.get_raw_connection()
            driver: asyncpg.Connection = raw.driver_connection
            record = await driver.fetchrow(sql, *(params[name] for name in names))
            return None if record is None else dict(record.items())
