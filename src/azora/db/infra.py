"""The infrastructure tables every service database holds: the outbox, the audit log,
and the consumers' processed events and dead letters.

Each service maps them onto its own base (``class OutboxEvent(OutboxEventMixin, Base)``)
so they live in every one of the nine databases. The event bus, :mod:`azora.db.audit`
and :mod:`azora.events.consumers` own their behaviour; this module fixes their shape.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    column,
    table,
    text,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from azora.db.base import IdMixin
from azora.db.columns import JSONDocument, UTCDateTime, utcnow

#: The rows the outbox relay has not published yet, in the order it claims them. Partial
#: on both backends, so it stays as small as the relay's backlog (published rows are kept
#: for days).
UNPUBLISHED_INDEX = "ix_outbox_events_unpublished"


class OutboxEventMixin(IdMixin):
    """An event written in the same transaction as the change that caused it.

    ``id`` is the event id (UUIDv7, so id order is write order within a process).
    """

    __tablename__ = "outbox_events"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        # A function, not a tuple: an index belongs to one table, and nine tables use this.
        return (
            Index(
                UNPUBLISHED_INDEX,
                "created_at",
                "id",
                postgresql_where=text("published_at IS NULL"),
                sqlite_where=text("published_at IS NULL"),
            ),
        )

    type: Mapped[str] = mapped_column(String(120), index=True)
    source: Mapped[str] = mapped_column(String(32))
    subject: Mapped[uuid.UUID | None] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column()
    correlation_id: Mapped[uuid.UUID | None] = mapped_column()
    version: Mapped[int] = mapped_column(default=1)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, sort_order=100)


#: The rows the sealer has not chained yet, in the order it chains them. Partial on both
#: backends, so it stays as small as the sealer's backlog.
UNSEALED_INDEX = "ix_audit_logs_unsealed"


class AuditLogMixin(IdMixin):
    """An append-only record of a sensitive operation, written with the change itself.

    Rows are inserted unsealed (``seq``, ``prev_hash`` and ``row_hash`` empty); the
    sealer of :mod:`azora.db.audit` later chains them: ``seq`` numbers them 1, 2, 3, ...
    per database, ``row_hash`` covers the row's content and ``prev_hash``, the hash of
    the row before. The database refuses every other UPDATE, and every DELETE
    (:mod:`azora.db.audit_ddl`).
    """

    __tablename__ = "audit_logs"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        # A function, not a tuple: an index belongs to one table, and nine tables use this.
        return (
            Index(
                UNSEALED_INDEX,
                "created_at",
                "id",
                postgresql_where=text("seq IS NULL"),
                sqlite_where=text("seq IS NULL"),
            ),
        )

    user_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(120), index=True)
    resource: Mapped[str] = mapped_column(String(120))
    resource_id: Mapped[str | None] = mapped_column(String(120))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True, sort_order=100)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True, index=True, sort_order=101)
    prev_hash: Mapped[str | None] = mapped_column(String(64), sort_order=102)
    row_hash: Mapped[str | None] = mapped_column(String(64), sort_order=103)


class ProcessedEventMixin:
    """An event a durable consumer has handled, written in the handler's own transaction.

    The primary key (consumer, event id) is what makes a consumer act once per event:
    a second insert of the same pair (a redelivery, even a concurrent one) finds the row.
    """

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeadLetterMixin(IdMixin):
    """An event a consumer gave up on after its last attempt, kept for ``events replay``.

    One row per (consumer, event id); ``error`` is the last failure (type and message,
    truncated), ``replayed_at`` is set once a replay handled the event.
    """

    __tablename__ = "dead_letters"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        # A function, not a tuple: a constraint belongs to one table, and nine use this.
        return (UniqueConstraint("consumer", "event_id"),)

    consumer: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[uuid.UUID] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(120))
    envelope: Mapped[dict[str, Any]] = mapped_column()
    error: Mapped[str] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, sort_order=100)
    failed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, sort_order=101)
    replayed_at: Mapped[dt.datetime | None] = mapped_column(sort_order=102)


#: The tables as lightweight clauses, so the unit of work, the outbox relay and the consumers
#: can use them in any service's database without knowing that service's models.
OUTBOX_TABLE = table(
    "outbox_events",
    column("id", Uuid()),
    column("type", String()),
    column("source", String()),
    column("subject", Uuid()),
    column("payload", JSONDocument()),
    column("correlation_id", Uuid()),
    column("version", Integer()),
    column("occurred_at", UTCDateTime()),
    column("published_at", UTCDateTime()),
    column("attempts", Integer()),
    column("last_error", Text()),
    column("created_at", UTCDateTime()),
)
AUDIT_TABLE = table(
    "audit_logs",
    column("id", Uuid()),
    column("user_id", Uuid()),
    column("action", String()),
    column("resource", String()),
    column("resource_id", String()),
    column("ip", String()),
    column("user_agent", Text()),
    column("metadata", JSONDocument()),
    column("created_at", UTCDateTime()),
    # Set by the sealer only; writers leave them empty.
    column("seq", BigInteger()),
    column("prev_hash", String()),
    column("row_hash", String()),
)
PROCESSED_EVENTS_TABLE = table(
    "processed_events",
    column("consumer", String()),
    column("event_id", Uuid()),
    column("processed_at", UTCDateTime()),
)
DEAD_LETTERS_TABLE = table(
    "dead_letters",
    column("id", Uuid()),
    column("consumer", String()),
    column("event_id", Uuid()),
    column("event_type", String()),
    column("envelope", JSONDocument()),
    column("error", Text()),
    column("attempts", Integer()),
    column("created_at", UTCDateTime()),
    column("failed_at", UTCDateTime()),
    column("replayed_at", UTCDateTime()),
)
