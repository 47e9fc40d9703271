"""consumers: processed events and dead letters of the durable event consumers

Created: 2026-12-01

``processed_events`` makes a consumer handle an event id once (its primary key);
``dead_letters`` keeps the events a consumer gave up on (see ``azora.events.consumers``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import azora.db.migration_types as azora_types

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=120), nullable=False),
        sa.Column("envelope", azora_types.JSONDocument(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", azora_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("failed_at", azora_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", azora_types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("consumer", "event_id", name=op.f("uq_dead_letters_consumer_event_id")),
    )
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("processed_at", azora_types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_events")),
    )


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("dead_letters")
