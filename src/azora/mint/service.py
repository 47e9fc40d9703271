"""The mint's operations: wallets, issuance, transfers, rewards, mining, staking, escrow.

Each public method is one transaction through the unit of work: it locks the wallets it
moves (in id order), posts a balanced journal entry, appends an audit record and emits
its ``finance.*`` event into the outbox. On PostgreSQL the two-wallet movements
(transfer, mint, reward, mining, escrow hold) are one call of the ``mint_move`` function
instead, which does the same in one statement and one round trip (see
:mod:`azora.db.procedures`). Serialization failures and deadlocks reported
by PostgreSQL (which the lock order should prevent) are retried inside the operation.
The shared machinery is in :mod:`azora.mint.operations`, staking in
:mod:`azora.mint.staking`, escrow in :mod:`azora.mint.escrow`, UBI in
:mod:`azora.mint.ubi`, and statements, metrics and verification (reads) in
:mod:`azora.mint.queries`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import delete, select, update

from azora.db.columns import utcnow
from azora.db.engines import reading
from azora.db.ids import new_id
from azora.db.outbox import AuditRecord
from azora.db.scope import SERVICE, for_user, scoped_connection
from azora.db.seeding import SYSTEM_REWARD_POOL_ID, SYSTEM_TREASURY_ID
from azora.db.statements import insert_or_skip
from azora.mint import events, queries
from azora.mint.errors import (
    InvalidOperation,
    WalletNotFound,
)
from azora.mint.escrow import EscrowOperations
from azora.mint.ledger import (
    Leg,
    apply_metrics,
    checked_amount,
    ensure_wallet,
    lock_wallets,
    post,
    require,
)
from azora.mint.models import (
    IdempotencyKey,
    MiningRecord,
    MiningStatus,
    TransactionType,
    Wallet,
    WalletKind,
    WalletStatus,
)
from azora.mint.operations import SYSTEM_OWNERS, MintOperations
from azora.mint.queries import VerifyReport
from azora.mint.schemas import (
    HistoryPage,
    MetricsView,
    MiningResult,
    TransactionView,
    UbiResult,
    WalletView,
)
from azora.mint.staking import StakingOperations, staking_rate
from azora.mint.ubi import run_ubi
from azora.types import Currency, ServiceName

__all__ = ["SYSTEM_OWNERS", "MintOperations", "MintService", "staking_rate"]


class MintService(StakingOperations, EscrowOperations):
    """The ledger's operations on the mint database (see the module docstring)."""

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
        engine = self._databases.engine(ServiceName.MINT)
        async with scoped_connection(engine, for_user(user_id)) as connection:
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
        engine = self._databases.engine(ServiceName.MINT)
        async with scoped_connection(engine, for_user(user_id)) as connection:
            return await queries.history(connection, user_id, currency, cursor, limit)

    async def economic_metrics(self, currency: Currency | str) -> MetricsView:
        """The currency's total, circulating, staked and burned supply and wallet count."""
        async with reading(self._databases.engine(ServiceName.MINT)).connect() as connection:
            return await queries.economic_metrics(connection, currency)

    async def verify(self) -> VerifyReport:
        """Recompute every balance and invariant from the journal (see :func:`queries.verify`)."""
        engine = self._databases.engine(ServiceName.MINT)
        async with scoped_connection(engine, SERVICE) as connection:
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
