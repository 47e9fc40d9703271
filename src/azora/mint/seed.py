"""Seed data for ``azora_mint``: system wallets, metrics and a balanced development ledger."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.columns import utcnow
from azora.db.seeding import (
    DEV_ADMIN_EMAIL,
    DEV_EDUCATOR_EMAIL,
    DEV_EMPLOYER_EMAIL,
    DEV_STUDENT_EMAIL,
    SYSTEM_ESCROW_ID,
    SYSTEM_REWARD_POOL_ID,
    SYSTEM_TREASURY_ID,
    SeedContext,
)
from azora.mint.models import (
    EconomicMetrics,
    LedgerEntry,
    Transaction,
    TransactionType,
    Wallet,
    WalletKind,
)
from azora.types import Currency

_SYSTEM_WALLETS = (
    (WalletKind.TREASURY, SYSTEM_TREASURY_ID),
    (WalletKind.REWARD_POOL, SYSTEM_REWARD_POOL_ID),
    (WalletKind.ESCROW, SYSTEM_ESCROW_ID),
)
_DEV_USERS = (DEV_STUDENT_EMAIL, DEV_EDUCATOR_EMAIL, DEV_EMPLOYER_EMAIL, DEV_ADMIN_EMAIL)
_WELCOME_BONUS = Decimal("100")
_REWARD_POOL_FUNDING = Decimal("1000")
_FIRST_MODULE_REWARD = Decimal("25")


async def seed_production(session: AsyncSession, ctx: SeedContext) -> None:
    """Ensure the treasury, reward-pool and escrow wallets and a metrics row per currency.

    Idempotent: wallets are found by (owner id, currency), metrics by currency. Records
    ``wallet:<kind>:<currency>`` in ``ctx.refs``.
    """
    for currency in Currency:
        for kind, owner_id in _SYSTEM_WALLETS:
            wallet = await _wallet(session, owner_id, currency, kind)
            ctx.refs[f"wallet:{kind}:{currency}"] = wallet.id
        metrics = await session.scalar(
            select(EconomicMetrics).where(EconomicMetrics.currency == currency)
        )
        if metrics is None:
            session.add(EconomicMetrics(currency=currency))
    await session.flush()


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """The production set, then an AZR wallet per development user and a few transactions.

    Each user receives a welcome bonus from the treasury, the treasury funds the reward
    pool, and the pool pays the student one reward; the AZR metrics row is brought in
    line. Idempotent: wallets are found by (user, currency) and transactions by their
    idempotency key. Records ``wallet:<email>`` in ``ctx.refs``.

    Raises:
        KeyError: the auth seed did not record one of the development users.
    """
    await seed_production(session, ctx)
    azr = Currency.AZR
    treasury = await _wallet(session, SYSTEM_TREASURY_ID, azr, WalletKind.TREASURY)
    pool = await _wallet(session, SYSTEM_REWARD_POOL_ID, azr, WalletKind.REWARD_POOL)
    wallets: dict[str, Wallet] = {}
    for email in _DEV_USERS:
        wallets[email] = await _wallet(session, ctx.user(email), azr, WalletKind.USER)
        ctx.refs[f"wallet:{email}"] = wallets[email].id

    for email, wallet in wallets.items():
        await _post(
            session,
            TransactionType.MINT,
            treasury,
            wallet,
            _WELCOME_BONUS,
            f"seed:welcome:{email}",
            "Welcome bonus",
        )
    await _post(
        session,
        TransactionType.MINT,
        treasury,
        pool,
        _REWARD_POOL_FUNDING,
        "seed:fund-reward-pool",
        "Initial reward pool funding",
    )
    await _post(
        session,
        TransactionType.REWARD,
        pool,
        wallets[DEV_STUDENT_EMAIL],
        _FIRST_MODULE_REWARD,
        "seed:reward:student-first-module",
        "Reward for completing the first module of Introduction to Python",
    )
    await _refresh_metrics(session, azr)


async def _wallet(
    session: AsyncSession, owner_id: uuid.UUID, currency: Currency, kind: WalletKind
) -> Wallet:
    wallet = await session.scalar(
        select(Wallet).where(Wallet.user_id == owner_id, Wallet.currency == currency)
    )
    if wallet is None:
        wallet = Wallet(user_id=owner_id, currency=currency, kind=kind)
        session.add(wallet)
        await session.flush()
    return wallet


async def _post(
    session: AsyncSession,
    type: TransactionType,
    from_wallet: Wallet,
    to_wallet: Wallet,
    amount: Decimal,
    key: str,
    description: str,
) -> None:
    """Move ``amount`` between two wallets of one currency, once per idempotency ``key``.

    Writes the transaction header and its two ledger entries (debit, credit; they sum to
    zero) and updates both balances; a reward also adds to the recipient's ``earned``.
    Does nothing when a transaction with ``key`` exists. A stand-in for the seed only:
    the mint issue replaces it with the real ledger operations (checks, events, metrics).
    """
    if await session.scalar(select(Transaction.id).where(Transaction.idempotency_key == key)):
        return
    assert from_wallet.currency == to_wallet.currency
    now = utcnow()
    transaction = Transaction(
        type=type,
        amount=amount,
        currency=from_wallet.currency,
        from_wallet_id=from_wallet.id,
        to_wallet_id=to_wallet.id,
        idempotency_key=key,
        description=description,
        completed_at=now,
    )
    session.add(transaction)
    await session.flush()
    from_wallet.balance -= amount
    to_wallet.balance += amount
    if type in (TransactionType.REWARD, TransactionType.MINING):
        to_wallet.earned += amount
    session.add_all(
        [
            LedgerEntry(
                transaction_id=transaction.id,
                wallet_id=from_wallet.id,
                amount=-amount,
                balance_after=from_wallet.balance,
            ),
            LedgerEntry(
                transaction_id=transaction.id,
                wallet_id=to_wallet.id,
                amount=amount,
                balance_after=to_wallet.balance,
            ),
        ]
    )
    await session.flush()


async def _refresh_metrics(session: AsyncSession, currency: Currency) -> None:
    """Recompute ``currency``'s metrics row from the ledger (minted total, user holdings)."""
    metrics = (
        await session.execute(select(EconomicMetrics).where(EconomicMetrics.currency == currency))
    ).scalar_one()
    minted = (
        await session.execute(
            select(func.coalesce(func.sum(Transaction.amount), 0)).where(
                Transaction.currency == currency, Transaction.type == TransactionType.MINT
            )
        )
    ).scalar_one()
    circulating, staked, count = (
        await session.execute(
            select(
                func.coalesce(func.sum(Wallet.balance), 0),
                func.coalesce(func.sum(Wallet.staked), 0),
                func.count(),
            ).where(Wallet.currency == currency, Wallet.kind == WalletKind.USER)
        )
    ).one()
    metrics.total_supply = minted
    metrics.circulating_supply = circulating
    metrics.staked_supply = staked
    metrics.wallet_count = count
    await session.flush()
