"""Whose rows a transaction may touch: the context row-level security checks.

On PostgreSQL the policies of every user-owned table (installed by the services'
security migrations, see :mod:`azora.db.rls`) compare each row's owner with two
transaction-local settings:

- ``azora.user_id``: the user the transaction acts for; only that user's rows are
  visible and writable;
- ``azora.service``: ``on`` for the service's own cross-user work (UBI, sagas, admin
  tools, seeds), which sees every row.

Both are set with ``set_config(..., true)`` (``SET LOCAL``), so they end with the
transaction and never leak to the next user of a pooled connection. With neither set a
policed table shows no rows at all: the policies fail closed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from azora.db.engines import reading

USER_SETTING = "azora.user_id"
SERVICE_SETTING = "azora.service"

_APPLY = text(
    "SELECT set_config('azora.user_id', :user_id, true),"
    " set_config('azora.service', :service, true)"
)


@dataclass(frozen=True)
class Scope:
    """The row-level security context of one transaction (see the module docstring)."""

    user_id: uuid.UUID | None = None
    service: bool = False

    def __post_init__(self) -> None:
        if self.user_id is not None and self.service:
            raise ValueError("a transaction acts for one user or as the service, not both")

    @property
    def empty(self) -> bool:
        """True when no user and no service is named (policed tables show nothing)."""
        return self.user_id is None and not self.service

    def describe(self) -> str:
        """``user <id>``, ``service`` or ``nobody``, for messages."""
        if self.service:
            return "service"
        return f"user {self.user_id}" if self.user_id else "nobody"


NOBODY = Scope()
SERVICE = Scope(service=True)


def for_user(user_id: uuid.UUID) -> Scope:
    """The scope of a transaction acting for ``user_id``."""
    return Scope(user_id=user_id)


async def apply_scope(target: AsyncSession | AsyncConnection, scope: Scope) -> None:
    """Set ``scope`` for the rest of the open transaction of ``target`` (PostgreSQL).

    Does nothing on other backends (SQLite has no row-level security: the services
    check ownership themselves) or for the empty scope (the settings' default).
    """
    bind = target.bind if isinstance(target, AsyncSession) else target
    if bind is None:
        raise RuntimeError("apply_scope needs a session bound to an engine")
    if bind.dialect.name != "postgresql" or scope.empty:
        return
    await target.execute(
        _APPLY,
        {
            "user_id": str(scope.user_id) if scope.user_id else "",
            "service": "on" if scope.service else "",
        },
    )


@asynccontextmanager
async def scoped_connection(engine: AsyncEngine, scope: Scope) -> AsyncIterator[AsyncConnection]:
    """A connection of ``engine`` in a transaction under ``scope``, for reads.

    The transaction is rolled back when the block ends: write through a unit of work.
    """
    async with reading(engine).connect() as connection:
        await apply_scope(connection, scope)
        yield connection
