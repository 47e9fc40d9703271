"""Row-level security on PostgreSQL: the policies of user-owned tables and the role
the application runs as.

Each service's security migration polices its user-owned tables with
:func:`police_table`. A policed table has row-level security enabled and forced (the
owner is policed too, unless it is a superuser) and two permissive policies:

- ``azora_owner``: a row is visible and writable when it belongs to the user the
  transaction acts for (``azora_user_id()``, set by the unit of work, see
  :mod:`azora.db.scope`). The ownership test is SQL over the row, written with ``{me}``
  for that user: ``user_id = {me}``, or through a parent row, e.g.
  ``wallet_id IN (SELECT id FROM wallets WHERE user_id = {me})``;
- ``azora_service``: every row, when the transaction runs as the service
  (``azora_is_service()``), for cross-user work: UBI, sagas, seeds, administration.

A public listing (a job, a course) also gets ``azora_read``: anyone may read it, only
its owner may change it. The audit log gets its own policies (:func:`police_audit_log`):
anyone may append, the service and the row's own user may read, only the service may
seal. With no user and no service set, a policed table shows no rows at all.

``azora_owner`` grants every command. Each service's owner-policy migration replaces it
with :func:`narrow_owner_policy`: one policy per command the product really runs for a
user on their own rows (``azora_owner_select``, ``azora_owner_insert``, ...), so a user
reads their rows and writes only what the product writes for them; every other write
(all of the ledger's, for one) needs the service. A table policed later gets the same
treatment in its own migration.

The application connects as ``AZORA_DB_APP_ROLE`` (:func:`prepare_app_role`): a login
role that owns no table and cannot bypass row-level security. ``azora db setup`` and
``azora db migrate`` create it when missing and grant it what it needs after every
migration, so a new table is covered the moment it exists.

SQLite has no row-level security: there these functions do nothing, and the services
check ownership themselves (every user-facing query filters by its user).

The functions called by migrations are frozen: a released migration must keep doing
what it did, so change them only by adding new functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from azora.db.audit_ddl import MigrationOps, downgrade_audit_chain, upgrade_audit_chain
from azora.errors import ConfigurationError
from azora.settings import Settings

#: The current user inside a policy expression (evaluated once per statement).
ME = "(SELECT azora_user_id())"
_SERVICE = "(SELECT azora_is_service())"

OWNER_POLICY = "azora_owner"
SERVICE_POLICY = "azora_service"
READ_POLICY = "azora_read"

_FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION azora_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('azora.user_id', true), '')::uuid $$""",
    """CREATE OR REPLACE FUNCTION azora_is_service() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('azora.service', true), '') = 'on' $$""",
)


def _postgres(op: MigrationOps) -> bool:
    return op.get_bind().dialect.name == "postgresql"


def install_functions(op: MigrationOps) -> None:
    """Create ``azora_user_id()`` and ``azora_is_service()`` (PostgreSQL; frozen)."""
    if _postgres(op):
        for statement in _FUNCTIONS:
            op.execute(statement)


def drop_functions(op: MigrationOps) -> None:
    """Drop the functions :func:`install_functions` created (PostgreSQL; frozen)."""
    if _postgres(op):
        op.execute("DROP FUNCTION IF EXISTS azora_user_id()")
        op.execute("DROP FUNCTION IF EXISTS azora_is_service()")


def police_table(op: MigrationOps, table: str, owner: str, *, public_read: bool = False) -> None:
    """Enable and force row-level security on ``table`` with the owner and service
    policies; ``owner`` is the ownership test with ``{me}`` for the acting user.

    ``public_read`` adds a policy that lets any transaction read every row (listings).
    Does nothing on SQLite. Frozen: migrations call it.
    """
    if not _postgres(op):
        return
    test = owner.format(me=ME)
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(
        f'CREATE POLICY {SERVICE_POLICY} ON "{table}" USING ({_SERVICE}) WITH CHECK ({_SERVICE})'
    )
    op.execute(f'CREATE POLICY {OWNER_POLICY} ON "{table}" USING ({test}) WITH CHECK ({test})')
    if public_read:
        op.execute(f'CREATE POLICY {READ_POLICY} ON "{table}" FOR SELECT USING (true)')


def unpolice_table(op: MigrationOps, table: str) -> None:
    """Undo :func:`police_table` (drops its policies, disables row-level security)."""
    if not _postgres(op):
        return
    for name in (READ_POLICY, OWNER_POLICY, SERVICE_POLICY):
        op.execute(f'DROP POLICY IF EXISTS {name} ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')


