"""owner policies: users read their own rows, the service writes them

Created: 2026-12-02

Replaces the owner policy of each user-owned table below (``azora_owner``, every
command) by one policy per command a user really runs on their own rows (see
``azora.db.rls.narrow_owner_policy``): no operation of the product writes these
tables for a user, so the user only reads them and every write needs the service. On
SQLite, which has no row-level security, this does nothing.
"""

from collections.abc import Sequence

from alembic import op

from azora.db.rls import OwnerGrant, narrow_owners, widen_owners

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, when a row belongs to the acting user {me}, what the user may do to it)
GRANTS: tuple[OwnerGrant, ...] = (("compliance_logs", "user_id = {me}", ("SELECT",)),)


def upgrade() -> None:
    narrow_owners(op, GRANTS)


def downgrade() -> None:
    widen_owners(op, GRANTS)
