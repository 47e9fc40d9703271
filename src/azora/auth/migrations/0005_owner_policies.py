"""owner policies: a user writes only what the product writes for them

Created: 2026-12-02

Replaces the owner policy of each user-owned table below (``azora_owner``, every
command) by one policy per command a user really runs on their own rows (see
``azora.db.rls.narrow_owner_policy``); every other write needs the service. On SQLite,
which has no row-level security, this does nothing.
"""

from collections.abc import Sequence

from alembic import op

from azora.db.rls import OwnerGrant, narrow_owners, widen_owners

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, when a row belongs to the acting user {me}, what the user may do to it)
GRANTS: tuple[OwnerGrant, ...] = (
    # Sign out one session or all of them (also when changing one's password).
    ("sessions", "user_id = {me}", ("SELECT", "UPDATE")),
    # Revoke the refresh tokens of the sessions signed out.
    ("tokens", "user_id = {me}", ("SELECT", "UPDATE")),
    # Start TOTP enrolment (the row is made then), confirm it, disable it.
    ("mfa_settings", "user_id = {me}", ("SELECT", "INSERT", "UPDATE")),
    # Edit one's own profile (made on the first edit when missing).
    ("user_profiles", "user_id = {me}", ("SELECT", "INSERT", "UPDATE")),
    # Link and unlink an external identity.
    ("oauth_accounts", "user_id = {me}", ("SELECT", "INSERT", "DELETE")),
    # Written by sign-in, which runs as the service.
    ("login_attempts", "user_id = {me}", ("SELECT",)),
)


def upgrade() -> None:
    narrow_owners(op, GRANTS)


def downgrade() -> None:
    widen_owners(op, GRANTS)
