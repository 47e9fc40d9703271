"""The unit of work: the one way service code runs a transaction on its database.

    async with UnitOfWork(databases, ServiceName.MINT) as uow:
        uow.session.add(wallet)
        await uow.session.flush()

Leaving the block normally commits once; leaving it by an exception rolls back and
re-raises. Services flush, never commit. ``emit`` and ``audit`` collect outbox events
and audit records that are written in the same transaction, just before the commit.
Two hooks let other parts attach: ``before_commit`` callbacks run inside the
transaction, ``after_commit`` callbacks run only once the commit succeeded and are
dropped on rollback. ``invalidate`` collects the cache keys the change touches; they
are invalidated together once the commit succeeded, before the after-commit callbacks,
and never on rollback. Last, a commit that wrote audit records pokes the database's
:class:`~azora.db.audit.AuditSealer`, which chains them soon after (throttled), and one
that wrote outbox events pokes the :class:`~azora.events.notify.OutboxNotifier`, which
wakes the relay (PostgreSQL ``NOTIFY`` outside the transaction; throttled, never waits).

On PostgreSQL a unit of work runs under row-level security: ``user_id=`` makes it act
for one user (it sees and writes only that user's rows in user-owned tables),
``as_service=True`` runs it as the service for cross-user work, and with neither the
user-owned tables are empty to it (see :mod:`azora.db.scope`). SQLite has no row-level
security; the services check ownership themselves.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from azora.cache import Cache, CacheKey
from azora.db.audit import AuditSealer
from azora.db.engines import Databases
from azora.db.outbox import AuditRecord, EventMessage, write_audit, write_outbox
from azora.db.scope import Scope, apply_scope
from azora.events.catalog import CATALOG
from azora.events.notify import OutboxNotifier
from azora.types import ServiceName

logger = logging.getLogger(__name__)

BeforeCommit = Callable[["UnitOfWork"], Awaitable[None]]
AfterCommit = Callable[[], Awaitable[None]]


class UnitOfWork:
    """One transaction on one service database (see the module docstring)."""

    def __init__(
        self,
        databases: Databases,
        service: ServiceName,
        *,
        cache: Cache | None = None,
        user_id: uuid.UUID | None = None,
        as_service: bool = False,
    ) -> None:
        """Prepare a transaction on ``service``'s database (opened by ``async with``).

        Raises:
            ValueError: both ``user_id`` and ``as_service`` were given.
        """
        self.service = service
        self.scope = Scope(user_id=user_id, service=as_service)
        self._cache = cache
        self._invalidations: list[CacheKey] = []
        self._databases = databases
        self._engine = databases.engine(service)
        self._session: AsyncSession | None = None
        self._before_commit: list[BeforeCommit] = []
        self._after_commit: list[AfterCommit] = []
        self._events: list[EventMessage] = []
        self._audit: list[AuditRecord] = []
        self.committed = False

    @property
    def databases(self) -> Databases:
        """The engines this unit of work was opened on (for operations joining it)."""
        return self._databases

    @property
    def session(self) -> AsyncSession:
        """The session of the open transaction.

        Raises:
            RuntimeError: used outside ``async with``.
        """
        if self._session is None:
            raise RuntimeError("UnitOfWork.session used outside `async with`")
        return self._session

    def emit(self, event: EventMessage) -> None:
        """Publish ``event`` if, and only if, this transaction commits (via the outbox).

        The event is checked against its type's schema here, at the call, and its payload
        is kept in normalised form (see :meth:`azora.events.Registry.validate`).

        Raises:
            UnknownEventType: ``event.type`` has no schema in :data:`azora.events.CATALOG`.
            InvalidEventPayload: the payload does not match the schema.
            InvalidEventSubject: the subject does not fit the type (user-scoped or public).
        """
        payload = CATALOG.validate_event(
            event.type, event.payload, subject=event.subject, version=event.version
        )
        self._events.append(replace(event, payload=payload))

    def audit(self, record: AuditRecord) -> None:
        """Append ``record`` to the audit log in this transaction."""
        self._audit.append(record)

    def invalidate(self, *keys: CacheKey) -> None:
        """Forget ``keys`` in the cache once this transaction commits (never on rollback).

        Without a cache (none given) there is nothing to forget and this does nothing.
        """
        self._invalidations.extend(keys)

    def before_commit(self, callback: BeforeCommit) -> None:
        """Run ``callback`` inside the transaction, just before it commits."""
        self._before_commit.append(callback)

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once the transaction has committed; never on rollback."""
        self._after_commit.append(callback)

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("a UnitOfWork is entered once")
        self._session = AsyncSession(self._engine, expire_on_commit=False, autoflush=True)
        await self._session.begin()
        try:
            await apply_scope(self._session, self.scope)
        except BaseException:
            await self._session.rollback()
            await self._session.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        audited = emitted = False
        try:
            if exc_type is None:
                for hook in self._before_commit:
                    await hook(self)
                audited = bool(self._audit)
                emitted = bool(self._events)
                await write_outbox(session, self._events)
                await write_audit(session, self._audit)
                await session.commit()
                self.committed = True
            else:
                await session.rollback()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()
            self._before_commit.clear()
            self._events.clear()
            self._audit.clear()
        callbacks, self._after_commit = self._after_commit, []
        keys, self._invalidations = self._invalidations, []
        if self.committed and keys and self._cache is not None:
            await self._cache.invalidate(*keys)  # never raises: undelivered keys are kept
        if self.committed:
            for callback in callbacks:
                try:
                    await callback()
                except Exception:
                    # The data is committed; a failed follow-up must not report the write as
                    # failed. Follow-ups are best-effort by contract and log their failure.
                    logger.exception("after-commit callback failed on %s", self.service)
        if self.committed and emitted:
            # Wake the relay: schedules a NOTIFY on another connection; never raises.
            OutboxNotifier.of(self._databases).poke(self.service)
        if self.committed and audited:
            # Chain the new audit rows soon; throttled, never waits, never raises.
            await AuditSealer.of(self._databases).poke(self.service)
