"""Row-level security on PostgreSQL (SQLite has none: the services check ownership).

Every table of the nine databases that names a user, or hangs off a table that does,
is either policed or exempted with a reason; through the application role, a user sees
only their own rows and writes them only as the product does (the ledger not at all),
a pooled connection never carries one user's context into the next transaction, and no
wallet balance changes without a ledger entry, whoever writes it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from azora.catalog import SERVICES
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.migrate import alembic_config, downgrade, head_revision, upgrade
from azora.db.rls import (
    EXEMPT,
    OWNER_COLUMNS,
    OWNER_POLICY,
    READ_POLICY,
    SERVICE_POLICY,
    owner_policy,
    prepare_app_role,
)
from azora.db.scope import NOBODY, SERVICE, Scope, for_user, scoped_connection
from azora.db.uow import UnitOfWork
from azora.errors import ConfigurationError
from azora.mint.service import MintService
from azora.settings import Settings
from azora.types import Currency, ServiceName
from tests.db.rls_rows import rows_for

#: Listings anyone may read (written as the service).
PUBLIC_READ = {("education", "courses"), ("forge", "jobs")}

#: The roles a policy names when it applies to every role.
PUBLIC = ["public"]

#: What the product writes for a user on their own rows, under a unit of work acting for
#: them; a user reads every policed row of theirs, and every write not listed here (any
#: write to the ledger, for one) needs the service. A policy that lets a user do more,
#: or a policed table whose owner policy still grants every command, fails
#: ``test_owner_policies_grant_a_user_exactly_what_the_product_does_for_them``.
USER_WRITES: dict[tuple[str, str], frozenset[str]] = {
    # AuthService.revoke_session / revoke_all_sessions / change_password
    ("auth", "sessions"): frozenset({"UPDATE"}),
    ("auth", "tokens"): frozenset({"UPDATE"}),
    # AuthService.begin_mfa_enrolment / confirm_mfa / disable_mfa
    ("auth", "mfa_settings"): frozenset({"INSERT", "UPDATE"}),
    # AuthService.update_profile (makes the profile when missing)
    ("auth", "user_profiles"): frozenset({"INSERT", "UPDATE"}),
    # AuthService.link_identity / unlink_identity
    ("auth", "oauth_accounts"): frozenset({"INSERT", "DELETE"}),
    # EducationService.enroll
    ("education", "enrollments"): frozenset({"INSERT"}),
}


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
        owner = any(p.startswith(OWNER_POLICY) for p in policies)
        if not (enabled and forced and owner and SERVICE_POLICY in policies):
            missing.append(f"{table} ({why})")
    assert not missing, f"user-owned tables of {service} without row-level security: {missing}"
    audit_enabled, audit_forced, audit_policies = live["audit_logs"]
    assert audit_enabled
    assert audit_forced
    assert len(audit_policies) == 3


@pytest.mark.parametrize("service", list(ServiceName), ids=str)
async def test_owner_policies_grant_a_user_exactly_what_the_product_does_for_them(
    pg: Databases, service: ServiceName
) -> None:
    async with pg.owner_engine(service).connect() as connection:
        live = await _policed(connection)
        rows = (
            await connection.execute(
                text(
                    "SELECT tablename, policyname, cmd, permissive, roles::text[] AS roles,"
                    " qual, with_check FROM pg_policies WHERE schemaname = 'public'"
                )
            )
        ).all()
    policed = sorted(t for t, (enabled, _, _) in live.items() if enabled and t != "audit_logs")
    assert policed, f"{service} polices no table?"
    wrong = []
    for table in policed:
        policies = [r for r in rows if r.tablename == table]
        owner = [r for r in policies if r.policyname.startswith(OWNER_POLICY)]
        granted = {r.cmd for r in owner}
        needed = {"SELECT"} | USER_WRITES.get((service.value, table), frozenset())
        if granted != needed:
            wrong.append(
                f"{table}: a user may {sorted(granted)}, the product does {sorted(needed)}"
            )
        for r in owner:
            if (r.policyname, r.permissive, r.roles) != (owner_policy(r.cmd), "PERMISSIVE", PUBLIC):
                wrong.append(f"{table}: owner policy {r.policyname} ({r.cmd}, {r.roles})")
        tests = {r.qual for r in owner if r.qual} | {r.with_check for r in owner if r.with_check}
        if len(tests) != 1:
            wrong.append(f"{table}: the owner policies test ownership differently: {tests}")
        others = {(r.policyname, r.cmd) for r in policies if r not in owner}
        allowed = {(SERVICE_POLICY, "ALL")}
        if (service.value, table) in PUBLIC_READ:
            allowed.add((READ_POLICY, "SELECT"))
        if others != allowed:
            wrong.append(f"{table}: other policies {sorted(others)}, expected {sorted(allowed)}")
    assert not wrong, "\n".join(wrong)
    unknown = [t for s, t in USER_WRITES if s == service.value and t not in policed]
    assert not unknown, f"USER_WRITES names tables {service} does not police: {unknown}"


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


async def _insert_refused_by_policy(connection: AsyncConnection, table: Any, row: Any) -> bool:
    """Insert a copy of an existing row in a savepoint that is rolled back: True when the
    policies refuse it, False when only its duplicate key does (the policies let it by)."""
    savepoint = await connection.begin_nested()
    try:
        await connection.execute(table.insert().values(**row))
    except DBAPIError as exc:
        if "row-level security" in str(exc.orig):
            return True
        if "duplicate key" in str(exc.orig):
            return False
        raise
    finally:
        await savepoint.rollback()
    raise AssertionError(f"{table.name}: a copy of an existing row was inserted")


@pytest.mark.parametrize("service", list(ServiceName), ids=str)
async def test_a_user_reads_only_their_own_rows_and_writes_them_only_as_the_product_does(
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
                    text("SELECT tablename, qual FROM pg_policies WHERE policyname = :name"),
                    {"name": owner_policy("SELECT")},
                )
            ).all()
        )
    for table in policed:
        a_id, b_id = mine[table]["id"], theirs[table]["id"]
        model = metadata.tables[table]
        public = (service.value, table) in PUBLIC_READ
        writes = USER_WRITES.get((service.value, table), frozenset())
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
            assert await _changed(connection, update, {"id": b_id}) == 0, (
                f"{table}: another user's row is writable"
            )
            assert await _changed(connection, delete, {"id": b_id}) == 0, (
                f"{table}: another user's row can be deleted"
            )
            assert await _insert_refused_by_policy(connection, model, theirs[table]), (
                f"{table}: a row can be made for another user"
            )
            # One's own rows: exactly the writes the product makes for the user.
            assert await _changed(connection, update, {"id": a_id}) == ("UPDATE" in writes), (
                f"{table}: own row UPDATE {'refused' if 'UPDATE' in writes else 'allowed'}"
            )
            assert await _changed(connection, delete, {"id": a_id}) == ("DELETE" in writes), (
                f"{table}: own row DELETE {'refused' if 'DELETE' in writes else 'allowed'}"
            )
            refused = await _insert_refused_by_policy(connection, model, mine[table])
            assert refused == ("INSERT" not in writes), (
                f"{table}: own row INSERT {'allowed' if refused is False else 'refused'}"
            )
            # Handing one's own row to the other user is refused by the policy's check.
            handover = _handover(model, theirs, policies[table])
            if handover and "UPDATE" in writes:
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


# -- the ledger ------------------------------------------------------------------------

AZR = Currency.AZR


async def _funded(mint: MintService, amount: int) -> uuid.UUID:
    user = uuid.uuid4()
    await mint.open_wallet(user, AZR)
    if amount:
        await mint.mint(AZR, amount, user)
    return user


async def test_a_user_cannot_write_their_own_wallet_or_journal(pg: Databases) -> None:
    mint = MintService(pg)
    alice = await _funded(mint, 100)
    wallet = await mint.get_wallet(alice, AZR)
    mine = {"me": alice, "wallet": wallet.id, "id": new_id(), "tx": new_id()}
    async with UnitOfWork(pg, ServiceName.MINT, user_id=alice) as uow:
        assert (await uow.session.execute(text("SELECT balance FROM wallets"))).scalar() == 100
        raised = await uow.session.execute(
            text("UPDATE wallets SET balance = balance + 1000000 WHERE user_id = :me"), mine
        )
        assert raised.rowcount == 0, "a user raised their own balance"
        deleted = await uow.session.execute(text("DELETE FROM wallets WHERE user_id = :me"), mine)
        assert deleted.rowcount == 0, "a user deleted their own wallet"
    forgeries = {
        "a ledger entry": "INSERT INTO ledger_entries (id, transaction_id, wallet_id, amount,"
        " balance_after, created_at, updated_at)"
        " VALUES (:id, :tx, :wallet, 1000000, 1000100, now(), now())",
        "a transaction": "INSERT INTO transactions (id, type, amount, currency, to_wallet_id,"
        " status, metadata, created_at, updated_at)"
        " VALUES (:tx, 'mint', 1000000, 'AZR', :wallet, 'completed', '{}', now(), now())",
        "a stake": "INSERT INTO stakes (id, wallet_id, amount, reward_rate, lock_days,"
        " started_at, unlocks_at, status, rewards_paid, created_at, updated_at)"
        " VALUES (:id, :wallet, 1, 0, 1, now(), now(), 'active', 0, now(), now())",
    }
    for what, sql in forgeries.items():
        with pytest.raises(DBAPIError, match="row-level security"):
            async with UnitOfWork(pg, ServiceName.MINT, user_id=alice) as uow:
                await uow.session.execute(text(sql), mine)
                pytest.fail(f"a user wrote {what}")
    assert (await mint.get_wallet(alice, AZR)).balance == 100
    assert (await mint.verify()).ok


async def test_a_balance_change_without_a_ledger_entry_is_refused_at_commit_even_as_the_service(
    pg: Databases,
) -> None:
    mint = MintService(pg)
    alice, bob = await _funded(mint, 100), await _funded(mint, 0)
    with pytest.raises(IntegrityError, match="the transaction wrote none for it") as refused:
        async with UnitOfWork(pg, ServiceName.MINT, as_service=True) as uow:
            raised = await uow.session.execute(
                text("UPDATE wallets SET balance = balance + 1000000 WHERE user_id = :me"),
                {"me": alice},
            )
            assert raised.rowcount == 1  # the statement goes through: the check is at commit
    wallet = await mint.get_wallet(alice, AZR)
    assert wallet.balance == 100
    message = f"wallet {wallet.id}: balance 1000100.00000000 is not accounted for by a ledger entry"
    assert message in str(refused.value)
    assert getattr(refused.value.orig, "sqlstate", None) == "23514"  # check_violation
    assert refused.value.orig.__cause__.constraint_name == "wallets_balance_journaled"
    with pytest.raises(IntegrityError, match="not accounted for by a ledger entry"):
        async with UnitOfWork(pg, ServiceName.MINT, as_service=True) as uow:
            await uow.session.execute(
                text(
                    "INSERT INTO wallets (id, user_id, currency, kind, balance, staked, earned,"
                    " status, created_at, updated_at)"
                    " VALUES (:id, :owner, 'AZR', 'user', 50, 0, 0, 'active', now(), now())"
                ),
                {"id": new_id(), "owner": uuid.uuid4()},
            )

    await mint.transfer(alice, bob, AZR, 25, idempotency_key="after-the-refusal")

    assert (await mint.get_wallet(alice, AZR)).balance == 75
    assert (await mint.get_wallet(bob, AZR)).balance == 25
    assert (await mint.verify()).ok


async def _journal(uow: UnitOfWork, wallet_id: uuid.UUID, amount: int, after: int) -> None:
    """One single-leg movement written by hand: header, entry, balance (times tie)."""
    transaction_id = new_id()
    for sql in (
        "INSERT INTO transactions (id, type, amount, currency, status, metadata, created_at,"
        " updated_at) VALUES (:tx, 'reward', :size, 'AZR', 'completed', '{}', now(), now())",
        "INSERT INTO ledger_entries (id, transaction_id, wallet_id, amount, balance_after,"
        " created_at, updated_at) VALUES (:id, :tx, :wallet, :amount, :after, now(), now())",
        "UPDATE wallets SET balance = :after WHERE id = :wallet",
    ):
        await uow.session.execute(
            text(sql),
            {
                "tx": transaction_id,
                "id": new_id(),
                "wallet": wallet_id,
                "amount": amount,
                "size": abs(amount),
                "after": after,
            },
        )


async def test_a_balance_is_checked_against_the_last_entry_its_transaction_wrote(
    pg: Databases,
) -> None:
    mint = MintService(pg)
    wallet = await mint.get_wallet(await _funded(mint, 100), AZR)
    # Changed twice in one transaction (as staking accrual pays the pool out): the final
    # balance is the one checked.
    async with UnitOfWork(pg, ServiceName.MINT, as_service=True) as uow:
        await _journal(uow, wallet.id, 50, 150)
        await _journal(uow, wallet.id, -30, 120)
    with pytest.raises(IntegrityError, match="leaves it at 90"):
        async with UnitOfWork(pg, ServiceName.MINT, as_service=True) as uow:
            await _journal(uow, wallet.id, 30, 150)
            await _journal(uow, wallet.id, -60, 90)
            # Back to a balance an entry of this transaction once left it at: not the last.
            await uow.session.execute(
                text("UPDATE wallets SET balance = 150 WHERE id = :wallet"), {"wallet": wallet.id}
            )
    assert (await mint.get_wallet(wallet.user_id, AZR)).balance == 120


# -- the migrations that narrowed the owner policies -----------------------------------


async def _security_state(databases: Databases, service: ServiceName) -> set[tuple[Any, ...]]:
    """Every policy (table, name, command, tests) and trigger of the database."""
    async with databases.owner_engine(service).connect() as connection:
        policies = await connection.execute(
            text("SELECT tablename, policyname, cmd, qual, with_check FROM pg_policies")
        )
        triggers = await connection.execute(
            text(
                "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger"
                " WHERE NOT tgisinternal"
            )
        )
        return {tuple(row) for row in policies} | {tuple(row) for row in triggers}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_downgrading_the_owner_policy_migrations_gives_every_command_back(
    fresh_settings: Settings,
) -> None:
    async with Databases(fresh_settings) as databases:
        for spec in SERVICES.values():
            source = spec.migrations
            await lifecycle.setup(databases, source)
            engine = databases.owner_engine(spec.name)
            head = await _security_state(databases, spec.name)
            previous = ScriptDirectory.from_config(alembic_config(source)).get_revision(
                head_revision(source)
            )
            await downgrade(engine, source, str(previous.down_revision))
            before = await _security_state(databases, spec.name)
            owners = {r for r in before if r[1] == OWNER_POLICY}
            assert owners, f"{spec.name}: no azora_owner policy after the downgrade"
            assert {r[2] for r in owners} == {"ALL"}, spec.name
            # The same ownership test as the narrowed policies had, for every command.
            narrowed = {(r[0], r[3]) for r in head if r[1] == owner_policy("SELECT")}
            assert {(r[0], r[3]) for r in owners} == narrowed, spec.name
            assert all(r[3] == r[4] for r in owners), spec.name
            assert not {r for r in before if str(r[1]).startswith("wallets_")}, spec.name
            await upgrade(engine, source)
            assert await _security_state(databases, spec.name) == head, spec.name
