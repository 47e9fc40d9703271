"""The infrastructure tables every service database holds: the outbox and the audit log.

Each service maps them onto its own base (``class OutboxEvent(OutboxEventMixin, Base)``)
so they live in every one of the nine databases. The event bus and :mod:`azora.db.audit`
own their behaviour; this module fixes their shape.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, Uuid, column, table, text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from azora.db.base import IdMixin
from azora.db.columns import JSONDocument, UTCDateTime, utcnow


class OutboxEventMixin(IdMixin):
    """An event written in the same transaction as the change that caused it.

    ``id`` is the event id (UUIDv7, so id order is write order within a process).
    """

    __tablename__ = "outbox_events"

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


#: The same two tables as lightweight clauses, so the unit of work (and the outbox relay)
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
