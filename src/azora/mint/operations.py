"""The machinery the ledger operations share: retries, wallet locking, idempotent moves.

Every operation is one unit of work on the mint database. Serialization failures and
deadlocks reported by PostgreSQL (which the fixed lock order should prevent) are retried
inside the operation; an ``IntegrityError`` on a reused, expired idempotency key becomes
``IdempotencyConflict``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

from azora.db.columns import utcnow
from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.outbox import AuditRecord
from azora.db.seeding import SYSTEM_ESCROW_ID, SYSTEM_REWARD_POOL_ID, SYSTEM_TREASURY_ID
from azora.db.uow import UnitOfWork
from azora.mint import events
from azora.mint.errors import (
    IdempotencyConflict,
    InvalidOperation,
)
from azora.mint.ledger import (
    ZERO,
    Leg,
    LockedWallet,
    checked_amount,
    claim_key,
    ensure_wallet,
    lock_wallets,
    post,
    request_hash,
    require,
)
from azora.mint.models import (
    Transaction,
    TransactionType,
    WalletKind,
)
from azora.mint.schemas import (
    TransactionView,
)
from azora.types import Currency, ServiceName

T = TypeVar("T")

#: Owner ids of the system wallets, by kind.
SYSTEM_OWNERS: dict[uuid.UUID, WalletKind] = {
    SYSTEM_TREASURY_ID: WalletKind.TREASURY,
    SYSTEM_REWARD_POOL_ID: WalletKind.REWARD_POOL,
    SYSTEM_ESCROW_ID: WalletKind.ESCROW,
}
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


def _sqlstate(exc: DBAPIError) -> str | None:
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


def transaction_view(
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
    """The view of a transaction just posted (no read back)."""
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


def event_payload(view: TransactionView, **extra: Any) -> dict[str, Any]:
    """The payload of ``finance.transaction.completed`` for ``view``."""
    return {
        "transaction_id": str(view.id),
        "type": str(view.type),
        "amount": str(view.amount),
        "currency": str(view.currency),
        "reference": view.reference,
        **extra,
    }


class MintOperations:
    """What every group of ledger operations shares: retries, locking, idempotent moves."""

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

    async def _claim(
        self,
        uow: UnitOfWork,
        key: str,
        fingerprint: str,
        transaction_id: uuid.UUID,
        now: dt.datetime,
    ) -> TransactionView | None:
        """Claim ``key`` for a movement about to be posted as ``transaction_id``.

        Returns the original result when the same request was already done, else None.
        """
        stored = await claim_key(
            uow.session, key, fingerprint, {"transaction_id": str(transaction_id)}, now, self._ttl
        )
        return None if stored is None else await self._replay(uow, stored)

    async def _replay(self, uow: UnitOfWork, stored: dict[str, Any]) -> TransactionView:
        row = await uow.session.get(Transaction, uuid.UUID(stored["transaction_id"]))
        if row is None:  # the key row and its transaction commit together
            raise IdempotencyConflict("the stored result of that idempotency key is missing")
        return TransactionView.model_validate(row).model_copy(update={"replayed": True})

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
                    done = await self._claim(uow, idempotency_key, fingerprint, transaction_id, now)
                    if done is not None:
                        return done
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
                view = transaction_view(
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
                payload = event_payload(
                    view, from_user=str(source_owner), to_user=str(target_owner)
                )
                for subject in (source_owner, target_owner):
                    if subject not in SYSTEM_OWNERS:
                        uow.emit(events.finance_event(event_type, payload, subject))
            return view

        return await self._retrying(attempt)