_AUDIT_POLICIES = (
    ("azora_audit_append", "FOR INSERT WITH CHECK (true)"),
    ("azora_audit_read", f"FOR SELECT USING ({_SERVICE} OR user_id = {ME})"),
    ("azora_audit_seal", f"FOR UPDATE USING ({_SERVICE}) WITH CHECK ({_SERVICE})"),
)


def police_audit_log(op: MigrationOps) -> None:
    """Police ``audit_logs``: anyone appends, the service and the row's user read, only
    the service seals; nobody deletes. Does nothing on SQLite. Frozen: migrations call it.
    """
    if not _postgres(op):
        return
    op.execute('ALTER TABLE "audit_logs" ENABLE ROW LEVEL SECURITY')
    op.execute('ALTER TABLE "audit_logs" FORCE ROW LEVEL SECURITY')
    for name, body in _AUDIT_POLICIES:
        op.execute(f'CREATE POLICY {name} ON "audit_logs" {body}')


def unpolice_audit_log(op: MigrationOps) -> None:
    """Undo :func:`police_audit_log`."""
    if not _postgres(op):
        return
    for name, _ in _AUDIT_POLICIES:
        op.execute(f'DROP POLICY IF EXISTS {name} ON "audit_logs"')
    op.execute('ALTER TABLE "audit_logs" NO FORCE ROW LEVEL SECURITY')
    op.execute('ALTER TABLE "audit_logs" DISABLE ROW LEVEL SECURITY')


#: The commands an owner policy can grant, in the order the migrations create them.
COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")

#: What the policy of each command tests: the rows it touches (USING), the rows it
#: writes (WITH CHECK), or both.
_OWNER_CLAUSES = {
    "SELECT": "USING ({test})",
    "INSERT": "WITH CHECK ({test})",
    "UPDATE": "USING ({test}) WITH CHECK ({test})",
    "DELETE": "USING ({test})",
}

#: One policed table of an owner-policy migration: its name, the ownership test with
#: ``{me}`` for the acting user (as its security migration gave it) and the commands
#: its user may run on their own rows.
OwnerGrant = tuple[str, str, tuple[str, ...]]


def owner_policy(command: str) -> str:
    """The name of the owner policy that grants ``command``: ``azora_owner_select``, ..."""
    return f"{OWNER_POLICY}_{command.lower()}"


def narrow_owner_policy(op: MigrationOps, table: str, owner: str, commands: Sequence[str]) -> None:
    """Replace the ``azora_owner`` policy of ``table`` (every command) by one policy per
    command in ``commands``, with the same ownership test ``owner``.

    A command left out is refused to the user: a SELECT matches none of their rows, an
    UPDATE or DELETE changes none, an INSERT raises. The service policy is unchanged.
    Does nothing on SQLite. Frozen: migrations call it.

    Raises:
        ValueError: a command that is not one of :data:`COMMANDS`.
    """
    unknown = set(commands) - set(COMMANDS)
    if unknown:
        raise ValueError(f"not a command an owner policy grants: {sorted(unknown)}")
    if not _postgres(op):
        return
    test = owner.format(me=ME)
    op.execute(f'DROP POLICY {OWNER_POLICY} ON "{table}"')
    for command in COMMANDS:
        if command in commands:
            clause = _OWNER_CLAUSES[command].format(test=test)
            op.execute(f'CREATE POLICY {owner_policy(command)} ON "{table}" FOR {command} {clause}')


def widen_owner_policy(op: MigrationOps, table: str, owner: str, commands: Sequence[str]) -> None:
    """Undo :func:`narrow_owner_policy` with the same arguments: drop the per-command
    policies and give ``azora_owner`` back (every command). Does nothing on SQLite.
    Frozen: migrations call it."""
    if not _postgres(op):
        return
    for command in COMMANDS:
        if command in commands:
            op.execute(f'DROP POLICY {owner_policy(command)} ON "{table}"')
    test = owner.format(me=ME)
    op.execute(f'CREATE POLICY {OWNER_POLICY} ON "{table}" USING ({test}) WITH CHECK ({test})')


def narrow_owners(op: MigrationOps, grants: Sequence[OwnerGrant]) -> None:
    """:func:`narrow_owner_policy` for each table of ``grants``. Frozen: migrations call it."""
    for table, owner, commands in grants:
        narrow_owner_policy(op, table, owner, commands)


def widen_owners(op: MigrationOps, grants: Sequence[OwnerGrant]) -> None:
    """Undo :func:`narrow_owners` for the same ``grants``. Frozen: migrations call it."""
    for table, owner, commands in reversed(grants):
        widen_owner_policy(op, table, owner, commands)


