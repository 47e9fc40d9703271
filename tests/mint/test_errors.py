"""Every refusal is a specific domain error, and a refused operation writes nothing at all."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from azora.db.engines import Databases
from azora.db.seeding import SYSTEM_REWARD_POOL_ID, SYSTEM_TREASURY_ID
from azora.errors import InvalidAmountError
from azora.mint.errors import (
    CurrencyMismatch,
    EscrowShortfall,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidOperation,
    StakeNotFound,
    WalletFrozen,
    WalletNotFound,
)
from azora.mint.models import (
    AuditLog,
    EconomicMetrics,
    IdempotencyKey,
    LedgerEntry,
    MiningRecord,
    OutboxEvent,
    Stake,
    Transaction,
    UbiDistribution,
    Wallet,
)
from azora.mint.service import MintService
from azora.types import Currency, ServiceName

AZR, USD = Currency.AZR, Currency.USD
_COUNTED = (
    Transaction,
    LedgerEntry,
    IdempotencyKey,
    OutboxEvent,
    AuditLog,
    Stake,
    MiningRecord,
    UbiDistribution,
)


@dataclass(frozen=True)
class World:
    """Alice has 100 AZR left after holding 20 in escrow for contract "c-1" and paying Dave
    0.5 under key "used" (he paid it back); the reward pool has 10; Bob has empty AZR and
    USD wallets; Carol is frozen with 10 AZR; Dave's AZR wallet is empty."""

    alice: uuid.UUID
    bob: uuid.UUID
    carol: uuid.UUID
    dave: uuid.UUID


Call = Callable[[MintService, World], Awaitable[object]]


@pytest.fixture
async def world(mint: MintService) -> World:
    alice, bob, carol, dave = (uuid.uuid4() for _ in range(4))
    for user in (alice, bob, carol, dave):
        await mint.open_wallet(user, AZR)
    await mint.open_wallet(bob, USD)
    await mint.mint(AZR, 120, alice)
    await mint.mint(AZR, 10, carol)
    await mint.mint(AZR, 10, SYSTEM_REWARD_POOL_ID)
    await mint.hold_escrow("c-1", alice, 20)
    await mint.transfer(alice, dave, AZR, "0.5", "used")
    await mint.transfer(dave, alice, AZR, "0.5", "used-back")
    await mint.set_frozen(carol, AZR, True, actor_id=uuid.uuid4())
    return World(alice, bob, carol, dave)


async def _snapshot(databases: Databases) -> dict[str, Any]:
    """Row counts of every table an operation writes, and every wallet and metrics row."""
    async with databases.owner_engine(ServiceName.MINT).connect() as connection:
        counts = {
            model.__tablename__: await connection.scalar(select(func.count()).select_from(model))
            for model in _COUNTED
        }
        wallets = (
            await connection.execute(
                select(
                    Wallet.id, Wallet.balance, Wallet.staked, Wallet.earned, Wallet.status
                ).order_by(Wallet.id)
            )
        ).all()
        metrics = (
            await connection.execute(
                select(
                    EconomicMetrics.currency,
                    EconomicMetrics.total_supply,
                    EconomicMetrics.circulating_supply,
                    EconomicMetrics.staked_supply,
                    EconomicMetrics.wallet_count,
                ).order_by(EconomicMetrics.currency)
            )
        ).all()
    return {"counts": counts, "wallets": list(wallets), "metrics": list(metrics)}


def _transfer_of(amount: Any) -> Call:
    return lambda m, w: m.transfer(w.alice, w.bob, AZR, amount, "bad-amount")


