"""The mint's operations: wallets, issuance, transfers, rewards, mining, staking, escrow.

Each public method is one transaction through the unit of work: it locks the wallets it
moves (in id order), posts a balanced journal entry, appends an audit record and emits
its ``finance.*`` event into the outbox. Serialization failures and deadlocks reported
by PostgreSQL (which the lock order should prevent) are retried inside the operation.
UBI lives in :mod:`azora.mint.ubi`; statements, metrics and verification (reads) in
:mod:`azora.mint.queries`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Awaitable, Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from azora.db.columns import utcnow
from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.outbox import AuditRecord
from azora.db.seeding import SYSTEM_ESCROW_ID, SYSTEM_REWARD_POOL_ID, SYSTEM_TREASURY_ID
from azora.db.uow import UnitOfWork
from azora.mint import events, queries
from azora.mint.errors import (
    CurrencyMismatch,
    EscrowShortfall,
    IdempotencyConflict,
    InvalidOperation,
    StakeLocked,
    StakeNotFound,
    WalletNotFound,
)
from azora.mint.ledger import (
    ZERO,
    Leg,
    LockedWallet,
    apply_metrics,
    checked_amount,
    claim_key,
    ensure_wallet,
    insert_or_skip,
    lock_wallets,
    post,
    request_hash,
    require,
)
from azora.mint.models import (
    IdempotencyKey,
    MiningRecord,
    MiningStatus,
    Stake,
    StakeStatus,
    Transaction,
    TransactionType,
    Wallet,
    WalletKind,
    WalletStatus,
)
from azora.mint.queries import VerifyReport
from azora.mint.schemas import (
    AccrualResult,
    HistoryPage,
    MetricsView,
    MiningResult,
    StakeView,
    TransactionView,
    UbiResult,
    WalletView,
)
from azora.mint.ubi import run_ubi
from azora.types import Currency, ServiceName

T = TypeVar("T")

#: Owner ids of the system wallets, by kind.
SYSTEM_OWNERS: dict[uuid.UUID, WalletKind] = {
    SYSTEM_TREASURY_ID: WalletKind.TREASURY,
    SYSTEM_REWARD_POOL_ID: WalletKind.REWARD_POOL,
    SYSTEM_ESCROW_ID: WalletKind.ESCROW,
}
#: Annual staking reward by minimum lock period (days): longer locks earn more.
STAKING_RATES: tuple[tuple[int, Decimal], ...] = (
    (365, Decimal("0.12")),
    (180, Decimal("0.09")),
    (90, Decimal("0.07")),
    (0, Decimal("0.05")),
)
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
_EIGHT = Decimal("0.00000001")


def staking_rate(lock_days: int) -> Decimal:
    """The annual reward rate for a stake locked ``lock_days`` days."""
    return next(rate for days, rate in STAKING_RATES if lock_days >= days)


def _sqlstate(exc: DBAPIError) -> str | None:
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


def _view(
    transaction_id: uuid.UUID,
    type_: TransactionType,
    amount: Decimal,
    currency: Currency,
    source: LockedWallet | None,
    target: LockedWallet | None,
    now: dt.datetime,
    reference: str | None = None,
    description: str | None = None,
) -> TransactionView:
    return TransactionView(
        id=transaction_id,
        type=type_,
        amount=amount,
        currency=currency,
        from_wallet_id=source.id if source else None,
        to_wallet_id=target.id if target else None,
        reference=reference,
        description=description,
        created_at=now,
    )


def _payload(view: TransactionView, **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": str(view.id),
        "type": str(view.type),
        "amount": str(view.amount),
        "currency": str(view.currency),
        "reference": view.reference,
        **extra,
    }


class MintService:
    """The ledger's operations on the mint database (see the module docstring)."""

    def __init__(
        self,
        databases: Databases,
        *,
        idempotency_ttl: dt.timedelta = dt.timedelta(hours=24),
        max_retries: int = 8,
    ) -> None:
        self._databases = databases
        self._ttl = idempotency_ttl
        self._max_retries = max_retries
        #: how many times an operation was retried after a serialization failure/deadlock.
        self.retries = 0

    def unit_of_work(self) -> UnitOfWork:
        """A unit of work on the mint database."""
        return UnitOfWork(self._databases, ServiceName.MINT)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        for tries in range(self._max_retries + 1):
            try:
                return await attempt()
            except IntegrityError as exc:
                if "idempotency_key" in str(exc.orig):
                    raise IdempotencyConflict(
                        "that idempotency key was used by an earlier, expired request"
                    ) from None
                raise
            except DBAPIError as exc:
                if _sqlstate(exc) not in _RETRYABLE_SQLSTATES or tries == self._max_retries:
                    raise
                self.retries += 1
                await asyncio.sleep(random.uniform(0, 0.002 * 2**tries))
        raise AssertionError("unreachable")

    async def _lock(
        self, uow: UnitOfWork, currency: Currency, owners: list[uuid.UUID], now: dt.datetime
    ) -> dict[uuid.UUID, LockedWallet]:
        wallets = await lock_wallets(uow.session, currency, owners)
        missing = [o for o in owners if o in SYSTEM_OWNERS and o not in wallets]
        if missing:  # system wallets are created on first use
            for owner in missing:
                await ensure_wallet(uow.session, owner, currency, SYSTEM_OWNERS[owner], now)
            wallets = await lock_wallets(uow.session, currency, owners)
        return wallets

    async def _replay(self, uow: UnitOfWork, stored: dict[str, Any]) -> TransactionView:
        row = await uow.session.get(Transaction, uuid.UUID(stored["transaction_id"]))
        if row is None:  # the key row and its transaction commit together
            raise IdempotencyConflict("the stored result of that idempotency key is missing")
        return TransactionView.model_validate(row).model_copy(update={"replayed": True})

    # -- wallets --------------------------------------------------------------------

    async def open_wallet(self, user_id: uuid.UUID, currency: Currency | str) -> WalletView:
        """The user's wallet in ``currency``, created (and announced) if it did not exist.

        Raises:
            InvalidOperation: ``user_id`` is a system owner id.
            ValueError: unknown currency.
        """
        currency = Currency(currency)
        if user_id in SYSTEM_OWNERS:
            raise InvalidOperation("system wallets are not opened for users")

        async def attempt() -> WalletView:
            now = utcnow()
            async with self.unit_of_work() as uow:
                if await ensure_wallet(uow.session, user_id, currency, WalletKind.USER, now):
                    await apply_metrics(uow.session, currency, now, wallets=1)
                    uow.audit(
                        AuditRecord(
                            "mint.wallet.open",
                            "wallet",
                            None,
                            user_id,
                            metadata={"currency": str(currency)},
                        )
                    )
                    uow.emit(
                        events.finance_event(
                            events.WALLET_CREATED,
                            {"user_id": str(user_id), "currency": str(currency)},
                            user_id,
                        )
                    )
                row = await uow.session.scalar(
                    select(Wallet).where(Wallet.user_id == user_id, Wallet.currency == currency)
                )
                assert row is not None
                return WalletView.model_validate(row)

        return await self._retrying(attempt)

    async def get_wallet(self, user_id: uuid.UUID, currency: Currency | str) -> WalletView:
        """The wallet of ``user_id`` (or a system owner) in ``currency``.

        Raises:
            WalletNotFound: there is none.
        """
        currency = Currency(currency)
        async with self._databases.engine(ServiceName.MINT).connect() as connection:
            row = (
                await connection.execute(
                    select(Wallet.__table__).where(
                        Wallet.user_id == user_id, Wallet.currency == currency
                    )
                )
            ).first()
        if row is None:
            raise WalletNotFound(f"user {user_id} has no {currency} wallet")
        return WalletView.model_validate(row._mapping)

    async def set_frozen(
        self, user_id: uuid.UUID, currency: Currency | str, frozen: bool, *, actor_id: uuid.UUID
    ) -> WalletView:
        """Freeze (or unfreeze) a wallet: a frozen wallet can neither send nor receive.

        Raises:
            WalletNotFound: there is no such wallet.
        """
        currency = Currency(currency)
        status = WalletStatus.FROZEN if frozen else WalletStatus.ACTIVE
        async with self.unit_of_work() as uow:
            wallet = require(
                await lock_wallets(uow.session, currency, [user_id]), user_id, currency
            )
            await uow.session.execute(
                update(Wallet)
                .where(Wallet.id == wallet.id)
                .values(status=status, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            uow.audit(
                AuditRecord(
                    "mint.wallet.freeze" if frozen else "mint.wallet.unfreeze",
                    "wallet",
                    str(wallet.id),
                    actor_id,
                )
            )
        return await self.get_wallet(user_id, currency)

    async def history(
        self,
        user_id: uuid.UUID,
        currency: Currency | str,
        cursor: str | None = None,
        limit: int = 50,
    ) -> HistoryPage:
        """A page of the wallet's statement, newest first (see :func:`queries.history`)."""
        async with self._databases.engine(ServiceName.MINT).connect() as connection:
            return await queries.history(connection, user_id, currency, cursor, limit)

    async def economic_metrics(self, currency: Currency | str) -> MetricsView:
        """The currency's total, circulating, staked and burned supply and wallet count."""
        async with self._databases.engine(ServiceName.MINT).connect() as connection:
            return await queries.economic_metrics(connection, currency)

    async def verify(self) -> VerifyReport:
        """Recompute every balance and invariant from the journal (see :func:`queries.verify`)."""
        async with self._databases.engine(ServiceName.MINT).connect() as connection:
            return await queries.verify(connection)

    async def purge_expired_keys(self, now: dt.datetime | None = None) -> int:
        """Forget idempotency keys whose retention (24 h by default) has passed; returns how many.

        A key reused after this gets a clear ``IdempotencyConflict`` (its transaction keeps
        the key), never a second effect.
        """
        async with self.unit_of_work() as uow:
            result = await uow.session.execute(
                delete(IdempotencyKey)
                .where(IdempotencyKey.expires_at < (now or utcnow()))
                .execution_options(synchronize_session=False)
            )
        return int(getattr(result, "rowcount", 0))

    # -- movements ------------------------------------------------------------------

    async def _move(
        self,
        *,
        operation: str,
        type_: TransactionType,
        currency: Currency | str,
        amount: Decimal | int | str,
        source_owner: uuid.UUID,
        target_owner: uuid.UUID,
        idempotency_key: str | None,
        reference: str | None = None,
        description: str | None = None,
        earned: bool = False,
        actor_id: uuid.UUID | None = None,
        event_type: str = events.TRANSACTION_COMPLETED,
    ) -> TransactionView:
        currency = Currency(currency)
        value = checked_amount(amount)
        if source_owner == target_owner:
            raise InvalidOperation("a wallet cannot pay itself")
        fingerprint = request_hash(
            operation,
            source=source_owner,
            target=target_owner,
            currency=currency,
            amount=value,
            reference=reference,
        )

        async def attempt() -> TransactionView:
            now, transaction_id = utcnow(), new_id()
            async with self.unit_of_work() as uow:
                if idempotency_key is not None:
                    stored = await claim_key(
                        uow.session,
                        idempotency_key,
                        fingerprint,
                        {"transaction_id": str(transaction_id)},
                        now,
                        self._ttl,
                    )
                    if stored is not None:
                        return await self._replay(uow, stored)
                wallets = await self._lock(uow, currency, [source_owner, target_owner], now)
                source = require(wallets, source_owner, currency)
                target = require(wallets, target_owner, currency)
                await post(
                    uow.session,
                    type_=type_,
                    currency=currency,
                    amount=value,
                    legs=[
                        Leg(source, -value),
                        Leg(target, value, earned=value if earned else ZERO),
                    ],
                    from_wallet=source,
                    to_wallet=target,
                    now=now,
                    transaction_id=transaction_id,
                    idempotency_key=idempotency_key,
                    reference=reference,
                    description=description,
                )
                view = _view(
                    transaction_id,
                    type_,
                    value,
                    currency,
                    source,
                    target,
                    now,
                    reference,
                    description,
                )
                uow.audit(
                    AuditRecord(
                        operation,
                        "transaction",
                        str(transaction_id),
                        actor_id or source_owner,
                        metadata={
                            "amount": str(value),
                            "currency": str(currency),
                            "to": str(target_owner),
                        },
                    )
                )
                payload = _payload(view, from_user=str(source_owner), to_user=str(target_owner))
                for subject in (source_owner, target_owner):
                    if subject not in SYSTEM_OWNERS:
                        uow.emit(events.finance_event(event_type, payload, subject))
            return view

        return await self._retrying(attempt)

    async def transfer(
        self,
        from_user: uuid.UUID,
        to_user: uuid.UUID,
        currency: Currency | str,
        amount: Decimal | int | str,
        idempotency_key: str,
        reference: str | None = None,
        description: str | None = None,
    ) -> TransactionView:
        """Move ``amount`` between two users' wallets; a retried key returns the original.

        Raises:
            InvalidAmountError, InsufficientFunds, WalletFrozen, WalletNotFound,
            IdempotencyConflict, InvalidOperation: and nothing is written.
        """
        return await self._move(
            operation="mint.transfer",
            type_=TransactionType.TRANSFER,
            currency=currency,
            amount=amount,
            source_owner=from_user,
            target_owner=to_user,
            idempotency_key=idempotency_key,
            reference=reference,
            description=description,
        )

    async def mint(
        self,
        currency: Currency | str,
        amount: Decimal | int | str,
        to: uuid.UUID,
        *,
        actor_id: uuid.UUID | None = None,
        idempotency_key: str | None = None,
        description: str | None = None,
    ) -> TransactionView:
        """Issue new money from the treasury to ``to`` (a user or a system owner id).

        Callers authorise it (admin or service role); the actor is audited.

        Raises:
            InvalidAmountError, WalletNotFound, WalletFrozen, IdempotencyConflict.
        """
        return await self._move(
            operation="mint.mint",
            type_=TransactionType.MINT,
            currency=currency,
            amount=amount,
            source_owner=SYSTEM_TREASURY_ID,
            target_owner=to,
            idempotency_key=idempotency_key,
            description=description,
            actor_id=actor_id,
        )

    async def reward(
        self,
        user_id: uuid.UUID,
        currency: Currency | str,
        amount: Decimal | int | str,
        reason: str,
        *,
        idempotency_key: str | None = None,
    ) -> TransactionView:
        """Pay ``amount`` from the reward pool to the user (counted as earned).

        Raises:
            InsufficientFunds: the reward pool holds less.
            InvalidAmountError, WalletNotFound, WalletFrozen, IdempotencyConflict.
        """
        return await self._move(
            operation="mint.reward",
            type_=TransactionType.REWARD,
            currency=currency,
            amount=amount,
            source_owner=SYSTEM_REWARD_POOL_ID,
            target_owner=user_id,
            idempotency_key=idempotency_key,
            description=reason,
            earned=True,
        )

    async def record_mining(
        self,
        user_id: uuid.UUID,
        activity: str,
        proof_ref: str,
        amount: Decimal | int | str,
        currency: Currency | str = Currency.AZR,
    ) -> MiningResult:
        """Pay a Proof-of-Knowledge reward once per (activity, proof_ref), however often called.

        Raises:
            InsufficientFunds: the reward pool holds less.
            InvalidAmountError, WalletNotFound, WalletFrozen, InvalidOperation.
        """
        currency = Currency(currency)
        value = checked_amount(amount)
        if not activity or not proof_ref or len(activity) > 64 or len(proof_ref) > 200:
            raise InvalidOperation("activity (≤ 64) and proof_ref (≤ 200) must be given")

        async def attempt() -> MiningResult:
            now, record_id, transaction_id = utcnow(), new_id(), new_id()
            async with self.unit_of_work() as uow:
                session = uow.session
                wallets = await self._lock(uow, currency, [SYSTEM_REWARD_POOL_ID, user_id], now)
                pool = require(wallets, SYSTEM_REWARD_POOL_ID, currency)
                wallet = require(wallets, user_id, currency)
                claimed = await session.execute(
                    insert_or_skip(
                        session,
                        MiningRecord,
                        ["activity", "proof_ref"],
                        id=record_id,
                        user_id=user_id,
                        wallet_id=wallet.id,
                        activity=activity,
                        proof_ref=proof_ref,
                        tokens_earned=value,
                        status=MiningStatus.REWARDED,
                        created_at=now,
                        updated_at=now,
                    )
                )
                if getattr(claimed, "rowcount", 0) != 1:
                    existing = (
                        await session.execute(
                            select(MiningRecord.id, MiningRecord.tokens_earned).where(
                                MiningRecord.activity == activity,
                                MiningRecord.proof_ref == proof_ref,
                            )
                        )
                    ).one()
                    return MiningResult(
                        record_id=existing.id,
                        paid=False,
                        tokens_earned=existing.tokens_earned,
                        transaction_id=None,
                    )
                reference = f"{activity}:{proof_ref}"
                await post(
                    session,
                    type_=TransactionType.MINING,
                    currency=currency,
                    amount=value,
                    legs=[Leg(pool, -value), Leg(wallet, value, earned=value)],
                    from_wallet=pool,
                    to_wallet=wallet,
                    now=now,
                    transaction_id=transaction_id,
                    reference=reference,
                    description=f"Proof-of-Knowledge: {activity}",
                )
                uow.audit(
                    AuditRecord(
                        "mint.mining",
                        "mining_record",
                        str(record_id),
                        user_id,
                        metadata={
                            "activity": activity,
                            "proof_ref": proof_ref,
                            "amount": str(value),
                        },
                    )
                )
                uow.emit(
                    events.finance_event(
                        events.MINING_REWARD,
                        {
                            "user_id": str(user_id),
                            "activity": activity,
                            "proof_ref": proof_ref,
                            "amount": str(value),
                            "currency": str(currency),
                            "transaction_id": str(transaction_id),
                        },
                        user_id,
                    )
                )
            return MiningResult(
                record_id=record_id, paid=True, tokens_earned=value, transaction_id=transaction_id
            )

        return await self._retrying(attempt)

    async def distribute_ubi(
        self, currency: Currency | str, amount_per_wallet: Decimal | int | str, period: str
    ) -> UbiResult:
        """Pay every active user wallet of ``currency`` once for ``period`` (see ``ubi``).

        Raises:
            InvalidAmountError, InvalidOperation: and nothing is written.
        """
        return await self._retrying(
            lambda: run_ubi(self.unit_of_work(), currency, amount_per_wallet, period)
        )

    # -- staking --------------------------------------------------------------------

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

    # -- escrow ---------------------------------------------------------------------

    async def _held(self, uow: UnitOfWork, contract_ref: str) -> dict[Currency, Decimal]:
        sign = {
            TransactionType.ESCROW_HOLD: 1,
            TransactionType.ESCROW_RELEASE: -1,
            TransactionType.REFUND: -1,
        }
        rows = await uow.session.execute(
            select(Transaction.type, Transaction.currency, func.sum(Transaction.amount))
            .where(Transaction.reference == contract_ref, Transaction.type.in_(list(sign)))
            .group_by(Transaction.type, Transaction.currency)
        )
        held: dict[Currency, Decimal] = {}
        for type_, currency, amount in rows:
            held[currency] = held.get(currency, ZERO) + sign[type_] * amount
        return held

    async def _payer(self, uow: UnitOfWork, contract_ref: str) -> uuid.UUID | None:
        return await uow.session.scalar(
            select(Wallet.user_id)
            .join(Transaction, Transaction.from_wallet_id == Wallet.id)
            .where(
                Transaction.reference == contract_ref,
                Transaction.type == TransactionType.ESCROW_HOLD,
            )
            .order_by(Transaction.created_at)
            .limit(1)
        )

    async def hold_escrow(
        self,
        contract_ref: str,
        payer: uuid.UUID,
        amount: Decimal | int | str,
        currency: Currency | str = Currency.AZR,
        *,
        idempotency_key: str | None = None,
    ) -> TransactionView:
        """Move ``amount`` from the payer into escrow for a contract.

        Raises:
            InsufficientFunds, InvalidAmountError, WalletNotFound, WalletFrozen,
            IdempotencyConflict.
        """
        return await self._move(
            operation="mint.escrow.hold",
            type_=TransactionType.ESCROW_HOLD,
            currency=currency,
            amount=amount,
            source_owner=payer,
            target_owner=SYSTEM_ESCROW_ID,
            idempotency_key=idempotency_key,
            reference=contract_ref,
        )

    async def _out_of_escrow(
        self,
        *,
        operation: str,
        type_: TransactionType,
        contract_ref: str,
        recipient: uuid.UUID | None,
        amount: Decimal | int | str | None,
        currency: Currency | str,
        idempotency_key: str | None,
    ) -> TransactionView:
        currency = Currency(currency)
        requested = checked_amount(amount) if amount is not None else None
        fingerprint = request_hash(
            operation,
            contract=contract_ref,
            recipient=recipient,
            amount=requested,
            currency=currency,
        )

        async def attempt() -> TransactionView:
            now, transaction_id = utcnow(), new_id()
            async with self.unit_of_work() as uow:
                if idempotency_key is not None:
                    stored = await claim_key(
                        uow.session,
                        idempotency_key,
                        fingerprint,
                        {"transaction_id": str(transaction_id)},
                        now,
                        self._ttl,
                    )
                    if stored is not None:
                        return await self._replay(uow, stored)
                target = recipient or await self._payer(uow, contract_ref)
                if target is None:
                    raise EscrowShortfall(f"contract {contract_ref!r} holds nothing in escrow")
                # The escrow wallet's lock serialises every movement out of escrow.
                wallets = await self._lock(uow, currency, [SYSTEM_ESCROW_ID, target], now)
                escrow = require(wallets, SYSTEM_ESCROW_ID, currency)
                held = await self._held(uow, contract_ref)
                if currency not in held and held:
                    raise CurrencyMismatch(
                        f"contract {contract_ref!r} is held in {', '.join(map(str, held))},"
                        f" not {currency}"
                    )
                wallet = require(wallets, target, currency)
                remaining = held.get(currency, ZERO)
                value = requested if requested is not None else remaining
                if value <= 0 or value > remaining:
                    raise EscrowShortfall(
                        f"contract {contract_ref!r} holds {remaining} {currency} in escrow,"
                        f" {value} requested"
                    )
                await post(
                    uow.session,
                    type_=type_,
                    currency=currency,
                    amount=value,
                    legs=[Leg(escrow, -value), Leg(wallet, value)],
                    from_wallet=escrow,
                    to_wallet=wallet,
                    now=now,
                    transaction_id=transaction_id,
                    idempotency_key=idempotency_key,
                    reference=contract_ref,
                )
                view = _view(
                    transaction_id, type_, value, currency, escrow, wallet, now, contract_ref
                )
                uow.audit(
                    AuditRecord(
                        operation,
                        "transaction",
                        str(transaction_id),
                        target,
                        metadata={"contract": contract_ref, "amount": str(value)},
                    )
                )
                uow.emit(
                    events.finance_event(
                        events.TRANSACTION_COMPLETED, _payload(view, to_user=str(target)), target
                    )
                )
            return view

        return await self._retrying(attempt)

    async def release_escrow(
        self,
        contract_ref: str,
        payee: uuid.UUID,
        amount: Decimal | int | str,
        currency: Currency | str = Currency.AZR,
        *,
        idempotency_key: str | None = None,
    ) -> TransactionView:
        """Pay ``amount`` of a contract's escrow to the payee (e.g. an approved milestone).

        Raises:
            EscrowShortfall: more than the contract still holds.
            CurrencyMismatch: the contract is held in another currency.
            WalletNotFound, WalletFrozen, IdempotencyConflict, InvalidAmountError.
        """
        return await self._out_of_escrow(
            operation="mint.escrow.release",
            type_=TransactionType.ESCROW_RELEASE,
            contract_ref=contract_ref,
            recipient=payee,
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
        )

    async def refund_escrow(
        self,
        contract_ref: str,
        amount: Decimal | int | str | None = None,
        currency: Currency | str = Currency.AZR,
        *,
        idempotency_key: str | None = None,
    ) -> TransactionView:
        """Return escrow to the contract's payer: ``amount``, or everything still held.

        Raises:
            EscrowShortfall, CurrencyMismatch, WalletNotFound, WalletFrozen,
            IdempotencyConflict, InvalidAmountError.
        """
        return await self._out_of_escrow(
            operation="mint.escrow.refund",
            type_=TransactionType.REFUND,
            contract_ref=contract_ref,
            recipient=None,
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
        )


def _due(stake: Stake, as_of: dt.datetime) -> Decimal:
    until = min(as_of, stake.unlocks_at)
    seconds = Decimal(max((until - stake.started_at).total_seconds(), 0))
    earned = stake.amount * stake.reward_rate * seconds / Decimal(365 * 24 * 3600)
    return earned.quantize(_EIGHT, rounding=ROUND_DOWN) - stake.rewards_paid
