"""security: tamper-evident audit chain and row-level security

Created: 2026-12-01

Seals ``audit_logs`` into a hash chain and makes it append-only (see
``azora.db.audit_ddl``), and on PostgreSQL polices the user-owned tables below (see
``azora.db.rls``): each row is visible and writable only to its user or the service.
"""

from collections.abc import Sequence

from alembic import op

from azora.db.audit_ddl import downgrade_audit_chain, upgrade_audit_chain
from azora.db.rls import (
    drop_functions,
    install_functions,
    police_audit_log,
    police_table,
    unpolice_audit_log,
    unpolice_table,
)

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, when a row belongs to the acting user {me}, readable by anyone)
POLICED: tuple[tuple[str, str, bool], ...] = (
    ("sessions", "user_id = {me}", False),
    ("tokens", "user_id = {me}", False),
    ("mfa_settings", "user_id = {me}", False),
    ("user_profiles", "user_id = {me}", False),
    ("oauth_accounts", "user_id = {me}", False),
)


def upgrade() -> None:
    upgrade_audit_chain(op)
    install_functions(op)
    police_audit_log(op)
    for table, owner, public_read in POLICED:
        police_table(op, table, owner, public_read=public_read)


def downgrade() -> None:
    for table, _owner, _public_read in reversed(POLICED):
        unpolice_table(op, table)
    unpolice_audit_log(op)
    drop_functions(op)
    downgrade_audit_chain(op)
