"""Dead letters: the events a durable consumer gave up on, kept in its service's database.

One row per (consumer, event id) in ``dead_letters`` (:class:`~azora.db.infra.DeadLetterMixin`):
the envelope as JSON, the last error (type and message, truncated), how many attempts
failed, and ``replayed_at`` once a replay handled it. Re-driving them is
:func:`azora.events.consumers.replay`; this module stores and reads them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, TableClause, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.infra import DEAD_LETTERS_TABLE
from azora.db.statements import core_execute
from azora.db.uow import UnitOfWork
from azora.events.envelope import Envelope
from azora.types import ServiceName

#: How much of an error's text a dead letter keeps.
ERROR_CHARS = 1000

_TABLE = DEAD_LETTERS_TABLE


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as stored in ``service``'s database."""

    id: uuid.UUID
    service: ServiceName
    consumer: str
    event_id: uuid.UUID
    event_type: str
    envelope: dict[str, Any]
    error: str
    attempts: int
    created_at: dt.datetime
    failed_at: dt.datetime
    replayed_at: dt.datetime | None


def describe(exc: BaseException) -> str:
    """``exc`` as ``Type: message``, cut to :data:`ERROR_CHARS` characters."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:ERROR_CHARS]


def insert_or_skip(session: AsyncSession, table: TableClause, conflict: tuple[str, ...]) -> Insert:
    """``INSERT INTO table ... ON CONFLICT (conflict) DO NOTHING`` on the session's backend."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement: Insert = builder(table).on_conflict_do_nothing(index_elements=list(conflict))
    return statement


async def store(
    databases: Databases,
    service: ServiceName,
    consumer: str,
    envelope: Envelope,
    error: str,
    attempts: int,
    now: dt.datetime,
) -> None:
    """Keep ``envelope`` as ``consumer``'s dead letter in ``service``'s database (committed).

    A letter already there (the event died again) takes the new error, adds the
    attempts and is pending again.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed (nothing is stored).
    """
    async with UnitOfWork(databases, service, as_service=True) as uow:
        inserted = await core_execute(
            uow.session,
            insert_or_skip(uow.session, _TABLE, ("consumer", "event_id")).values(
                id=new_id(),
                consumer=consumer,
                event_id=envelope.id,
                event_type=envelope.type,
                envelope=envelope.model_dump(mode="json"),
                error=error,
                attempts=attempts,
                created_at=now,
                failed_at=now,
                replayed_at=None,
            ),
        )
        if getattr(inserted, "rowcount", 0) != 1:
            await core_execute(
                uow.session,
                update(_TABLE)
                .where(_TABLE.c.consumer == consumer, _TABLE.c.event_id == envelope.id)
                .values(
                    error=error,
                    attempts=_TABLE.c.attempts + attempts,
                    failed_at=now,
                    replayed_at=None,
                ),
            )


async def mark_replayed(uow: UnitOfWork, letter: uuid.UUID, now: dt.datetime) -> None:
    """Mark ``letter`` replayed in ``uow``'s transaction (with the replay's effect)."""
    await core_execute(
        uow.session, update(_TABLE).where(_TABLE.c.id == letter).values(replayed_at=now)
    )


async def note_failure(
    databases: Databases, letter: DeadLetter, error: str, now: dt.datetime
) -> None:
    """Record a failed replay of ``letter``: its new error and one more attempt (committed)."""
    async with UnitOfWork(databases, letter.service, as_service=True) as uow:
        await core_execute(
            uow.session,
            update(_TABLE)
            .where(_TABLE.c.id == letter.id)
            .values(error=error, attempts=_TABLE.c.attempts + 1, failed_at=now),
        )


async def dead_letters(
    databases: Databases,
    service: ServiceName,
    *,
    consumer: str | None = None,
    event_id: uuid.UUID | None = None,
    pending_only: bool = True,
) -> list[DeadLetter]:
    """The dead letters in ``service``'s database, oldest first: the unreplayed ones
    unless ``pending_only`` is False, of one consumer and/or one event when given."""
    query = select(_TABLE).order_by(_TABLE.c.created_at, _TABLE.c.id)
    if pending_only:
        query = query.where(_TABLE.c.replayed_at.is_(None))
    if consumer is not None:
        query = query.where(_TABLE.c.consumer == consumer)
    if event_id is not None:
        query = query.where(_TABLE.c.event_id == event_id)
    async with UnitOfWork(databases, service, as_service=True) as uow:
        rows = (await core_execute(uow.session, query)).all()
    return [DeadLetter(service=service, **row._mapping) for row in rows]
