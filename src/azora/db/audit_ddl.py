"""The audit chain's schema: the seal columns and the append-only guard of ``audit_logs``.

Every service's security migration calls :func:`upgrade_audit_chain` first thing (and
:func:`downgrade_audit_chain` last thing on the way down). They add the columns and
indexes exactly as :class:`azora.db.infra.AuditLogMixin` declares them, and install a
guard in the database itself:

- DELETE is always refused;
- UPDATE is refused unless it seals: the row was unsealed (``OLD.seq IS NULL``), gets a
  ``seq``, a ``prev_hash`` and a ``row_hash``, and every content column keeps its value;
  so a sealed row can be neither changed nor sealed again;
- TRUNCATE is refused (PostgreSQL; SQLite has no TRUNCATE).

A refusal raises ``audit_logs is append-only: ...`` (on PostgreSQL with SQLSTATE
``AZ100``, beside the mint's ``AZ0xx`` refusals). The guard binds the table's owner as
well; only someone who can switch triggers off (a PostgreSQL superuser with
``session_replication_role = replica``, an owner with ``ALTER TABLE ... DISABLE
TRIGGER``, anyone who can write the SQLite file) can get past it, and then the hash
chain shows what they changed (``azora audit verify``).

Frozen: released migrations call these functions, so what they do must never change.
A later change to the guard or the columns goes into a new function and a new migration.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

import sqlalchemy as sa
from alembic.operations import BatchOperations
from sqlalchemy.engine import Connection
from sqlalchemy.sql.base import Executable


class MigrationOps(Protocol):
    """What these functions use of Alembic's ``op`` (the module proxy a migration holds,
    or an :class:`alembic.operations.Operations`)."""

    def execute(
        self, sqltext: Executable | str, *, execution_options: dict[str, Any] | None = None
    ) -> None: ...

    def get_bind(self) -> Connection: ...

    def batch_alter_table(
        self, table_name: str, schema: str | None = None
    ) -> AbstractContextManager[BatchOperations]: ...


#: The columns a sealing UPDATE must leave as they are (all but the seal columns).
_CONTENT = (
    "id",
    "user_id",
    "action",
    "resource",
    "resource_id",
    "ip",
    "user_agent",
    "metadata",
    "created_at",
)

_PG_UNCHANGED = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _CONTENT)

_PG_GUARD = (
    f"""
CREATE FUNCTION audit_logs_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- Nested, not one AND: OLD/NEW must not be touched for TRUNCATE.
        IF OLD.seq IS NULL AND NEW.seq IS NOT NULL
           AND NEW.prev_hash IS NOT NULL AND NEW.row_hash IS NOT NULL
           AND {_PG_UNCHANGED}
        THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'AZ100',
            MESSAGE = 'audit_logs is append-only: UPDATE refused',
            HINT = 'only sealing an unsealed row (seq, prev_hash, row_hash) is allowed';
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'AZ100',
        MESSAGE = format('audit_logs is append-only: %s refused', TG_OP);
END
$fn$
""",
    """
CREATE TRIGGER audit_logs_append_only
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only()
""",
    """
CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_append_only()
""",
)

_SQLITE_UNCHANGED = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _CONTENT)

_SQLITE_GUARD = (
    """
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: DELETE refused');
END
""",
    f"""
CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
WHEN NOT (
    OLD.seq IS NULL AND NEW.seq IS NOT NULL
    AND NEW.prev_hash IS NOT NULL AND NEW.row_hash IS NOT NULL
    AND {_SQLITE_UNCHANGED}
)
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: UPDATE refused');
END
""",
)


def upgrade_audit_chain(op: MigrationOps) -> None:
    """Add ``seq``, ``prev_hash``, ``row_hash`` and their indexes to ``audit_logs``, and
    install the append-only guard. Existing rows stay unsealed until the next seal.

    Frozen: never edit after release (see the module docstring).
    """
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_audit_logs_seq", ["seq"], unique=True)
        batch_op.create_index(
            "ix_audit_logs_unsealed",
            ["created_at", "id"],
            unique=False,
            postgresql_where=sa.text("seq IS NULL"),
            sqlite_where=sa.text("seq IS NULL"),
        )
    guard = _PG_GUARD if op.get_bind().dialect.name == "postgresql" else _SQLITE_GUARD
    for statement in guard:
        op.execute(statement)


def downgrade_audit_chain(op: MigrationOps) -> None:
    """Remove the guard, the indexes and the seal columns (the chain is lost).

    Frozen: never edit after release (see the module docstring).
    """
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_logs_no_truncate ON audit_logs")
        op.execute("DROP TRIGGER IF EXISTS audit_logs_append_only ON audit_logs")
        op.execute("DROP FUNCTION IF EXISTS audit_logs_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_logs_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_logs_no_delete")
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_logs_unsealed")
        batch_op.drop_index("ix_audit_logs_seq")
        batch_op.drop_column("row_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
