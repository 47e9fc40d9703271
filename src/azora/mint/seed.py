"""Seed data for ``azora_mint``: system wallets, metrics and a small development ledger.

Money moves only through the ledger's posting core (:mod:`azora.mint.ledger`), so the
seeded journal balances and the metrics follow from it.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select
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
from azora.mint.ledger import (
    ZERO,
    Leg,
    apply_metrics,
    ensure_metrics,
    ensure_wallet,
    lock_wallets,
    post,
)
from azora.mint.models import Transaction, TransactionType, Wallet, WalletKind
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

    Idempotent: existing wallets and metrics rows are left as they are. Records
    ``wallet:<kind>:<currency>`` in ``ctx.refs``.
    """
    now = utcnow()
    for currency in Currency:
        for kind, owner_id in _SYSTEM_WALLETS:
            await ensure_wallet(session, owner_id, currency, kind, now)
        await ensure_metrics(session, currency, now)
    rows = await session.execute(
        select(Wallet.id, Wallet.kind, Wallet.currency).where(
            Wallet.user_id.in_([owner for _, owner in _SYSTEM_WALLETS])
        )
    )
    for wallet_id, kind, currency in rows:
        ctx.refs[f"wallet:{kind}:{currency}"] = wallet_id


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """The production set, then an AZR wallet per development user and a few transactions.

    Each user receives a welcome bonus from the treasury, the treasury funds the reward
    pool, and the pool pays the student one reward. Idempotent: wallets are found by
    (user, currency) and transactions by their idempotency key. Records
    ``wallet:<email>`` in ``ctx.refs``.

    Raises:
        KeyError: the auth seed did not record one of the development users.
    """
    await seed_production(session, ctx)
    azr, now = Currency.AZR, utcnow()
    for email in _DEV_USERS:
        if await ensure_wallet(session, ctx.user(email), azr, WalletKind.USER, now):
            await apply_metrics(session, azr, now, wallets=1)
    for email in _DEV_USERS:
        await _pay(
            session,
            TransactionType.MINT,
            SYSTEM_TREASURY_ID,
            ctx.user(email),
            _WELCOME_BONUS,
            f"seed:welcome:{email}",
            "Welcome bonus",
        )
    await _pay(
        session,
        TransactionType.MINT,
        SYSTEM_TREASURY_ID,
        SYSTEM_REWARD_POOL_ID,
        _REWARD_POOL_FUNDING,
        "seed:fund-reward-pool",
        "Initial reward pool funding",
    )
    await _pay(
        session,
        TransactionType.REWARD,
        SYSTEM_REWARD_POOL_ID,
        ctx.user(DEV_STUDENT_EMAIL),
        _FIRST_MODULE_REWARD,
        "seed:reward:student-first-module",
        "Reward for completing the first module of Introduction to Python",
    )
    wallets = await lock_wallets(session, azr, [ctx.user(e) for e in _DEV_USERS])
    for email in _DEV_USERS:
        ctx.refs[f"wallet:{email}"] = wallets[ctx.user(email)].id


async def _pay(
    session: AsyncSession,
    type_: TransactionType,
    source: uuid.UUID,
    target: uuid.UUID,
    amount: Decimal,
    key: str,
    description: str,
) -> None:
    """Post one AZR movement through the ledger core, once per idempotency ``key``."""
    if await session.scalar(select(Transaction.id).where(Transaction.idempotency_key == key)):
        return
    wallets = await lock_wallets(session, Currency.AZR, [source, target])
    payer, payee = wallets[source], wallets[target]
    earned = amount if type_ is TransactionType.REWARD else ZERO
    await post(
        session,
        type_=type_,
        currency=Currency.AZR,
        amount=amount,
        legs=[Leg(payer, -amount), Leg(payee, amount, earned=earned)],
        from_wallet=payer,
        to_wallet=payee,
        now=utcnow(),
        idempotency_key=key,
        description=description,
    )
