"""A bank simulation for the ledger's concurrency tests, and the invariants it must keep.

``fund`` opens user wallets and mints a random amount into each; ``run_transfers`` fires
random transfers from many asyncio tasks at once (some overdrawing on purpose); the
``check_*`` functions then read the database and raise ``AssertionError`` when money
was created, lost or moved twice. They take any transfer function, so the canary in
``naive.py`` goes through the very same checks.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.mint.errors import InsufficientFunds
from azora.mint.ledger import ZERO
from azora.mint.models import LedgerEntry, Transaction, TransactionType, Wallet
from azora.mint.service import MintService
from azora.types import Currency, ServiceName

#: (source owner, target owner, amount, idempotency key) -> anything; raises on refusal.
Transfer = Callable[[uuid.UUID, uuid.UUID, Decimal, str], Awaitable[object]]

#: More than every balance together: such a transfer must be refused.
OVERDRAFT = Decimal(10**8)
OVERDRAFT_SHARE = 0.05

# Read at import: the suite's autouse fixture removes AZORA_* variables before each test.
_SEED = os.environ.get("AZORA_TEST_SEED")


def bank_seed() -> int:
    """``AZORA_TEST_SEED`` when set (to replay a run), else a fresh random seed."""
    return int(_SEED) if _SEED else random.SystemRandom().randrange(2**32)


@dataclass
class Tally:
    """How the transfers of a run ended."""

    accepted: int = 0
    refused: int = 0


async def fund(mint: MintService, owners: Sequence[uuid.UUID], rng: random.Random) -> Decimal:
    """Open an AZR wallet for each owner and mint 1 to 1,000 AZR into it; the total minted."""
    total = ZERO
    for owner in owners:
        await mint.open_wallet(owner, Currency.AZR)
        amount = Decimal(rng.randint(100, 100_000)) / 100
        await mint.mint(Currency.AZR, amount, owner)
        total += amount
    return total


async def open_bank(mint: MintService, wallets: int, seed: int) -> tuple[list[uuid.UUID], Decimal]:
    """``wallets`` funded owners (the first one is the hot wallet) and the total minted."""
    owners = [new_id() for _ in range(wallets)]
    return owners, await fund(mint, owners, random.Random(f"{seed}:fund"))


def _pair(rng: random.Random, owners: Sequence[uuid.UUID], hot_share: float) -> list[uuid.UUID]:
    if rng.random() < hot_share:
        pair = [owners[0], rng.choice(owners[1:])]
        rng.shuffle(pair)
        return pair
    return rng.sample(owners, 2)


def _amount(rng: random.Random) -> Decimal:
    if rng.random() < OVERDRAFT_SHARE:
        return OVERDRAFT
    return Decimal(rng.randint(1, 20_000)) / 100


async def run_transfers(
    transfer: Transfer,
    owners: Sequence[uuid.UUID],
    *,
    seed: int,
    workers: int,
    per_worker: int,
    hot_share: float = 0.0,
) -> Tally:
    """Run ``workers`` concurrent tasks of ``per_worker`` random transfers each.

    Worker ``n`` draws from ``Random(f"{seed}:{n}")``, so a seed replays the same requests
    (not the same interleaving). With ``hot_share`` that share of the transfers has the
    first owner as source or target. ``InsufficientFunds`` counts as refused; any other
    exception cancels the run and propagates.
    """
    tally = Tally()

    async def worker(n: int) -> None:
        rng = random.Random(f"{seed}:{n}")
        for i in range(per_worker):
            source, target = _pair(rng, owners, hot_share)
            try:
                await transfer(source, target, _amount(rng), f"bank-{seed}-{n}-{i}")
            except InsufficientFunds:
                tally.refused += 1
            else:
                tally.accepted += 1

    async with asyncio.TaskGroup() as group:
        for n in range(workers):
            group.create_task(worker(n))
    return tally


async def check_bank(
    databases: Databases, owners: Sequence[uuid.UUID], minted: Decimal, accepted: int
) -> None:
    """Assert that transfers among ``owners`` kept every invariant of the ledger.

    The owners' balances still sum to ``minted`` and none is negative; there is one
    TRANSFER transaction per accepted transfer, each with two entries summing to zero;
    ``MintService.verify`` finds nothing.
    """
    async with databases.owner_engine(ServiceName.MINT).connect() as connection:
        balances = list(
            await connection.scalars(select(Wallet.balance).where(Wallet.user_id.in_(owners)))
        )
        transfers = set(
            await connection.scalars(
                select(Transaction.id).where(Transaction.type == TransactionType.TRANSFER)
            )
        )
        entries = await connection.execute(
            select(LedgerEntry.transaction_id, LedgerEntry.amount)
            .join(Transaction, Transaction.id == LedgerEntry.transaction_id)
            .where(Transaction.type == TransactionType.TRANSFER)
        )
        legs: dict[uuid.UUID, list[Decimal]] = defaultdict(list)
        for transaction_id, amount in entries:
            legs[transaction_id].append(amount)
    assert len(balances) == len(owners)
    total = sum(balances, ZERO)
    assert total == minted, f"total not conserved: balances sum to {total}, minted {minted}"
    assert min(balances) >= 0, f"a balance went negative: {min(balances)}"
    assert len(transfers) == accepted, f"{len(transfers)} transfers written, {accepted} accepted"
    assert set(legs) == transfers
    unbalanced = [t for t, amounts in legs.items() if len(amounts) != 2 or sum(amounts) != 0]
    assert not unbalanced, f"transfers without two balanced entries: {unbalanced[:5]}"
    report = await MintService(databases).verify()
    assert report.ok, report


async def check_single_effect(
    databases: Databases,
    type_: TransactionType,
    balances: Mapping[uuid.UUID, Decimal],
    transaction_ids: Sequence[uuid.UUID | None],
) -> None:
    """Assert that a request delivered many times took effect once.

    Exactly one transaction of ``type_`` exists, every delivery reported its id, and the
    owners' balances are ``balances``.
    """
    async with databases.owner_engine(ServiceName.MINT).connect() as connection:
        written = list(
            await connection.scalars(select(Transaction.id).where(Transaction.type == type_))
        )
        rows = await connection.execute(
            select(Wallet.user_id, Wallet.balance).where(Wallet.user_id.in_(balances))
        )
        actual = {user_id: balance for user_id, balance in rows}
    assert len(written) == 1, f"{len(written)} {type_} transactions for one request"
    assert set(transaction_ids) == set(written)
    assert actual == dict(balances)
