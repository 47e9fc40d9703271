"""One row per user in every table of a service database, for the row-level security tests.

Rows are filled from the models: owner columns get the user's id, foreign keys point at
the same user's row of the parent table (made first), every other required column gets
a plain value of its type. They are written as the owner, past the policies.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    MetaData,
    Numeric,
    Table,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from azora.db.ids import new_id
from azora.db.rls import OWNER_COLUMNS

_SKIP = {"alembic_version", "outbox_events", "audit_logs"}


def _value(table: Table, column: Any, owner: uuid.UUID, made: dict[str, dict[str, Any]]) -> Any:
    if table.name == "users" and column.name == "id":
        return owner  # the auth database's users: the row is the user
    for fk in column.foreign_keys:
        parent = fk.column.table.name
        return made[parent][fk.column.name]
    if column.name in OWNER_COLUMNS:
        return owner
    kind = column.type
    if isinstance(kind, TypeDecorator):  # money, UTC time: by what they store
        kind = kind.impl_instance
    if isinstance(kind, Enum):
        return kind.enums[0]
    if isinstance(kind, Uuid):
        return new_id()
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return 1
    if isinstance(kind, Float):
        return 1.0
    if isinstance(kind, Numeric):
        return Decimal("1")
    if isinstance(kind, DateTime):
        return dt.datetime.now(dt.UTC)
    if isinstance(kind, Date):
        return dt.date(2000, 1, 1)
    python_type = _python_type(kind)
    if python_type is list:
        return []
    if python_type is dict or isinstance(kind, JSON):
        return {}
    value = f"{column.name}-{uuid.uuid4().hex}"
    return value[: kind.length] if getattr(kind, "length", None) else value


def _python_type(kind: Any) -> type | None:
    try:
        result: type = kind.python_type
    except NotImplementedError:
        return None
    return result


def _needed(column: Any) -> bool:
    if column.name in OWNER_COLUMNS or column.foreign_keys:
        return True
    return not column.nullable and column.server_default is None


def _with_parents(metadata: MetaData, tables: set[str]) -> set[str]:
    wanted, todo = set(), list(tables)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(fk.column.table.name for fk in metadata.tables[name].foreign_keys)
    return wanted


async def rows_for(
    owner_engine: AsyncEngine, metadata: MetaData, user: uuid.UUID
) -> dict[str, dict[str, Any]]:
    """Insert a row owned by ``user`` into every table that names a user, and into the
    parents those rows need; returns each table's row by table name."""
    owned = {t.name for t in metadata.sorted_tables if OWNER_COLUMNS & set(t.columns.keys())}
    wanted = _with_parents(metadata, owned)
    # Children of user-owned tables (ledger entries of a wallet, say) are owned too.
    for table in metadata.sorted_tables:
        if {fk.column.table.name for fk in table.foreign_keys} & owned:
            wanted |= _with_parents(metadata, {table.name})
    made: dict[str, dict[str, Any]] = {}
    async with owner_engine.begin() as connection:
        for table in metadata.sorted_tables:
            if table.name in _SKIP or table.name not in wanted:
                continue
            row = {c.name: _value(table, c, user, made) for c in table.columns if _needed(c)}
            await connection.execute(table.insert().values(**row))
            made[table.name] = row
    return made
