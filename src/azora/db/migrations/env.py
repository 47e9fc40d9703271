"""Alembic environment: run by :mod:`azora.db.migrate` with an open connection.

The caller passes ``connection`` and ``metadata`` through ``config.attributes`` and owns
the transaction, so a whole upgrade commits or rolls back as one.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes["metadata"],
    render_as_batch=True,  # SQLite alters tables by copy; harmless on PostgreSQL
    compare_type=True,
    user_module_prefix="azora_types.",
)
with context.begin_transaction():
    context.run_migrations()
