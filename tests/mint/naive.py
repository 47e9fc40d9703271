"""Deliberately broken ledger code: the canary that proves the concurrency checks can fail.

``NaiveLedger.transfer`` reads both balances with a plain SELECT (no lock), pauses to
widen the race window, then writes balances computed in Python (no conditional UPDATE):
concurrent transfers lose each other's updates. ``transfer_once`` adds "idempotency" by
looking for the key with a SELECT before writing, with no unique index behind it (the key
goes in ``reference``, not in the uniquely indexed ``idempotency_key``), so concurrent
deliveries all write. Rows are updated in wallet-id order only so that PostgreSQL reports
no deadlock: the canary must fail the invariant checks, not crash. Never imitate it.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from azora.db.columns import utcnow
from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.mint.errors import InsufficientFunds
from azora.mint.models import LedgerEntry, Transaction, TransactionType, Wallet
from azora.types import Currency, ServiceName

_WALLETS = Wallet.__table__
_TRANSACTIONS = Transaction.__table__
_ENTRIES = LedgerEntry.__table__


class NaiveLedger:
    """Read-then-write transfers on the mint database, without locks (see the module)."""

    def __init__(self, databases: Databases, rng: random.Random) -> None:
        self._engine = databases.owner_engine(ServiceName.MINT)
        self._rng = rng

    async def transfer(
        self, source: uuid.UUID, target: uuid.UUID, amount: Decimal, key: str
    ) -> uuid.UUID:
        """Move ``amount``; raises ``InsufficientFunds`` when the balance read is too small."""
        async with self._engine.begin() as connection:
            return await self._move(connection, source, target, amount, key)

    async def transfer_once(
        self, source: uuid.UUID, target: uuid.UUID, amount: Decimal, key: str
    ) -> tuple[uuid.UUID, bool]:
        """Move ``amount`` unless a transfer with ``key`` was seen; (id, replayed)."""
        async with self._engine.begin() as connection:
            seen = await connection.scalar(
                select(_TRANSACTIONS.c.id).where(_TRANSACTIONS.c.reference == key)
            )
            if seen is not None:
                return seen, True
            await self._pause()
            return await self._move(connection, source, target, amount, key), False

    async def _pause(self) -> None:
        await asyncio.sleep(self._rng.uniform(0, 0.001))

    async def _move(
        self,
        connection: AsyncConnection,
        source: uuid.UUID,
        target: uuid.UUID,
        amount: Decimal,
        key: str,
    ) -> uuid.UUID:
        rows = await connection.execute(
            select(_WALLETS.c.id, _WALLETS.c.user_id, _WALLETS.c.balance).where(
                _WALLETS.c.currency == Currency.AZR, _WALLETS.c.user_id.in_([source, target])
            )
        )
        read = {row.user_id: row for row in rows}
        paying, receiving = read[source], read[target]
        if paying.balance < amount:
            raise InsufficientFunds(f"wallet {paying.id} holds {paying.balance}")
        await self._pause()
        now = utcnow()
        legs = {paying.id: (-amount, paying.balance), receiving.id: (amount, receiving.balance)}
        for wallet_id in sorted(legs):
            change, balance = legs[wallet_id]
            await connection.execute(
                update(_WALLETS)
                .where(_WALLETS.c.id == wallet_id)
                .values(balance=balance + change, updated_at=now)
            )
        transaction_id = new_id()
        await connection.execute(
            insert(_TRANSACTIONS).values(
                id=transaction_id,
                type=TransactionType.TRANSFER,
                amount=amount,
                currency=Currency.AZR,
                from_wallet_id=paying.id,
                to_wallet_id=receiving.id,
                reference=key,
                completed_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        await connection.execute(
            insert(_ENTRIES),
            [
                {
                    "id": new_id(),
                    "transaction_id": transaction_id,
                    "wallet_id": wallet_id,
                    "amount": change,
                    "balance_after": balance + change,
                    "created_at": now,
                    "updated_at": now,
                }
                for wallet_id, (change, balance) in legs.items()
            ],
        )
        return transaction_id
