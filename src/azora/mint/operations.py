"""The machinery the ledger operations share: retries, wallet locking, idempotent moves.

Every operation is one unit of work on the mint database. Serialization failures and
deadlocks reported by PostgreSQL (which the fixed lock order should prevent) are retried
inside the operation; an ``IntegrityError`` on a reused, expired idempotency key becomes
``IdempotencyConflict``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

from azora.db.audit import AuditSealer
from azora.db.columns import utcnow
from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.outbox import AuditRecord, EventMessage, audit_json, events_json
from azora.db.procedures import FunctionError, call_function
from azora.db.seeding import SYSTEM_ESCROW_ID, SYSTEM_REWARD_POOL_ID, SYSTEM_TREASURY_ID
from azora.db.uow import UnitOfWork
from azora.events.notify import OutboxNotifier
from azora.mint import events
from azora.mint.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidOperation,
    WalletFrozen,
    WalletNotFound,
)
from azora.mint.ledger import (
    ZERO,
    Leg,
    LockedWallet,
    check_key,
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


def _sqlstate(exc: DBAPIError | FunctionError) -> str | None:
    if isinstance(exc, FunctionError):
        return exc.sqlstate
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
        self._sealer = AuditSealer.of(databases)
        self._ttl = idempotency_ttl
        self._max_retries = max_retries
        #: how many times an operation was retried after a serialization failure/deadlock.
        self.retries = 0

    def unit_of_work(self) -> UnitOfWork:
        """A unit of work on the mint database, as the service: money moves between users.

        The operations check what the acting user may do before they move anything.
        """
        return UnitOfWork(self._databases, ServiceName.MINT, as_service=True)

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
            except (DBAPIError, FunctionError) as exc:
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

    @functools.cached_property
    def _posts_in_database(self) -> bool:
        """Whether two-wallet movements run as the ``mint_move`` function (PostgreSQL)."""
        return self._databases.target(ServiceName.MINT).backend == "postgresql"

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
        """Move ``amount`` from one owner's wallet to another's as one journal entry.

        On PostgreSQL the whole movement is one call of the ``mint_move`` function (one
        round trip); on SQLite it runs statement by statement in a unit of work. Both
        write the same rows and refuse the same way.
        """
        currency = Currency(currency)
        value = checked_amount(amount)
        if source_owner == target_owner:
            raise InvalidOperation("a wallet cannot pay itself")
        if idempotency_key is not None:
            check_key(idempotency_key)
        move = _Movement(
            operation=operation,
            type_=type_,
            currency=currency,
            amount=value,
            source_owner=source_owner,
            target_owner=target_owner,
            idempotency_key=idempotency_key,
            fingerprint=request_hash(
                operation,
                source=source_owner,
                target=target_owner,
                currency=currency,
                amount=value,
                reference=reference,
            ),
            reference=reference,
            description=description,
            earned=earned,
            actor_id=actor_id or source_owner,
            event_type=event_type,
        )
        if self._posts_in_database:
            return await self._retrying(lambda: self._move_in_database(move))
        return await self._retrying(lambda: self._move_in_session(move))

    async def _move_in_session(self, move: _Movement) -> TransactionView:
        now, transaction_id = utcnow(), new_id()
        async with self.unit_of_work() as uow:
            if move.idempotency_key is not None:
                done = await self._claim(
                    uow, move.idempotency_key, move.fingerprint, transaction_id, now
                )
                if done is not None:
                    return done
            wallets = await self._lock(
                uow, move.currency, [move.source_owner, move.target_owner], now
            )
            source = require(wallets, move.source_owner, move.currency)
            target = require(wallets, move.target_owner, move.currency)
            await post(
                uow.session,
                type_=move.type_,
                currency=move.currency,
                amount=move.amount,
                legs=[
                    Leg(source, -move.amount),
                    Leg(target, move.amount, earned=move.amount if move.earned else ZERO),
                ],
                from_wallet=source,
                to_wallet=target,
                now=now,
                transaction_id=transaction_id,
                idempotency_key=move.idempotency_key,
                reference=move.reference,
                description=move.description,
            )
            view = move.view(transaction_id, source.id, target.id, now)
            for event in move.events(view):
                uow.emit(event)
            uow.audit(move.audit_record(transaction_id))
        return view

    async def _move_in_database(self, move: _Movement) -> TransactionView:
        now, transaction_id = utcnow(), new_id()
        source_kind = SYSTEM_OWNERS.get(move.source_owner, WalletKind.USER)
        target_kind = SYSTEM_OWNERS.get(move.target_owner, WalletKind.USER)
        value = move.amount
        circulating = (value if target_kind is WalletKind.USER else ZERO) - (
            value if source_kind is WalletKind.USER else ZERO
        )
        total = (value if source_kind is WalletKind.TREASURY else ZERO) - (
            value if target_kind is WalletKind.TREASURY else ZERO
        )
        # The view and its events are known before the call: only the wallet ids are not.
        view = move.view(transaction_id, None, None, now)
        try:
            rows = await call_function(
                self._databases,
                ServiceName.MINT,
                "mint_move",
                transaction_id,
                str(move.type_),
                str(move.currency),
                value,
                move.source_owner,
                str(source_kind),
                move.target_owner,
                str(target_kind),
                move.earned,
                move.idempotency_key,
                new_id(),
                move.fingerprint,
                now + self._ttl,
                move.reference,
                move.description,
                now,
                [new_id(), new_id()],
                events_json(move.events(view)),
                audit_json([move.audit_record(transaction_id)]),
                circulating,
                total,
            )
        except FunctionError as exc:
            raise _refusal(exc) from None
        outcome = rows[0]
        if outcome["outcome"] == "replayed":
            async with self.unit_of_work() as uow:
                return await self._replay(uow, {"transaction_id": str(outcome["transaction_id"])})
        # mint_move committed outbox rows: wake the relay (throttled; never raises).
        OutboxNotifier.of(self._databases).poke(ServiceName.MINT)
        # mint_move committed an audit row: chain it soon (throttled; never raises).
        await self._sealer.poke(ServiceName.MINT)
        return view.model_copy(
            update={
                "from_wallet_id": outcome["from_wallet_id"],
                "to_wallet_id": outcome["to_wallet_id"],
            }
        )


@dataclass(frozen=True)
class _Movement:
    """A checked request to move money between two owners' wallets."""

    operation: str
    type_: TransactionType
    currency: Currency
    amount: Decimal
    source_owner: uuid.UUID
    target_owner: uuid.UUID
    idempotency_key: str | None
    fingerprint: str
    reference: str | None
    description: str | None
    earned: bool
    actor_id: uuid.UUID
    event_type: str

    def view(
        self,
        transaction_id: uuid.UUID,
        from_wallet_id: uuid.UUID | None,
        to_wallet_id: uuid.UUID | None,
        now: dt.datetime,
    ) -> TransactionView:
        """The posted transaction as the caller sees it."""
        return TransactionView(
            id=transaction_id,
            type=self.type_,
            amount=self.amount,
            currency=self.currency,
            from_wallet_id=from_wallet_id,
            to_wallet_id=to_wallet_id,
            reference=self.reference,
            description=self.description,
            created_at=now,
        )

    def events(self, view: TransactionView) -> list[EventMessage]:
        """One event for each user (not system) owner involved."""
        payload = event_payload(
            view, from_user=str(self.source_owner), to_user=str(self.target_owner)
        )
        return [
            events.finance_event(self.event_type, payload, subject)
            for subject in (self.source_owner, self.target_owner)
            if subject not in SYSTEM_OWNERS
        ]

    def audit_record(self, transaction_id: uuid.UUID) -> AuditRecord:
        """The audit record of the movement."""
        return AuditRecord(
            self.operation,
            "transaction",
            str(transaction_id),
            self.actor_id,
            metadata={
                "amount": str(self.amount),
                "currency": str(self.currency),
                "to": str(self.target_owner),
            },
        )


def _refusal(exc: FunctionError) -> Exception:
    """The domain error for a refusal of ``mint_move``; other failures as they are."""
    if exc.sqlstate == "AZ001":
        return WalletNotFound(exc.message, hint="open the wallet first")
    if exc.sqlstate == "AZ002":
        return WalletFrozen(exc.message)
    if exc.sqlstate == "AZ003":
        return InsufficientFunds(exc.message)
    if exc.sqlstate == "AZ004":
        return IdempotencyConflict(exc.message, hint="use a new key for a new request")
    if exc.constraint == "uq_transactions_idempotency_key":
        return IdempotencyConflict("that idempotency key was used by an earlier, expired request")
    return exc
