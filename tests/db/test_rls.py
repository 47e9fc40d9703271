"""Row-level security on PostgreSQL (SQLite has none: the services check ownership).

Every table of the nine databases that names a user, or hangs off a table that does,
is either policed or exempted with a reason; through the application role, a user sees
and changes only their own rows, and a pooled connection never carries one user's
context into the next transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from azora.catalog import SERVICES
from azora.db.engines import Databases
from azora.db.rls import EXEMPT, OWNER_COLUMNS, prepare_app_role
from azora.db.scope import NOBODY, SERVICE, Scope, for_user, scoped_connection
from azora.db.uow import UnitOfWork
from azora.errors import ConfigurationError
from azora.settings import Settings
from azora.types import ServiceName
from tests.db.rls_rows import rows_for

#: Listings anyone may read (but only their owner may change).
PUBLIC_READ = {("education", "courses"), ("forge", "jobs")}


@pytest.fixture
async def pg(postgres_settings: Settings) -> AsyncIterator[Databases]:
    async with Databases(postgres_settings) as opened:
        yield opened


async def _policed(connection: AsyncConnection) -> dict[str, tuple[bool, bool, set[str]]]:
    rows = (
        await connection.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
                " coalesce(array_agg(p.policyname) FILTER (WHERE p.policyname IS NOT NULL), '{}')"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " LEFT JOIN pg_policies p ON p.tablename = c.relname AND p.schemaname = n.nspname"
                " WHERE n.nspname = 'public' AND c.relkind = 'r'"
                " GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity"
            )
        )
    ).all()
    return {r[0]: (r[1], r[2], set(r[3])) for r in rows}


def _user_owned(service: ServiceName) -> dict[str, str]:
    """Tables that name a user or hang off such a table, with the reason."""
    metadata = SERVICES[service].migrations.metadata
    owned: dict[str, str] = {}
    for table in metadata.sorted_tables:  # parents first
        if table.name in {"audit_logs", "outbox_events"}:
            continue
        columns = OWNER_COLUMNS & {c.name for c in table.columns}
        if columns:
            owned[table.name] = f"column {', '.join(sorted(columns))}"
            continue
        parents = {fk.column.table.name for c in table.columns for fk in c.foreign_keys}
        if parents & owned.keys():
            owned[table.name] = f"child of {', '.join(sorted(parents & owned.keys()))}"
    return owned


@pytest.mark.parametrize("service", list(ServiceName), ids=str)
async def test_every_user_owned_table_is_policed_or_exempted_with_a_reason(
    pg: Databases, service: ServiceName
) -> None:
    exempt = {e.table for e in EXEMPT.get(service.value, ())}
    async with pg.owner_engine(service).connect() as connection:
        live = await _policed(connection)
    owned = _user_owned(service)
    assert owned, f"{service} has no user-owned table?"
    missing = []
    for table, why in owned.items():
        if table in exempt:
            continue
        enabled, forced, policies = live[table]
        if not (enabled and forced and {"azora_owner", "azora_service"} <= policies):
            missing.append(f"{table} ({why})")
    assert not missing, f"user-owned tables of {service} without row-level security: {missing}"
    audit_enabled, audit_forced, audit_policies = live["audit_logs"]
    assert audit_enabled
    assert audit_forced
    assert len(audit_policies) == 3


async def test_the_application_role_neither_owns_tables_nor_bypasses_policies(
    pg: Databases,
) -> None:
    async with pg.engine(ServiceName.MINT).connect() as connection:
        me = (
            await connection.execute(
                text(
                    "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles"
                    " WHERE rolname = current_user"
                )
            )
        ).one()
        owned = (
            await connection.execute(
                text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
            )
        ).scalar()
    assert me == (pg.settings.db_app_role, False, False)
    assert owned == 0


async def test_a_role_that_bypasses_policies_is_refused_as_the_application_role(
    pg: Databases,
) -> None:
    settings = pg.settings.model_copy(update={"db_app_role": "postgres"})
    with pytest.raises(ConfigurationError, match="bypasses row-level security"):
        await prepare_app_role(pg.owner_engine(ServiceName.AUTH), settings)


async def _count(connection: AsyncConnection, table: str, row_id: Any) -> int:
    result = await connection.execute(
        text(f'SELECT count(*) FROM "{table}" WHERE id = :id'), {"id": row_id}
    )
    return int(result.scalar_one())


async def _changed(connection: AsyncConnection, sql: str, params: dict[str, Any]) -> int:
    """Rows an UPDATE or DELETE touched, in a savepoint that is rolled back."""
    savepoint = await connection.begin_nested()
    try:
        result = await connection.execute(text(sql), params)
        return result.rowcount
    finally:
        await savepoint.rollback()


@pytest.mark.parametrize("service", list(ServiceName), ids=str)
async def test_a_user_cannot_read_change_or_delete_another_users_rows(
    pg: Databases, service: ServiceName
) -> None:
    metadata = SERVICES[service].migrations.metadata
    exempt = {e.table for e in EXEMPT.get(service.value, ())}
    policed = [t for t in _user_owned(service) if t not in exempt]
    alice, bob = uuid.uuid4(), uuid.uuid4()
    owner = pg.owner_engine(service)
    mine = await rows_for(owner, metadata, alice)
    theirs = await rows_for(owner, metadata, bob)
    engine = pg.engine(service)
    async with owner.connect() as connection:
        policies = dict(
            (
                await connection.execute(
                    text("SELECT tablename, qual FROM pg_policies WHERE policyname = 'azora_owner'")
                )
            ).all()
        )
    for table in policed:
        a_id, b_id = mine[table]["id"], theirs[table]["id"]
        public = (service.value, table) in PUBLIC_READ
        async with scoped_connection(engine, NOBODY) as connection:
            visible = await _count(connection, table, a_id) + await _count(connection, table, b_id)
            assert visible == (2 if public else 0), f"{table}: rows visible to nobody"
        async with scoped_connection(engine, for_user(alice)) as connection:
            assert await _count(connection, table, a_id) == 1, f"{table}: own row hidden"
            assert await _count(connection, table, b_id) == (1 if public else 0), (
                f"{table}: another user's row is readable"
            )
            update = f'UPDATE "{table}" SET id = id WHERE id = :id'
            delete = f'DELETE FROM "{table}" WHERE id = :id'
            assert await _changed(connection, update, {"id": a_id}) == 1, table
            assert await _changed(connection, update, {"id": b_id}) == 0, (
                f"{table}: another user's row is writable"
            )
            assert await _changed(connection, delete, {"id": b_id}) == 0, (
                f"{table}: another user's row can be deleted"
            )
            # Handing one's own row to the other user is refused by the policy's check.
            handover = _handover(metadata.tables[table], theirs, policies[table])
            if handover:
                sets = ", ".join(f'"{c}" = :{c}' for c in handover)
                with pytest.raises(DBAPIError, match="row-level security"):
                    await _changed(
                        connection,
                        f'UPDATE "{table}" SET {sets} WHERE id = :id',
                        {**handover, "id": a_id},
                    )
        async with scoped_connection(engine, SERVICE) as connection:
            assert await _count(connection, table, b_id) == 1, f"{table}: hidden from the service"


def _handover(table: Any, theirs: dict[str, dict[str, Any]], policy: str) -> dict[str, Any]:
    """Values of the columns the owner policy reads that would hand the row to the other
    user (none when ownership comes from child rows, as for a ledger transaction)."""
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.name not in policy:
            continue
        if column.name in OWNER_COLUMNS:
            values[column.name] = theirs[table.name][column.name]
        for fk in column.foreign_keys:
            parent = fk.column.table.name
            if parent in theirs and parent != table.name:
                values[column.name] = theirs[parent][fk.column.name]
    return values


async def test_a_pooled_connection_never_carries_a_user_into_the_next_transaction(
    postgres_settings: Settings,
) -> None:
    settings = postgres_settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
    alice, bob = uuid.uuid4(), uuid.uuid4()
    async with Databases(settings) as databases:
        owner = databases.owner_engine(ServiceName.MINT)
        metadata = SERVICES[ServiceName.MINT].migrations.metadata
        wallets = {
            user: (await rows_for(owner, metadata, user))["wallets"]["id"] for user in (alice, bob)
        }
        engine = databases.engine(ServiceName.MINT)
        backends: set[int] = set()
        for i in range(1000):
            user, other = (alice, bob) if i % 2 == 0 else (bob, alice)
            async with UnitOfWork(databases, ServiceName.MINT, user_id=user) as uow:
                pid = await uow.session.scalar(text("SELECT pg_backend_pid()"))
                backends.add(int(pid or 0))
                seen = (await uow.session.execute(text("SELECT id FROM wallets"))).scalars().all()
                assert seen == [wallets[user]], f"iteration {i}: {user} saw {seen}"
                assert wallets[other] not in seen
            if i % 100 == 99:  # a transaction with no user in between sees nothing
                async with scoped_connection(engine, Scope()) as connection:
                    assert (
                        await connection.execute(text("SELECT count(*) FROM wallets"))
                    ).scalar() == 0
        assert len(backends) == 1, "the test meant to reuse one pooled connection"


async def test_audit_rows_are_appended_by_anyone_read_by_their_user_and_never_forged_sealed(
    pg: Databases,
) -> None:
    engine = pg.engine(ServiceName.AUTH)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    append = text(
        "INSERT INTO audit_logs (id, user_id, action, resource, metadata, created_at)"
        " VALUES (:id, :user_id, 'test.append', 'test', '{}', now())"
    )
    rows = {user: uuid.uuid4() for user in (alice, bob)}
    for user, row_id in rows.items():
        async with scoped_connection(engine, for_user(user)) as connection:
            await connection.execute(append, {"id": row_id, "user_id": user})
            await connection.commit()
    async with scoped_connection(engine, for_user(alice)) as connection:
        seen = (await connection.execute(text("SELECT id FROM audit_logs"))).scalars().all()
        assert seen == [rows[alice]]
        forged = text(
            "INSERT INTO audit_logs (id, action, resource, metadata, created_at, seq, row_hash)"
            " VALUES (:id, 'test.forged', 'test', '{}', now(), 1, repeat('0', 64))"
        )
        with pytest.raises(DBAPIError, match="permission denied"):
            await _changed(connection, forged.text, {"id": uuid.uuid4()})
    async with scoped_connection(engine, NOBODY) as connection:
        assert (await connection.execute(text("SELECT count(*) FROM audit_logs"))).scalar() == 0