#: For each error, the refusals that must raise it (by a readable name).
REFUSALS: dict[type[Exception], dict[str, Call]] = {
    InsufficientFunds: {
        "user-overdraw": lambda m, w: m.transfer(w.alice, w.bob, AZR, "100.01", "k"),
        "reward-beyond-pool": lambda m, w: m.reward(w.bob, AZR, "10.00000001", "r"),
        "mining-beyond-pool": lambda m, w: m.record_mining(w.bob, "quiz", "q-1", 11),
        "stake-overdraw": lambda m, w: m.stake(w.alice, AZR, 101, 30),
        "hold-overdraw": lambda m, w: m.hold_escrow("c-2", w.alice, 101),
    },
    WalletFrozen: {
        "cannot-send": lambda m, w: m.transfer(w.carol, w.bob, AZR, 1, "k"),
        "cannot-receive": lambda m, w: m.transfer(w.alice, w.carol, AZR, 1, "k"),
        "cannot-be-minted-to": lambda m, w: m.mint(AZR, 1, w.carol),
        "cannot-be-rewarded": lambda m, w: m.reward(w.carol, AZR, 1, "r"),
        "cannot-stake": lambda m, w: m.stake(w.carol, AZR, 1, 30),
    },
    WalletNotFound: {
        "unknown-payer": lambda m, w: m.transfer(uuid.uuid4(), w.bob, AZR, 1, "k"),
        "unknown-payee": lambda m, w: m.transfer(w.alice, uuid.uuid4(), AZR, 1, "k"),
        "unopened-currency": lambda m, w: m.transfer(w.bob, w.alice, USD, 1, "k"),
        "mint-to-nobody": lambda m, w: m.mint(AZR, 1, uuid.uuid4()),
        "get-unopened": lambda m, w: m.get_wallet(w.alice, USD),
        "history-of-nobody": lambda m, w: m.history(uuid.uuid4(), AZR),
        "freeze-nobody": lambda m, w: m.set_frozen(uuid.uuid4(), AZR, True, actor_id=w.bob),
    },
    IdempotencyConflict: {
        "other-amount": lambda m, w: m.transfer(w.alice, w.dave, AZR, 1, "used"),
        "other-recipient": lambda m, w: m.transfer(w.alice, w.bob, AZR, "0.5", "used"),
        "other-operation": lambda m, w: m.mint(AZR, "0.5", w.dave, idempotency_key="used"),
    },
    InvalidAmountError: {
        "zero": _transfer_of(0),
        "negative": _transfer_of(-1),
        "negative-unit": _transfer_of("-0.00000001"),
        "9-decimals": _transfer_of("0.000000001"),
        "float": _transfer_of(1.5),
        "19-digits": _transfer_of("10000000000"),
        "nan": _transfer_of(Decimal("NaN")),
        "nan-string": _transfer_of("NaN"),
        "infinity": _transfer_of("Infinity"),
        "not-a-number": _transfer_of("12abc"),
        "mint-zero": lambda m, w: m.mint(AZR, 0, w.bob),
        "reward-negative": lambda m, w: m.reward(w.bob, AZR, -1, "r"),
        "stake-9-decimals": lambda m, w: m.stake(w.alice, AZR, "1e-9", 30),
        "hold-zero": lambda m, w: m.hold_escrow("c-2", w.alice, 0),
        "release-zero": lambda m, w: m.release_escrow("c-1", w.bob, 0),
        "refund-negative": lambda m, w: m.refund_escrow("c-1", -1),
        "ubi-zero": lambda m, w: m.distribute_ubi(AZR, 0, "2030-01"),
        "mining-negative": lambda m, w: m.record_mining(w.bob, "quiz", "q-1", -2),
    },
    InvalidOperation: {
        "pay-yourself": lambda m, w: m.transfer(w.alice, w.alice, AZR, 1, "k"),
        "lock-0-days": lambda m, w: m.stake(w.alice, AZR, 1, 0),
        "lock-3651-days": lambda m, w: m.stake(w.alice, AZR, 1, 3651),
        "empty-key": lambda m, w: m.transfer(w.alice, w.bob, AZR, 1, ""),
        "201-char-key": lambda m, w: m.transfer(w.alice, w.bob, AZR, 1, "k" * 201),
        "empty-ubi-period": lambda m, w: m.distribute_ubi(AZR, 1, ""),
        "17-char-ubi-period": lambda m, w: m.distribute_ubi(AZR, 1, "p" * 17),
        "history-limit-0": lambda m, w: m.history(w.alice, AZR, limit=0),
        "history-limit-201": lambda m, w: m.history(w.alice, AZR, limit=201),
        "history-cursor-garbage": lambda m, w: m.history(w.alice, AZR, cursor="garbage"),
        "history-cursor-not-base64": lambda m, w: m.history(w.alice, AZR, cursor="!!"),
        "open-system-wallet": lambda m, w: m.open_wallet(SYSTEM_TREASURY_ID, AZR),
        "mining-without-activity": lambda m, w: m.record_mining(w.bob, "", "p", 1),
    },
    CurrencyMismatch: {
        "release-usd-of-azr-contract": lambda m, w: m.release_escrow("c-1", w.bob, 5, USD),
        "release-all-usd-of-azr": lambda m, w: m.release_escrow("c-1", w.bob, 20, "USD"),
    },
    EscrowShortfall: {
        "release-more-than-held": lambda m, w: m.release_escrow("c-1", w.bob, "20.00000001"),
        "refund-more-than-held": lambda m, w: m.refund_escrow("c-1", 21),
        "release-nothing-held": lambda m, w: m.release_escrow("c-none", w.bob, 1),
        "refund-nothing-held": lambda m, w: m.refund_escrow("c-none"),
    },
    StakeNotFound: {
        "release-unknown-stake": lambda m, w: m.release_stake(uuid.uuid4()),
    },
}