@dataclass(frozen=True)
class Exemption:
    """A table that refers to users but is deliberately not policed, and why."""

    table: str
    reason: str


#: Tables with a user column (or a parent that has one) left unpoliced on purpose, by
#: database. The row-level security test fails for any other such table without policies.
EXEMPT: dict[str, tuple[Exemption, ...]] = {
    "education": (
        Exemption("modules", "course content, readable by anyone; written by its course's owner"),
        Exemption("assessments", "course content (questions), like modules"),
    ),
}

#: Columns naming the user a row belongs to, across the nine databases.
OWNER_COLUMNS = frozenset(
    {"user_id", "student_id", "posted_by", "client_id", "freelancer_id", "subject_user_id"}
)

_ROLE_SQL = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object THEN
    NULL;  -- created meanwhile by a concurrent setup
END
$$;
"""

_GRANTS_SQL = (
    'GRANT USAGE ON SCHEMA public TO "{role}"',
    'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
    'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
    'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM "{role}"',
    # The audit log: appended with its content only (a row cannot arrive looking sealed),
    # and sealed; never changed or removed (the database's triggers refuse it as well).
    'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_logs FROM "{role}"',
    "GRANT INSERT (id, user_id, action, resource, resource_id, ip, user_agent, metadata,"
    ' created_at) ON audit_logs TO "{role}"',
    'GRANT UPDATE (seq, prev_hash, row_hash) ON audit_logs TO "{role}"',
)


async def prepare_app_role(owner: AsyncEngine, settings: Settings) -> None:
    """Make sure the application role exists, may log in with the configured password
    and holds the privileges it needs on this database (PostgreSQL; idempotent).

    Privileges: read and write every table, except that ``alembic_version`` is
    read-only and ``audit_logs`` takes appends and sealing only.

    Raises:
        ConfigurationError: the role is a superuser or may bypass row-level security, or
            the owner may not create it.
    """
    if owner.dialect.name != "postgresql":
        return
    role = settings.db_app_role  # validated as a plain identifier by the settings
    async with owner.begin() as connection:
        existing = (
            await connection.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"),
                {"role": role},
            )
        ).first()
        if existing is not None and (existing[0] or existing[1]):
            raise ConfigurationError(
                f"AZORA_DB_APP_ROLE {role!r} bypasses row-level security (superuser or BYPASSRLS)",
                hint="name a role without those attributes; azora creates it when missing",
            )
        if existing is None:
            can_create = (
                await connection.execute(
                    text(
                        "SELECT rolsuper OR rolcreaterole FROM pg_roles"
                        " WHERE rolname = current_user"
                    )
                )
            ).scalar()
            if not can_create:
                raise ConfigurationError(
                    f"the application role {role!r} does not exist and the database owner"
                    " may not create roles",
                    hint=f'create it (CREATE ROLE "{role}" LOGIN PASSWORD ...), then set up again',
                )
            await connection.exec_driver_sql(_ROLE_SQL.format(role=role))
        if settings.db_app_password is not None:
            # Straight to the driver: SQLAlchemy's echo must never print a password.
            driver = (await connection.get_raw_connection()).driver_connection
            if driver is None:
                raise RuntimeError("no driver connection to set the role's password on")
            password = settings.db_app_password.get_secret_value().replace("'", "''")
            await driver.execute(f"ALTER ROLE \"{role}\" PASSWORD '{password}'")
        for statement in _GRANTS_SQL:
            await connection.exec_driver_sql(statement.format(role=role))


#: One user-owned table of a security migration: its name, the ownership test with
#: ``{me}`` for the acting user, and whether anyone may read it (a listing).
PolicedTable = tuple[str, str, bool]


def secure(op: MigrationOps, policed: Sequence[PolicedTable]) -> None:
    """What a service's security migration installs: the sealed, append-only audit log
    (:func:`~azora.db.audit_ddl.upgrade_audit_chain`), the policy functions, the audit
    log's policies and the owner and service policies of each table in ``policed``.

    Frozen: released migrations call it.
    """
    upgrade_audit_chain(op)
    install_functions(op)
    police_audit_log(op)
    for table, owner, public_read in policed:
        police_table(op, table, owner, public_read=public_read)


def unsecure(op: MigrationOps, policed: Sequence[PolicedTable]) -> None:
    """Undo :func:`secure` for the same ``policed`` tables. Frozen: migrations call it."""
    for table, _owner, _public_read in reversed(policed):
        unpolice_table(op, table)
    unpolice_audit_log(op)
    drop_functions(op)
    downgrade_audit_chain(op)
