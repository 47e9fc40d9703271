"""The event-delivery schema every service database gets in one migration.

- ``processed_events``: a consumer handles an event id once (its primary key);
- ``dead_letters``: the events a consumer gave up on (see :mod:`azora.events.consumers`);
- ``ix_outbox_events_unpublished``: the outbox's unpublished rows in (created_at, id)
  order, partial on both backends, for the relay's claim and ordering queries (see
  :mod:`azora.events.relay`).

The tables and the index are exactly what :mod:`azora.db.infra` declares.

Frozen: released migrations call these functions, so what they do must never change.
A later change goes into a new function and a new migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable, DropIndex, DropTable

from azora.db.audit_ddl import MigrationOps
from azora.db.migration_types import JSONDocument, UTCDateTime

_SCHEMA = sa.MetaData()

_DEAD_LETTERS = sa.Table(
    "dead_letters",
    _SCHEMA,
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("consumer", sa.String(length=64), nullable=False),
    sa.Column("event_id", sa.Uuid(), nullable=False),
    sa.Column("event_type", sa.String(length=120), nullable=False),
    sa.Column("envelope", JSONDocument(), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    sa.Column("failed_at", UTCDateTime(timezone=True), nullable=False),
    sa.Column("replayed_at", UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    sa.UniqueConstraint("consumer", "event_id", name="uq_dead_letters_consumer_event_id"),
)

_PROCESSED_EVENTS = sa.Table(
    "processed_events",
    _SCHEMA,
    sa.Column("consumer", sa.String(length=64), nullable=False),
    sa.Column("event_id", sa.Uuid(), nullable=False),
    sa.Column("processed_at", UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
)

_OUTBOX = sa.Table(
    "outbox_events",
    _SCHEMA,
    sa.Column("id", sa.Uuid()),
    sa.Column("created_at", UTCDateTime(timezone=True)),
    sa.Column("published_at", UTCDateTime(timezone=True)),
)

_UNPUBLISHED = sa.Index(
    "ix_outbox_events_unpublished",
    _OUTBOX.c.created_at,
    _OUTBOX.c.id,
    postgresql_where=sa.text("published_at IS NULL"),
    sqlite_where=sa.text("published_at IS NULL"),
)


def upgrade_event_delivery(op: MigrationOps) -> None:
    """Create the consumers' two tables and the outbox's unpublished index."""
    op.execute(CreateTable(_DEAD_LETTERS))
    op.execute(CreateTable(_PROCESSED_EVENTS))
    op.execute(CreateIndex(_UNPUBLISHED))


def downgrade_event_delivery(op: MigrationOps) -> None:
    """Drop what :func:`upgrade_event_delivery` created."""
    op.execute(DropIndex(_UNPUBLISHED))
    op.execute(DropTable(_PROCESSED_EVENTS))
    op.execute(DropTable(_DEAD_LETTERS))
