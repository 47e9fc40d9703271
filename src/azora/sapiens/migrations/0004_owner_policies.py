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
GRANTS: tuple[OwnerGrant, ...] = (
    ("tutoring_sessions", "student_id = {me}", ("SELECT",)),
    (
        "messages",
        "session_id IN (SELECT id FROM tutoring_sessions WHERE student_id = {me})",
        ("SELECT",),
    ),
    ("learning_insights", "student_id = {me}", ("SELECT",)),
    ("learning_paths", "student_id = {me}", ("SELECT",)),
    (
        "path_steps",
        "path_id IN (SELECT id FROM learning_paths WHERE student_id = {me})",
        ("SELECT",),
    ),
    ("questions", "student_id = {me}", ("SELECT",)),
    ("assessments", "student_id = {me}", ("SELECT",)),
    ("progress", "student_id = {me}", ("SELECT",)),
    ("student_profiles", "student_id = {me}", ("SELECT",)),
)


def upgrade() -> None:
    narrow_owners(op, GRANTS)


def downgrade() -> None:
    widen_owners(op, GRANTS)
