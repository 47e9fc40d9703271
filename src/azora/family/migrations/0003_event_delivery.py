"""event delivery: the consumers' processed events and dead letters, the relay's index

Created: 2026-12-01

See ``azora.db.delivery_ddl``: ``processed_events`` (a consumer handles an event id once),
``dead_letters`` (the events a consumer gave up on) and ``ix_outbox_events_unpublished``
(the relay's claim and ordering queries).
"""

from collections.abc import Sequence

from alembic import op

from azora.db.delivery_ddl import downgrade_event_delivery, upgrade_event_delivery

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_event_delivery(op)


def downgrade() -> None:
    downgrade_event_delivery(op)
