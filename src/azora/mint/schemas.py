"""What the ledger operations return: plain, typed, and free of table models."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from azora.mint.models import StakeStatus, TransactionType, WalletKind, WalletStatus
from azora.types import Currency


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class WalletView(_View):
    """A wallet's balances."""

    id: uuid.UUID
    user_id: uuid.UUID
    currency: Currency
    kind: WalletKind
    balance: Decimal
    staked: Decimal
    earned: Decimal
    status: WalletStatus


class TransactionView(_View):
    """One journal entry; ``replayed`` when an idempotent retry returned the original."""

    id: uuid.UUID
    type: TransactionType
    amount: Decimal
    currency: Currency
    from_wallet_id: uuid.UUID | None
    to_wallet_id: uuid.UUID | None
    reference: str | None
    description: str | None
    created_at: dt.datetime
    replayed: bool = False


class StakeView(_View):
    """A stake and what it has earned."""

    id: uuid.UUID
    wallet_id: uuid.UUID
    amount: Decimal
    reward_rate: Decimal
    lock_days: int
    started_at: dt.datetime
    unlocks_at: dt.datetime
    status: StakeStatus
    rewards_paid: Decimal


class MiningResult(_View):
    """A Proof-of-Knowledge reward; ``paid`` is False when that proof was already paid."""

    record_id: uuid.UUID
    paid: bool
    tokens_earned: Decimal
    transaction_id: uuid.UUID | None


class UbiResult(_View):
    """One UBI round; ``already_distributed`` when the period had been paid before."""

    period: str
    currency: Currency
    amount_per_wallet: Decimal
    wallets_paid: int
    total: Decimal
    already_distributed: bool


class AccrualResult(_View):
    """Staking rewards paid by one accrual run."""

    stakes_paid: int
    total: Decimal


class MetricsView(_View):
    """Supply figures of one currency."""

    currency: Currency
    total_supply: Decimal
    circulating_supply: Decimal
    staked_supply: Decimal
    burned_supply: Decimal
    wallet_count: int


class HistoryItem(_View):
    """One line of a wallet's statement."""

    entry_id: uuid.UUID
    transaction_id: uuid.UUID
    type: TransactionType
    amount: Decimal
    balance_after: Decimal
    reference: str | None
    description: str | None
    created_at: dt.datetime


class HistoryPage(_View):
    """A page of a statement, newest first; pass ``next_cursor`` for the next page."""

    items: list[HistoryItem]
    next_cursor: str | None
