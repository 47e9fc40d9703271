"""login attempts (progressive lockout per account and per address)

Created: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import azora.db.migration_types as azora_types
from azora.db.rls import police_table, unpolice_table

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("created_at", azora_types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_login_attempts_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_login_attempts_email_created_at", ["email", "created_at"], unique=False
        )
        batch_op.create_index("ix_login_attempts_ip_created_at", ["ip", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_attempts_user_id"), ["user_id"], unique=False)

    police_table(op, "login_attempts", "user_id = {me}")


def downgrade() -> None:
    unpolice_table(op, "login_attempts")
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_attempts_user_id"))
        batch_op.drop_index("ix_login_attempts_ip_created_at")
        batch_op.drop_index("ix_login_attempts_email_created_at")

    op.drop_table("login_attempts")
