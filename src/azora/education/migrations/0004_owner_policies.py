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

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MY_STUDENT = "student_id IN (SELECT id FROM students WHERE user_id = {me})"

#: (table, when a row belongs to the acting user {me}, what the user may do to it)
GRANTS: tuple[OwnerGrant, ...] = (
    # Made by the registration saga, which runs as the service.
    ("students", "user_id = {me}", ("SELECT",)),
    # Anyone reads a published course (azora_read); courses are written as the service.
    ("courses", "instructor_id = {me}", ("SELECT",)),
    # Enroll in a course; progress is set as the service, after an ownership check.
    ("enrollments", _MY_STUDENT, ("SELECT", "INSERT")),
    ("learning_progress", _MY_STUDENT, ("SELECT",)),
    ("assessment_submissions", _MY_STUDENT, ("SELECT",)),
    ("certificates", _MY_STUDENT, ("SELECT",)),
)


def upgrade() -> None:
    narrow_owners(op, GRANTS)


def downgrade() -> None:
    widen_owners(op, GRANTS)
