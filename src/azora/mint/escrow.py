"""Escrow for the marketplace: hold a contract's money, release it to the payee, refund it.

A contract's escrow is the sum of its holds minus its releases and refunds, all
transactions carrying the contract reference; the escrow wallet's row lock serialises
every movement out of escrow, so two releases can never spend the same funds.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select

from azora.db.columns import utcnow
from azora.db.ids import new_id
from azora.db.outbox import AuditRecord
from azora.db.seeding import SYSTEM_ESCROW_ID
from azora.db.uow import UnitOfWork
from azora.mint import events
from azora.mint.errors import (
    CurrencyMismatch,
    EscrowShortfall,
)
from azora.mint.ledger import (
    ZERO,
    Leg,
    checked_amount,
    post,
    request_hash,
    require,
)
from azora.mint.models import (
    Transaction,
    TransactionType,
    Wallet,
)
from azora.mint.operations import MintOperations, event_payload, transaction_view
from azora.mint.schemas import (
    TransactionView,
)
from azora.types import Currency


class EscrowOperations(MintOperations):
    """Hold, release and refund contract escrow."""

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
                    done = await self._claim(uow, idempotency_key, fingerprint, transaction_id, now)
                    if done is not None:
                        return done
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
                view = transaction_view(
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
                        events.TRANSACTION_COMPLETED,
                        event_payload(view, to_user=str(target)),
                        target,
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
