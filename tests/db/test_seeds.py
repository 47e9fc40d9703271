"""Seeds create the documented sets once, balance the ledger, and change nothing the second time."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.auth.models import User
from azora.catalog import SERVICES
from azora.db.engines import Databases
from azora.db.errors import OperationRefused
from azora.db.seeding import SeedContext, SeedReport, run_seeds
from azora.family.models import FamilyMember
from azora.mint.models import LedgerEntry, Transaction, Wallet
from azora.settings import Settings
from azora.types import Environment, ServiceName


async def _seed(databases: Databases, *, production: bool) -> list[SeedReport]:
    plan = [
        (s.migrations, s.seed_production if production else s.seed_development)
        for s in SERVICES.values()
    ]
    reports, _ = await run_seeds(databases, plan, production=production, admin_password="x" * 16)
    return reports


async def test_the_development_seed_runs_twice_and_creates_nothing_the_second_time(
    databases: Databases,
) -> None:
    first = await _seed(databases, production=False)
    assert all(r.created > 0 for r in first if r.service != ServiceName.HEALTH)
    second = await _seed(databases, production=False)
    assert [r.created for r in second] == [0] * len(SERVICES)
    assert [r.rows_after for r in second] == [r.rows_after for r in first]


async def test_the_development_seed_has_the_documented_people_and_family(
    databases: Databases,
) -> None:
    await _seed(databases, production=False)
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        emails = set(await connection.scalars(select(User.email)))
    assert {"student@azora.world", "educator@azora.world", "employer@azora.world"} <= emails
    async with databases.owner_engine(ServiceName.FAMILY).connect() as connection:
        members = await connection.scalar(select(func.count()).select_from(FamilyMember))
    assert members == 11


async def test_the_seeded_ledger_balances(databases: Databases) -> None:
    await _seed(databases, production=False)
    async with databases.owner_engine(ServiceName.MINT).connect() as connection:
        entries = (
            await connection.execute(
                select(LedgerEntry.transaction_id, LedgerEntry.wallet_id, LedgerEntry.amount)
            )
        ).all()
        wallets = (
            await connection.execute(select(Wallet.id, Wallet.currency, Wallet.balance))
        ).all()
        transactions = await connection.scalar(select(func.count()).select_from(Transaction))
    assert transactions
    assert entries
    per_transaction: dict[object, Decimal] = defaultdict(Decimal)
    per_wallet: dict[object, Decimal] = defaultdict(Decimal)
    for transaction_id, wallet_id, amount in entries:
        per_transaction[transaction_id] += amount
        per_wallet[wallet_id] += amount
    assert set(per_transaction.values()) == {Decimal(0)}
    per_currency: dict[str, Decimal] = defaultdict(Decimal)
    for wallet_id, currency, balance in wallets:
        assert balance == per_wallet[wallet_id], f"wallet {wallet_id} disagrees with its entries"
        per_currency[currency] += balance
    assert set(per_currency.values()) == {Decimal(0)}


async def test_the_production_seed_has_system_wallets_and_no_users(databases: Databases) -> None:
    reports = await _seed(databases, production=True)
    assert sum(r.created for r in reports) > 0
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(User)) == 0
    async with databases.owner_engine(ServiceName.MINT).connect() as connection:
        kinds = (await connection.execute(select(Wallet.kind, Wallet.currency))).all()
    assert len(kinds) == 12  # treasury, reward pool and escrow for each of four currencies
    assert sum(r.created for r in await _seed(databases, production=True)) == 0


async def test_a_failing_seed_leaves_its_database_as_it_was(databases: Databases) -> None:
    async def broken(session: AsyncSession, ctx: SeedContext) -> None:
        session.add(FamilyMember(name="Half", role="r", traits=[], background="b"))
        await session.flush()
        raise RuntimeError("seed failed midway")

    family = SERVICES[ServiceName.FAMILY].migrations
    with pytest.raises(RuntimeError, match="midway"):
        await run_seeds(databases, [(family, broken)], production=False)
    async with databases.owner_engine(ServiceName.FAMILY).connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(FamilyMember)) == 0


async def test_the_development_seed_is_refused_in_production_whoever_asks(
    migrated_settings: Settings,
) -> None:
    production = migrated_settings.model_copy(
        update={
            "env": Environment.PRODUCTION,
            "jwt_secret": SecretStr("j" * 40),
            "encryption_key": SecretStr("e" * 40),
        }
    )
    async with Databases(production) as databases:
        with pytest.raises(OperationRefused, match="development seed"):
            await _seed(databases, production=False)
        async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
            assert await connection.scalar(select(func.count()).select_from(User)) == 0
        await _seed(databases, production=True)
        async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
            assert await connection.scalar(select(func.count()).select_from(User)) == 0
