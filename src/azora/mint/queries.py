"""Reads of the ledger: statements, supply figures, and the full consistency check.

``verify`` recomputes everything from the journal in the database (aggregates that
return only the rows that disagree), so it never loads all wallets into memory.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass, field

from sqlalchemy import Uuid, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from azora.db.columns import UTCDateTime
from azora.db.seeding import SYSTEM_TREASURY_ID
from azora.mint.errors import InvalidOperation, WalletNotFound
from azora.mint.ledger import ZERO
from azora.mint.models import EconomicMetrics, LedgerEntry, Transaction, Wallet, WalletKind
from azora.mint.schemas import HistoryItem, HistoryPage, MetricsView
from azora.types import Currency

MAX_PAGE = 200


def _encode_cursor(created_at: dt.datetime, entry_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{entry_id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        created, entry = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        moment = dt.datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return moment, uuid.UUID(entry)
    except (ValueError, UnicodeDecodeError):
        raise InvalidOperation("invalid history cursor", hint="pass next_cursor as given") from None


async def history(
    connection: AsyncConnection,
    user_id: uuid.UUID,
    currency: Currency | str,
    cursor: str | None = None,
    limit: int = 50,
) -> HistoryPage:
    """A page of the wallet's statement, newest first (keyset pagination).

    Raises:
        WalletNotFound: no such wallet.
        InvalidOperation: a malformed cursor or a limit outside 1..200.
    """
    currency = Currency(currency)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidOperation(f"limit must be between 1 and {MAX_PAGE}")
    wallet_id = await connection.scalar(
        select(Wallet.id).where(Wallet.user_id == user_id, Wallet.currency == currency)
    )
    if wallet_id is None:
        raise WalletNotFound(f"user {user_id} has no {currency} wallet")
    query = (
        select(
            LedgerEntry.id.label("entry_id"),
            LedgerEntry.transaction_id,
            Transaction.type,
            LedgerEntry.amount,
            LedgerEntry.balance_after,
            Transaction.reference,
            Transaction.description,
            LedgerEntry.created_at,
        )
        .join(Transaction, Transaction.id == LedgerEntry.transaction_id)
        .where(LedgerEntry.wallet_id == wallet_id)
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        created_at, entry_id = _decode_cursor(cursor)
        query = query.where(
            tuple_(LedgerEntry.created_at, LedgerEntry.id)
            < tuple_(literal(created_at, UTCDateTime()), literal(entry_id, Uuid()))
        )
    rows = (await connection.execute(query)).all()
    items = [HistoryItem.model_validate(row._mapping) for row in rows[:limit]]
    more = len(rows) > limit
    next_cursor = _encode_cursor(items[-1].created_at, items[-1].entry_id) if more else None
    return HistoryPage(items=items, next_cursor=next_cursor)


async def economic_metrics(connection: AsyncConnection, currency: Currency | str) -> MetricsView:
    """The currency's supply figures (zeros before anything was issued)."""
    currency = Currency(currency)
    row = (
        await connection.execute(
            select(EconomicMetrics).where(EconomicMetrics.currency == currency)
        )
    ).first()
    if row is None:
        return MetricsView(
            currency=currency,
            total_supply=ZERO,
            circulating_supply=ZERO,
            staked_supply=ZERO,
            burned_supply=ZERO,
            wallet_count=0,
        )
    return MetricsView.model_validate(row._mapping)


@dataclass
class VerifyReport:
    """Every disagreement ``verify`` found (empty lists: the ledger is consistent)."""

    wallets_checked: int = 0
    transactions_checked: int = 0
    wallet_mismatches: list[str] = field(default_factory=list)
    unbalanced_transactions: list[str] = field(default_factory=list)
    currency_imbalances: list[str] = field(default_factory=list)
    metric_mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing disagrees."""
        return not (
            self.wallet_mismatches
            or self.unbalanced_transactions
            or self.currency_imbalances
            or self.metric_mismatches
        )


async def verify(connection: AsyncConnection, *, limit: int = 50) -> VerifyReport:
    """Recompute every balance from the entries and check every invariant.

    Checks: each wallet's balance equals the sum of its entries; each transaction's
    entries sum to zero; per currency all balances sum to zero; the metrics rows agree
    with the wallets. Reports at most ``limit`` lines per kind.
    """
    report = VerifyReport()
    report.wallets_checked = int(
        await connection.scalar(select(func.count()).select_from(Wallet)) or 0
    )
    report.transactions_checked = int(
        await connection.scalar(select(func.count()).select_from(Transaction)) or 0
    )
    sums = (
        select(LedgerEntry.wallet_id, func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.wallet_id)
        .subquery()
    )
    recomputed = func.coalesce(sums.c.total, 0)
    for row in await connection.execute(
        select(Wallet.id, Wallet.balance, recomputed.label("entries"))
        .outerjoin(sums, sums.c.wallet_id == Wallet.id)
        .where(Wallet.balance != recomputed)
        .limit(limit)
    ):
        report.wallet_mismatches.append(
            f"wallet {row.id}: balance {row.balance:f}, entries sum to {row.entries:f}"
        )
    for row in await connection.execute(
        select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount) != 0)
        .limit(limit)
    ):
        report.unbalanced_transactions.append(
            f"transaction {row.transaction_id}: entries sum to {row.total:f}"
        )
    for row in await connection.execute(
        select(Wallet.currency, func.sum(Wallet.balance).label("total"))
        .group_by(Wallet.currency)
        .having(func.sum(Wallet.balance) != 0)
    ):
        report.currency_imbalances.append(f"{row.currency}: balances sum to {row.total:f}")
    await _check_metrics(connection, report)
    return report


async def _check_metrics(connection: AsyncConnection, report: VerifyReport) -> None:
    users = (
        select(
            Wallet.currency,
            func.sum(Wallet.balance).label("circulating"),
            func.sum(Wallet.staked).label("staked"),
            func.count().label("wallets"),
        )
        .where(Wallet.kind == WalletKind.USER)
        .group_by(Wallet.currency)
    )
    actual = {row.currency: row for row in await connection.execute(users)}
    treasury = {
        row.currency: row.balance
        for row in await connection.execute(
            select(Wallet.currency, Wallet.balance).where(Wallet.user_id == SYSTEM_TREASURY_ID)
        )
    }
    for metrics in await connection.execute(select(EconomicMetrics)):
        row = actual.get(metrics.currency)
        expected = {
            "circulating_supply": row.circulating if row else ZERO,
            "staked_supply": row.staked if row else ZERO,
            "wallet_count": row.wallets if row else 0,
            # issuance is the treasury's debt; a burn pays some of it back
            "total_supply": -treasury.get(metrics.currency, ZERO),
        }
        for name, value in expected.items():
            if getattr(metrics, name) != value:
                report.metric_mismatches.append(
                    f"{metrics.currency} {name}: recorded {getattr(metrics, name)},"
                    f" recomputed {value}"
                )
