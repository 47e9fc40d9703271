"""security: tamper-evident audit chain and row-level security

Created: 2026-12-01

Seals ``audit_logs`` into a hash chain and makes it append-only (see
``azora.db.audit_ddl``), and on PostgreSQL polices the user-owned tables below (see
``azora.db.rls``): each row is visible and writable only to its user or the service.
"""

from collections.abc import Sequence

from alembic import op

from azora.db.rls import PolicedTable, secure, unsecure

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, when a row belongs to the acting user {me}, readable by anyone)
POLICED: tuple[PolicedTable, ...] = (
    ("wallets", "user_id = {me}", False),
    (
        "transactions",
        # Every movement has a ledger entry on each wallet it touches (UBI included,
        # which names no receiving wallet in its header).
        "id IN (SELECT transaction_id FROM ledger_entries"
        " WHERE wallet_id IN (SELECT id FROM wallets WHERE user_id = {me}))",
        False,
    ),
    ("ledger_entries", "wallet_id IN (SELECT id FROM wallets WHERE user_id = {me})", False),
    ("stakes", "wallet_id IN (SELECT id FROM wallets WHERE user_id = {me})", False),
    ("mining_records", "user_id = {me}", False),
)


def upgrade() -> None:
    secure(op, POLICED)
    if op.get_bind().dialect.name == "postgresql":
        # The ledger function moves money between users: it runs as the service.
        op.execute("ALTER FUNCTION mint_move SET azora.service = 'on'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER FUNCTION mint_move RESET azora.service")
    unsecure(op, POLICED)
