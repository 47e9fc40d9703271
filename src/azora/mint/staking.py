"""Staking: lock part of a balance for a period, earn a rate on it, release it after.

The staked amount is held by the escrow wallet (so balances still sum to zero per
currency) and tracked in the wallet's ``staked`` column and a ``stakes`` row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import select

from azora.db.columns import utcnow
from azora.db.ids import new_id
from azora.db.outbox import AuditRecord
from azora.db.seeding import SYSTEM_ESCROW_ID, SYSTEM_REWARD_POOL_ID
from azora.db.uow import UnitOfWork
from azora.mint import events
from azora.mint.errors import (
    InvalidOperation,
    StakeLocked,
    StakeNotFound,
)
from azora.mint.ledger import (
    ZERO,
    Leg,
    checked_amount,
    post,
    require,
)
from azora.mint.models import (
    Stake,
    StakeStatus,
    TransactionType,
    Wallet,
)
from azora.mint.operations import MintOperations
from azora.mint.schemas import (
    AccrualResult,
    StakeView,
)
from azora.types import Currency

#: Annual staking reward by minimum lock period (days): longer locks earn more.
STAKING_RATES: tuple[tuple[int, Decimal], ...] = (
    (365, Decimal("0.12")),
    (180, Decimal("0.09")),
    (90, Decimal("0.07")),
    (0, Decimal("0.05")),
)
_EIGHT = Decimal("0.00000001")


def staking_rate(lock_days: int) -> Decimal:
    """The annual reward rate for a stake locked ``lock_days`` days."""
    return next(rate for days, rate in STAKING_RATES if lock_days >= days)


class StakingOperations(MintOperations):
    """Stake, release, and accrue staking rewards."""

    async def stake(
        self,
        user_id: uuid.UUID,
        currency: Currency | str,
        amount: Decimal | int | str,
        lock_days: int,
        *,
        now: dt.datetime | None = None,
    ) -> StakeView:
        """Lock ``amount`` of the user's balance for ``lock_days`` (held in escrow).

        Raises:
            InsufficientFunds, InvalidAmountError, WalletNotFound, WalletFrozen,
            InvalidOperation: ``lock_days`` outside 1..3650.
        """
        currency = Currency(currency)
        value = checked_amount(amount)
        if not 1 <= lock_days <= 3650:
            raise InvalidOperation("lock_days must be between 1 and 3650")

        async def attempt() -> StakeView:
            started = now or utcnow()
            stake_id = new_id()
            async with self.unit_of_work() as uow:
                wallets = await self._lock(uow, currency, [user_id, SYSTEM_ESCROW_ID], started)
                wallet = require(wallets, user_id, currency)
                escrow = require(wallets, SYSTEM_ESCROW_ID, currency)
                await post(
                    uow.session,
                    type_=TransactionType.STAKE,
                    currency=currency,
                    amount=value,
                    legs=[Leg(wallet, -value, staked=value), Leg(escrow, value)],
                    from_wallet=wallet,
                    to_wallet=escrow,
                    now=started,
                    reference=str(stake_id),
                )
                stake = Stake(
                    id=stake_id,
                    wallet_id=wallet.id,
                    amount=value,
                    reward_rate=staking_rate(lock_days),
                    lock_days=lock_days,
                    started_at=started,
                    unlocks_at=started + dt.timedelta(days=lock_days),
                    rewards_paid=ZERO,
                    status=StakeStatus.ACTIVE,
                )
                uow.session.add(stake)
                await uow.session.flush()
                view = StakeView.model_validate(stake)
                uow.audit(
                    AuditRecord(
                        "mint.stake",
                        "stake",
                        str(stake_id),
                        user_id,
                        metadata={"amount": str(value), "lock_days": lock_days},
                    )
                )
                uow.emit(
                    events.finance_event(
                        events.STAKE_CREATED,
                        {
                            "stake_id": str(stake_id),
                            "user_id": str(user_id),
                            "amount": str(value),
                            "currency": str(currency),
                            "lock_days": lock_days,
                            "unlocks_at": view.unlocks_at.isoformat(),
                        },
                        user_id,
                    )
                )
            return view

        return await self._retrying(attempt)

    async def _locked_stake(self, uow: UnitOfWork, stake_id: uuid.UUID) -> tuple[Stake, Wallet]:
        row = (
            await uow.session.execute(
                select(Stake, Wallet)
                .join(Wallet, Wallet.id == Stake.wallet_id)
                .where(Stake.id == stake_id)
                .with_for_update(of=Stake)
            )
        ).first()
        if row is None:
            raise StakeNotFound(f"no stake {stake_id}")
        return row[0], row[1]

    async def release_stake(
        self, stake_id: uuid.UUID, *, now: dt.datetime | None = None
    ) -> StakeView:
        """Return an unlocked stake's amount to the wallet's balance.

        Raises:
            StakeNotFound: no such stake.
            StakeLocked: still locked, or already released.
        """

        async def attempt() -> StakeView:
            moment = now or utcnow()
            async with self.unit_of_work() as uow:
                stake, owner = await self._locked_stake(uow, stake_id)
                if stake.status is StakeStatus.RELEASED:
                    raise StakeLocked(f"stake {stake_id} was already released")
                if moment < stake.unlocks_at:
                    raise StakeLocked(f"stake {stake_id} unlocks at {stake.unlocks_at.isoformat()}")
                currency = owner.currency
                wallets = await self._lock(uow, currency, [owner.user_id, SYSTEM_ESCROW_ID], moment)
                wallet = require(wallets, owner.user_id, currency)
                escrow = require(wallets, SYSTEM_ESCROW_ID, currency)
                await post(
                    uow.session,
                    type_=TransactionType.UNSTAKE,
                    currency=currency,
                    amount=stake.amount,
                    legs=[
                        Leg(escrow, -stake.amount),
                        Leg(wallet, stake.amount, staked=-stake.amount),
                    ],
                    from_wallet=escrow,
                    to_wallet=wallet,
                    now=moment,
                    reference=str(stake_id),
                )
                stake.status = StakeStatus.RELEASED
                await uow.session.flush()
                view = StakeView.model_validate(stake)
                uow.audit(AuditRecord("mint.stake.release", "stake", str(stake_id), owner.user_id))
                uow.emit(
                    events.finance_event(
                        events.STAKE_RELEASED,
                        {
                            "stake_id": str(stake_id),
                            "user_id": str(owner.user_id),
                            "amount": str(stake.amount),
                            "currency": str(currency),
                        },
                        owner.user_id,
                    )
                )
            return view

        return await self._retrying(attempt)

    async def accrue_staking_rewards(self, as_of: dt.datetime) -> AccrualResult:
        """Pay every active stake what it has earned up to ``as_of`` (capped at its unlock).

        Rewards come from the reward pool and count as earned; a second run for the same
        moment pays nothing. All or nothing: one transaction.

        Raises:
            InsufficientFunds: the reward pool cannot pay everything due.
        """

        async def attempt() -> AccrualResult:
            paid, total = 0, ZERO
            async with self.unit_of_work() as uow:
                rows = (
                    await uow.session.execute(
                        select(Stake, Wallet.user_id, Wallet.currency)
                        .join(Wallet, Wallet.id == Stake.wallet_id)
                        .where(Stake.status == StakeStatus.ACTIVE)
                        .order_by(Stake.id)
                        .with_for_update(of=Stake)
                    )
                ).all()
                for stake, owner, currency in rows:
                    due = _due(stake, as_of)
                    if due <= 0:
                        continue
                    wallets = await self._lock(uow, currency, [owner, SYSTEM_REWARD_POOL_ID], as_of)
                    pool = require(wallets, SYSTEM_REWARD_POOL_ID, currency)
                    wallet = require(wallets, owner, currency)
                    await post(
                        uow.session,
                        type_=TransactionType.REWARD,
                        currency=currency,
                        amount=due,
                        legs=[Leg(pool, -due), Leg(wallet, due, earned=due)],
                        from_wallet=pool,
                        to_wallet=wallet,
                        now=as_of,
                        reference=str(stake.id),
                        description="staking reward",
                    )
                    stake.rewards_paid += due
                    paid, total = paid + 1, total + due
                await uow.session.flush()
                if paid:
                    uow.audit(
                        AuditRecord(
                            "mint.stake.accrue",
                            "stake",
                            None,
                            metadata={"stakes": paid, "total": str(total)},
                        )
                    )
            return AccrualResult(stakes_paid=paid, total=total)

        return await self._retrying(attempt)


def _due(stake: Stake, as_of: dt.datetime) -> Decimal:
    until = min(as_of, stake.unlocks_at)
    seconds = Decimal(max((until - stake.started_at).total_seconds(), 0))
    earned = stake.amount * stake.reward_rate * seconds / Decimal(365 * 24 * 3600)
    return earned.quantize(_EIGHT, rounding=ROUND_DOWN) - stake.rewards_paid
