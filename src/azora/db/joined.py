"""A unit of work that runs inside another one's open transaction.

An operation written as ``async with self.unit_of_work() as uow: ...`` commits on its
own. A durable event consumer needs the operation's effect and its processed-events row
to be one transaction, so it hands the operation a :func:`joined` unit of work instead:
the same session, and everything the operation emits, audits, invalidates or hooks goes
to the outer unit of work. Leaving the joined block does nothing; the outer one commits
once (or rolls back, taking the operation's writes with it).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from azora.cache import CacheKey
from azora.db.outbox import AuditRecord, EventMessage
from azora.db.uow import AfterCommit, BeforeCommit, UnitOfWork


class JoinedUnitOfWork(UnitOfWork):
    """A view of ``outer`` for an operation that would otherwise open its own transaction."""

    def __init__(self, outer: UnitOfWork) -> None:
        # Deliberately no super().__init__(): this object owns no session or engine.
        self._outer = outer
        self.service = outer.service
        self.scope = outer.scope
        self.committed = False

    @property
    def session(self) -> AsyncSession:
        """The outer unit of work's session.

        Raises:
            RuntimeError: the outer unit of work is not open.
        """
        return self._outer.session

    def emit(self, event: EventMessage) -> None:
        """Emit ``event`` through the outer unit of work (checked there, at the call)."""
        self._outer.emit(event)

    def audit(self, record: AuditRecord) -> None:
        """Append ``record`` in the outer transaction."""
        self._outer.audit(record)

    def invalidate(self, *keys: CacheKey) -> None:
        """Forget ``keys`` once the outer transaction commits."""
        self._outer.invalidate(*keys)

    def before_commit(self, callback: BeforeCommit) -> None:
        """Run ``callback`` just before the outer transaction commits."""
        self._outer.before_commit(callback)

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once the outer transaction has committed."""
        self._outer.after_commit(callback)

    async def __aenter__(self) -> Self:
        _ = self._outer.session  # raises unless the outer unit of work is open
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The outer unit of work decides: an exception raised here propagates to it.
        return None


def joined(outer: UnitOfWork) -> UnitOfWork:
    """A unit of work that shares ``outer``'s open transaction and never commits itself."""
    return JoinedUnitOfWork(outer)