@pytest.mark.parametrize("error", list(REFUSALS), ids=lambda error: error.__name__)
async def test_each_refusal_raises_its_error_and_writes_nothing(
    mint: MintService,
    databases: Databases,
    world: World,
    error: type[Exception],
    subtests: pytest.Subtests,
) -> None:
    # Refusals write nothing, so every case of an error can share one world.
    for name, call in REFUSALS[error].items():
        with subtests.test(msg=name):
            before = await _snapshot(databases)
            with pytest.raises(error):
                await call(mint, world)
            assert await _snapshot(databases) == before


async def test_a_forged_cursor_with_a_naive_timestamp_is_an_invalid_operation(
    mint: MintService, world: World
) -> None:
    forged = base64.urlsafe_b64encode(f"2030-01-01T00:00:00|{uuid.uuid4()}".encode()).decode()
    with pytest.raises(InvalidOperation, match="cursor"):
        await mint.history(world.alice, AZR, cursor=forged)


async def test_unfreezing_a_wallet_lets_it_send_and_receive_again(
    mint: MintService, world: World
) -> None:
    wallet = await mint.set_frozen(world.carol, AZR, False, actor_id=world.bob)
    assert wallet.status == "active"
    await mint.transfer(world.alice, world.carol, AZR, 5, "to-carol")
    await mint.transfer(world.carol, world.bob, AZR, 15, "from-carol")
    assert (await mint.get_wallet(world.carol, AZR)).balance == 0
    assert (await mint.get_wallet(world.bob, AZR)).balance == 15


async def test_a_refused_request_does_not_consume_its_idempotency_key(
    mint: MintService, world: World
) -> None:
    with pytest.raises(InsufficientFunds):
        await mint.transfer(world.dave, world.bob, AZR, 5, "retry-me")
    await mint.mint(AZR, 5, world.dave)
    done = await mint.transfer(world.dave, world.bob, AZR, 5, "retry-me")
    assert not done.replayed
    assert (await mint.get_wallet(world.bob, AZR)).balance == 5


async def test_keys_are_kept_for_a_day_then_purged_and_a_reuse_is_a_conflict(
    mint: MintService,
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    for user in (alice, bob):
        await mint.open_wallet(user, "AZR")
    await mint.mint("AZR", "10", alice)
    first = await mint.transfer(alice, bob, "AZR", "1", "kept-key")
    a_day_later = first.created_at + dt.timedelta(hours=23, minutes=59)
    assert await mint.purge_expired_keys(a_day_later) == 0
    replay = await mint.transfer(alice, bob, "AZR", "1", "kept-key")
    assert replay.replayed
    assert replay.id == first.id
    assert await mint.purge_expired_keys(first.created_at + dt.timedelta(hours=24, seconds=1)) == 1
    with pytest.raises(IdempotencyConflict):
        await mint.transfer(alice, bob, "AZR", "1", "kept-key")
    assert (await mint.get_wallet(bob, "AZR")).balance == Decimal("1")
