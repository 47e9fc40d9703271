"""Universal basic income: one set-based payout to every active user wallet of a currency.

The whole round is one transaction: the ``ubi_distributions`` row (unique per period
and currency) is claimed first, so a second call for the period pays nothing, and a
round that dies half-way leaves nothing behind. The wallets are credited and their
ledger entries written by the database itself — on PostgreSQL in a single statement
(``WITH credited AS (UPDATE ... RETURNING) INSERT ... SELECT``), on SQLite in two
(its writers are serialised) — so no wallet is ever loaded into Python.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    ColumnElement,
    Uuid,
    and_,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.columns import UTCDateTime, utcnow
from azora.db.ids import new_id
from azora.db.money import Money
from azora.db.outbox import AuditRecord
from azora.db.seeding import SYSTEM_TREASURY_ID
from azora.db.statements import core_execute, insert_or_skip
from azora.db.uow import UnitOfWork
from azora.mint import events
from azora.mint.errors import InvalidOperation
from azora.mint.ledger import (
    ZERO,
    Leg,
    apply_metrics,
    checked_amount,
    ensure_wallet,
    lock_wallets,
    require,
)
from azora.mint.models import (
    LedgerEntry,
    Transaction,
    TransactionType,
    UbiDistribution,
    Wallet,
    WalletKind,
    WalletStatus,
)
from azora.mint.schemas import UbiResult
from azora.types import Currency

#: A UUIDv7 made by PostgreSQL per row: the time in milliseconds over a random v4.
_PG_UUID7 = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing"
    " substring(int8send((extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)"
    " from 1 for 6), 52, 1), 53, 1), 'hex')::uuid"
)
#: The same on SQLite, as the 32 hex digits SQLAlchemy stores for a UUID there.
_SQLITE_UUID7 = (
    "printf('%012x', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) || '7'"
    " || substr(lower(hex(randomblob(2))), 2) || substr('89ab', 1 + abs(random()) % 4, 1)"
    " || substr(lower(hex(randomblob(8))), 2)"
)


class _NobodyToPay(Exception):
    """Rolls back a round that found no active wallet (so the period stays open)."""


def _recipients(currency: Currency) -> ColumnElement[bool]:
    return and_(
        Wallet.currency == currency,
        Wallet.kind == WalletKind.USER,
        Wallet.status == WalletStatus.ACTIVE,
    )


async def _credit_all(
    session: AsyncSession,
    currency: Currency,
    amount: Decimal,
    transaction_id: object,
    now: dt.datetime,
) -> int:
    """Credit every recipient and journal it; returns how many wallets were paid."""
    credit = literal(amount, Money())
    columns = [
        "id",
        "transaction_id",
        "wallet_id",
        "amount",
        "balance_after",
        "created_at",
        "updated_at",
    ]
    stamp = literal(now, UTCDateTime())
    tx = literal(transaction_id, Uuid())
    if session.get_bind().dialect.name == "postgresql":
        credited = (
            update(Wallet)
            .where(_recipients(currency))
            .values(balance=Wallet.balance + credit, updated_at=now)
            .returning(Wallet.id, Wallet.balance)
            .cte("credited")
        )
        rows = select(
            literal_column(_PG_UUID7), tx, credited.c.id, credit, credited.c.balance, stamp, stamp
        )
        result = await core_execute(session, insert(LedgerEntry).from_select(columns, rows))
        return int(getattr(result, "rowcount", 0))
    await core_execute(
        session,
        update(Wallet)
        .where(_recipients(currency))
        .values(balance=Wallet.balance + credit, updated_at=now)
        .execution_options(synchronize_session=False),
    )
    rows = select(
        literal_column(_SQLITE_UUID7), tx, Wallet.id, credit, Wallet.balance, stamp, stamp
    ).where(_recipients(currency))
    result = await core_execute(session, insert(LedgerEntry).from_select(columns, rows))
    return int(getattr(result, "rowcount", 0))


async def distribute_ubi(
    uow: UnitOfWork, currency: Currency | str, amount_per_wallet: Decimal | int | str, period: str
) -> UbiResult:
    """Pay ``amount_per_wallet`` from the treasury to every active user wallet, once per period.

    A period already paid returns its original figures with ``already_distributed``.

    Raises:
        InvalidAmountError: the amount is not a positive exact amount.
        InvalidOperation: the period is empty or longer than 16 characters.
    """
    currency = Currency(currency)
    amount = checked_amount(amount_per_wallet)
    if not period or len(period) > 16:
        raise InvalidOperation("a UBI period is 1 to 16 characters, e.g. '2026-11'")
    session, now = uow.session, utcnow()
    if session.get_bind().dialect.name == "postgresql":
        # One statement credits every wallet: it may outlast the per-statement timeout
        # meant for interactive work, so this transaction lifts it (SET LOCAL ends with it).
        await core_execute(session, text("SET LOCAL statement_timeout = 0"))
    claimed = await core_execute(
        session,
        insert_or_skip(
            session,
            UbiDistribution,
            ["period", "currency"],
            id=new_id(),
            period=period,
            currency=currency,
            amount_per_wallet=amount,
            wallets_paid=0,
            total=ZERO,
            created_at=now,
            updated_at=now,
        ),
    )
    if getattr(claimed, "rowcount", 0) != 1:
        done = (
            await session.execute(
                select(UbiDistribution).where(
                    UbiDistribution.period == period, UbiDistribution.currency == currency
                )
            )
        ).scalar_one()
        return UbiResult(
            period=period,
            currency=currency,
            amount_per_wallet=done.amount_per_wallet,
            wallets_paid=done.wallets_paid,
            total=done.total,
            already_distributed=True,
        )
    await ensure_wallet(session, SYSTEM_TREASURY_ID, currency, WalletKind.TREASURY, now)
    treasury = require(
        await lock_wallets(session, currency, [SYSTEM_TREASURY_ID]), SYSTEM_TREASURY_ID, currency
    )
    transaction_id = new_id()
    # The header goes first (the entries refer to it); its amount is set once known.
    await core_execute(
        session,
        insert(Transaction).values(
            id=transaction_id,
            type=TransactionType.UBI,
            amount=amount,
            currency=currency,
            from_wallet_id=treasury.id,
            to_wallet_id=None,
            reference=f"ubi:{period}",
            description=f"UBI {period}",
            metadata_={"amount_per_wallet": str(amount)},
            completed_at=now,
            created_at=now,
            updated_at=now,
        ),
    )
    paid = await _credit_all(session, currency, amount, transaction_id, now)
    if paid == 0:
        raise _NobodyToPay
    total = amount * paid
    await core_execute(
        session,
        update(Wallet)
        .where(Wallet.id == treasury.id)
        .values(balance=Wallet.balance - literal(total, Money()), updated_at=now)
        .execution_options(synchronize_session=False),
    )
    await core_execute(
        session,
        insert(LedgerEntry).values(
            id=new_id(),
            transaction_id=transaction_id,
            wallet_id=treasury.id,
            amount=-total,
            balance_after=treasury.balance - total,
            created_at=now,
            updated_at=now,
        ),
    )
    if session.get_bind().dialect.name == "postgresql":
        # The database checks every credited balance against its entry (the mint's
        # migration 0006), by default at commit. Over every wallet that takes a while: run
        # it now, inside the round, so that a round whose process dies meanwhile leaves
        # nothing (a commit under way would complete without it).
        await core_execute(session, text("SET CONSTRAINTS wallets_balance_journaled IMMEDIATE"))
    await core_execute(
        session,
        update(Transaction)
        .where(Transaction.id == transaction_id)
        .values(amount=total)
        .execution_options(synchronize_session=False),
    )
    await core_execute(
        session,
        update(UbiDistribution)
        .where(UbiDistribution.period == period, UbiDistribution.currency == currency)
        .values(wallets_paid=paid, total=total, updated_at=now)
        .execution_options(synchronize_session=False),
    )
    await apply_metrics(session, currency, now, legs=[Leg(treasury, -total)], circulating=total)
    uow.audit(
        AuditRecord(
            "mint.ubi",
            "ubi_distribution",
            period,
            metadata={"currency": str(currency), "wallets": paid, "total": str(total)},
        )
    )
    uow.emit(
        events.finance_event(
            events.UBI_DISTRIBUTED,
            {
                "period": period,
                "currency": str(currency),
                "amount_per_wallet": str(amount),
                "wallets_paid": paid,
                "total": str(total),
                "transaction_id": str(transaction_id),
            },
        )
    )
    return UbiResult(
        period=period,
        currency=currency,
        amount_per_wallet=amount,
        wallets_paid=paid,
        total=total,
        already_distributed=False,
    )


async def run_ubi(
    open_uow: UnitOfWork,
    currency: Currency | str,
    amount_per_wallet: Decimal | int | str,
    period: str,
) -> UbiResult:
    """:func:`distribute_ubi` in its own unit of work; a round with nobody to pay writes nothing."""
    try:
        async with open_uow as uow:
            return await distribute_ubi(uow, currency, amount_per_wallet, period)
    except _NobodyToPay:
        return UbiResult(
            period=period,
            currency=Currency(currency),
            amount_per_wallet=checked_amount(amount_per_wallet),
            wallets_paid=0,
            total=ZERO,
            already_distributed=False,
        )
