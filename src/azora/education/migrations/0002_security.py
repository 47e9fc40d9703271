"""security: tamper-evident audit chain and row-level security

Created: 2026-12-01

Seals ``audit_logs`` into a hash chain and makes it append-only (see
``azora.db.audit_ddl``), and on PostgreSQL polices the user-owned tables below (see
``azora.db.rls``): each row is visible and writable only to its user or the service.
"""

from collections.abc import Sequence

from alembic import op

from azora.db.rls import PolicedTable, secure, unsecure

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, when a row belongs to the acting user {me}, readable by anyone)
POLICED: tuple[PolicedTable, ...] = (
    ("students", "user_id = {me}", False),
    ("courses", "instructor_id = {me}", True),
    ("enrollments", "student_id IN (SELECT id FROM students WHERE user_id = {me})", False),
    ("learning_progress", "student_id IN (SELECT id FROM students WHERE user_id = {me})", False),
    (
        "assessment_submissions",
        "student_id IN (SELECT id FROM students WHERE user_id = {me})",
        False,
    ),
    ("certificates", "student_id IN (SELECT id FROM students WHERE user_id = {me})", False),
)


def upgrade() -> None:
    secure(op, POLICED)


def downgrade() -> None:
    unsecure(op, POLICED)
