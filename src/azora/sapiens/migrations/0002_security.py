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
    ("tutoring_sessions", "student_id = {me}", False),
    ("messages", "session_id IN (SELECT id FROM tutoring_sessions WHERE student_id = {me})", False),
    ("learning_insights", "student_id = {me}", False),
    ("learning_paths", "student_id = {me}", False),
    ("path_steps", "path_id IN (SELECT id FROM learning_paths WHERE student_id = {me})", False),
    ("questions", "student_id = {me}", False),
    ("assessments", "student_id = {me}", False),
    ("progress", "student_id = {me}", False),
    ("student_profiles", "student_id = {me}", False),
)


def upgrade() -> None:
    secure(op, POLICED)


def downgrade() -> None:
    unsecure(op, POLICED)
