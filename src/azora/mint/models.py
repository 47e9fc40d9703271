"""Tables of the ``azora_mint`` database: one double-entry ledger for every currency.

Each ``Transaction`` is a journal header; its ``LedgerEntry`` rows move money between
wallets and sum to zero. System wallets (treasury, reward pool, escrow) may go negative:
issued money shows as the treasury's negative position, so per currency the balances of
all wallets sum to zero.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from azora.db.base import TYPE_ANNOTATION_MAP, Entity, new_metadata
from azora.db.columns import str_enum, utcnow
from azora.db.infra import AuditLogMixin, DeadLetterMixin, OutboxEventMixin, ProcessedEventMixin
from azora.types import Currency


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class WalletKind(StrEnum):
    USER = "user"
    TREASURY = "treasury"
    REWARD_POOL = "reward_pool"
    ESCROW = "escrow"


class WalletStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"


class TransactionType(StrEnum):
    MINT = "mint"
    TRANSFER = "transfer"
    STAKE = "stake"
    UNSTAKE = "unstake"
    REWARD = "reward"
    MINING = "mining"
    UBI = "ubi"
    ESCROW_HOLD = "escrow_hold"
    ESCROW_RELEASE = "escrow_release"
    REFUND = "refund"
    BURN = "burn"


class TransactionStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    REVERSED = "reversed"


class StakeStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"


class MiningStatus(StrEnum):
    PENDING = "pending"
    REWARDED = "rewarded"
    REJECTED = "rejected"


_ZERO = Decimal("0")


class Wallet(Entity, Base):
    """What one owner holds in one currency; ``user_id`` is a user or a system owner id."""

    __tablename__ = "wallets"

    user_id: Mapped[uuid.UUID] = mapped_column()
    currency: Mapped[Currency] = mapped_column(str_enum(Currency, "currency"), index=True)
    kind: Mapped[WalletKind] = mapped_column(str_enum(WalletKind, "kind"), default=WalletKind.USER)
    balance: Mapped[Decimal] = mapped_column(default=_ZERO)
    staked: Mapped[Decimal] = mapped_column(default=_ZERO)
    earned: Mapped[Decimal] = mapped_column(default=_ZERO)
    status: Mapped[WalletStatus] = mapped_column(
        str_enum(WalletStatus, "status"), default=WalletStatus.ACTIVE
    )

    # The unique constraint leads with user_id, so it also serves look-ups by owner.
    __table_args__ = (
        UniqueConstraint("user_id", "currency"),
        CheckConstraint(
            "kind <> 'user' OR (balance >= 0 AND staked >= 0 AND earned >= 0)",
            name="user_non_negative",
        ),
    )


class Transaction(Entity, Base):
    """A journal header: one movement of money, balanced by its ledger entries."""

    __tablename__ = "transactions"

    type: Mapped[TransactionType] = mapped_column(str_enum(TransactionType, "type"), index=True)
    amount: Mapped[Decimal] = mapped_column()
    currency: Mapped[Currency] = mapped_column(str_enum(Currency, "currency"))
    from_wallet_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("wallets.id"), index=True)
    to_wallet_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("wallets.id"), index=True)
    status: Mapped[TransactionStatus] = mapped_column(
        str_enum(TransactionStatus, "status"), default=TransactionStatus.COMPLETED
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    reference: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column()
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    completed_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_transactions_created_at", "created_at"),
        # Escrow looks up a contract's holds and releases by reference.
        Index("ix_transactions_reference", "reference"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


class LedgerEntry(Entity, Base):
    """One signed posting to a wallet; the entries of a transaction sum to zero."""

    __tablename__ = "ledger_entries"

    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transactions.id"), index=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"))
    amount: Mapped[Decimal] = mapped_column()
    balance_after: Mapped[Decimal] = mapped_column()

    # Leads with wallet_id, so it also indexes the foreign key (a wallet's statement).
    __table_args__ = (
        Index("ix_ledger_entries_wallet_id_created_at", "wallet_id", "created_at"),
        CheckConstraint("amount <> 0", name="amount_non_zero"),
    )


class Stake(Entity, Base):
    """An amount locked in a wallet for ``lock_days``, earning ``reward_rate``."""

    __tablename__ = "stakes"

    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"), index=True)
    amount: Mapped[Decimal] = mapped_column()
    reward_rate: Mapped[Decimal] = mapped_column()
    lock_days: Mapped[int] = mapped_column()
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    unlocks_at: Mapped[dt.datetime] = mapped_column()
    status: Mapped[StakeStatus] = mapped_column(
        str_enum(StakeStatus, "status"), default=StakeStatus.ACTIVE
    )
    rewards_paid: Mapped[Decimal] = mapped_column(default=_ZERO)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("reward_rate >= 0", name="reward_rate_non_negative"),
        CheckConstraint("lock_days >= 0", name="lock_days_non_negative"),
        CheckConstraint("rewards_paid >= 0", name="rewards_paid_non_negative"),
    )


class MiningRecord(Entity, Base):
    """A Proof-of-Knowledge reward: at most one per (activity, proof)."""

    __tablename__ = "mining_records"

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"), index=True)
    # An open set (module_completed, course_completed, ...), so not an enumeration.
    activity: Mapped[str] = mapped_column(String(64))
    proof_ref: Mapped[str] = mapped_column(String(200))
    tokens_earned: Mapped[Decimal] = mapped_column(default=_ZERO)
    status: Mapped[MiningStatus] = mapped_column(
        str_enum(MiningStatus, "status"), default=MiningStatus.PENDING
    )

    __table_args__ = (
        UniqueConstraint("activity", "proof_ref"),
        CheckConstraint("tokens_earned >= 0", name="tokens_earned_non_negative"),
    )


class UbiDistribution(Entity, Base):
    """One universal-basic-income payout round for a period and currency."""

    __tablename__ = "ubi_distributions"

    period: Mapped[str] = mapped_column(String(16))
    currency: Mapped[Currency] = mapped_column(str_enum(Currency, "currency"))
    amount_per_wallet: Mapped[Decimal] = mapped_column()
    wallets_paid: Mapped[int] = mapped_column(default=0)
    total: Mapped[Decimal] = mapped_column(default=_ZERO)

    __table_args__ = (
        UniqueConstraint("period", "currency"),
        CheckConstraint("amount_per_wallet > 0", name="amount_positive"),
        CheckConstraint("wallets_paid >= 0 AND total >= 0", name="totals_non_negative"),
    )


class EconomicMetrics(Entity, Base):
    """Supply figures for one currency, kept current by the ledger operations."""

    __tablename__ = "economic_metrics"

    currency: Mapped[Currency] = mapped_column(str_enum(Currency, "currency"), unique=True)
    total_supply: Mapped[Decimal] = mapped_column(default=_ZERO)
    circulating_supply: Mapped[Decimal] = mapped_column(default=_ZERO)
    staked_supply: Mapped[Decimal] = mapped_column(default=_ZERO)
    burned_supply: Mapped[Decimal] = mapped_column(default=_ZERO)
    wallet_count: Mapped[int] = mapped_column(default=0)


class IdempotencyKey(Entity, Base):
    """The stored response of a request already handled, replayed for a retry."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(128))
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class OutboxEvent(OutboxEventMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    pass
