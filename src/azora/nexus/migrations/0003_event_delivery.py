"""event delivery: the consumers' processed events and dead letters, the relay's index

Created: 2026-12-01

See ``azora.db.delivery_ddl``: ``processed_events`` (a consumer handles an event id once),
``dead_letters`` (the events a consumer gave up on) and ``ix_outbox_events_unpublished``
(the relay's claim and ordering queries).
``event_records`` gains ``correlation_id`` and ``version``, so the history keeps the
whole envelope (rows archived before have version 1 and no correlation id).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from azora.db.delivery_ddl import downgrade_event_delivery, upgrade_event_delivery

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_event_delivery(op)
    with op.batch_alter_table("event_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("correlation_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("event_records", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("correlation_id")
    downgrade_event_delivery(op)
