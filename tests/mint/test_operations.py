"""Each ledger operation's effect: balances, journal, outbox, audit log and supply figures."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Select, func, literal, select, text, update

from azora.db.engines import Databases
from azora.db.money import Money
from azora.db.seeding import SYSTEM_ESCROW_ID, SYSTEM_REWARD_POOL_ID, SYSTEM_TREASURY_ID
from azora.mint import events
from azora.mint.errors import StakeLocked
from azora.mint.models import (
    AuditLog,
    LedgerEntry,
    OutboxEvent,
    StakeStatus,
    Transaction,
    Wallet,
    WalletKind,
    WalletStatus,
)
from azora.mint.service import MintService, staking_rate
from azora.types import Currency, ServiceName

AZR = Currency.AZR
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


async def _all(databases: Databases, statement: Select[Any]) -> list[Any]:
    async with databases.owner_engine(ServiceName.MINT).connect() as connection:
        return list((await connection.execute(statement)).all())


async def _events(databases: Databases, type_: str) -> list[Any]:
    return await _all(
        databases, select(OutboxEvent.subject, OutboxEvent.payload).where(OutboxEvent.type == type_)
    )


async def _audits(databases: Databases, action: str) -> list[Any]:
    return await _all(
        databases,
        select(AuditLog.user_id, AuditLog.resource_id).where(AuditLog.action == action),
    )


async def _count(databases: Databases, model: Any) -> int:
    rows = await _all(databases, select(func.count()).select_from(model))
    return int(rows[0][0])


async def _journal_size(databases: Databases) -> list[int]:
    """How many transactions, entries, outbox events and audit records exist."""
    return [await _count(databases, m) for m in (Transaction, LedgerEntry, OutboxEvent, AuditLog)]


async def _balance(mint: MintService, owner: uuid.UUID, currency: Currency = AZR) -> Decimal:
    return (await mint.get_wallet(owner, currency)).balance


async def _user(mint: MintService, funds: int = 0) -> uuid.UUID:
    user = uuid.uuid4()
    await mint.open_wallet(user, AZR)
    if funds:
        await mint.mint(AZR, funds, user)
    return user


async def test_opening_a_wallet_twice_creates_and_announces_it_once(
    mint: MintService, databases: Databases
) -> None:
    user = uuid.uuid4()
    first = await mint.open_wallet(user, AZR)
    second = await mint.open_wallet(user, "AZR")
    assert second == first
    assert (first.kind, first.status, first.balance) == (WalletKind.USER, WalletStatus.ACTIVE, 0)
    assert await _count(databases, Wallet) == 1
    assert await _events(databases, events.WALLET_CREATED) == [
        (user, {"user_id": str(user), "currency": "AZR"})
    ]
    assert len(await _audits(databases, "mint.wallet.open")) == 1
    assert (await mint.economic_metrics(AZR)).wallet_count == 1
    await mint.open_wallet(user, Currency.USD)
    assert (await mint.economic_metrics(AZR)).wallet_count == 1
    assert (await mint.economic_metrics(Currency.USD)).wallet_count == 1


async def test_minting_issues_money_as_the_treasurys_debt(
    mint: MintService, databases: Databases
) -> None:
    user, actor = await _user(mint), uuid.uuid4()
    issued = await mint.mint(AZR, "100.5", user, actor_id=actor)
    await mint.mint(AZR, 50, SYSTEM_REWARD_POOL_ID)
    assert await _balance(mint, user) == Decimal("100.5")
    assert await _balance(mint, SYSTEM_TREASURY_ID) == Decimal("-150.5")
    metrics = await mint.economic_metrics(AZR)
    assert metrics.total_supply == -(await _balance(mint, SYSTEM_TREASURY_ID)) == Decimal("150.5")
    assert metrics.circulating_supply == Decimal("100.5")
    assert (actor, str(issued.id)) in await _audits(databases, "mint.mint")


async def test_a_transfer_moves_money_and_records_entries_events_and_audit(
    mint: MintService, databases: Databases
) -> None:
    alice, bob = await _user(mint, 100), await _user(mint)
    done = await mint.transfer(alice, bob, AZR, "30.25", "pay-1", reference="inv-7")
    assert (done.amount, done.reference, done.replayed) == (Decimal("30.25"), "inv-7", False)
    assert await _balance(mint, alice) == Decimal("69.75")
    assert await _balance(mint, bob) == Decimal("30.25")
    entries = await _all(
        databases,
        select(Wallet.user_id, LedgerEntry.amount, LedgerEntry.balance_after)
        .join(Wallet, Wallet.id == LedgerEntry.wallet_id)
        .where(LedgerEntry.transaction_id == done.id),
    )
    assert sorted(entries, key=lambda row: row.amount) == [
        (alice, Decimal("-30.25"), Decimal("69.75")),
        (bob, Decimal("30.25"), Decimal("30.25")),
    ]
    completed = [
        (subject, payload)
        for subject, payload in await _events(databases, events.TRANSACTION_COMPLETED)
        if payload["transaction_id"] == str(done.id)
    ]
    assert sorted(subject for subject, _ in completed) == sorted([alice, bob])
    for _, payload in completed:
        assert payload["from_user"] == str(alice)
        assert payload["to_user"] == str(bob)
        assert payload["amount"] == "30.25000000"
    assert await _audits(databases, "mint.transfer") == [(alice, str(done.id))]


async def test_a_replayed_key_returns_the_original_and_changes_nothing(
    mint: MintService, databases: Databases
) -> None:
    alice, bob = await _user(mint, 100), await _user(mint)
    first = await mint.transfer(alice, bob, AZR, 40, "pay-once")
    written = await _journal_size(databases)
    again = await mint.transfer(alice, bob, AZR, 40, "pay-once")
    assert again.replayed
    assert again.model_copy(update={"replayed": False}) == first
    assert await _balance(mint, alice) == 60
    assert await _balance(mint, bob) == 40
    assert await _journal_size(databases) == written


async def test_a_reward_comes_from_the_pool_and_counts_as_earned(mint: MintService) -> None:
    user = await _user(mint)
    await mint.mint(AZR, 50, SYSTEM_REWARD_POOL_ID)
    await mint.reward(user, AZR, 20, "helped a peer")
    await mint.reward(user, AZR, "2.5", "again")
    wallet = await mint.get_wallet(user, AZR)
    assert (wallet.balance, wallet.earned) == (Decimal("22.5"), Decimal("22.5"))
    assert await _balance(mint, SYSTEM_REWARD_POOL_ID) == Decimal("27.5")
    metrics = await mint.economic_metrics(AZR)
    assert (metrics.total_supply, metrics.circulating_supply) == (50, Decimal("22.5"))


async def test_mining_pays_once_per_proof(mint: MintService, databases: Databases) -> None:
    user = await _user(mint)
    await mint.mint(AZR, 100, SYSTEM_REWARD_POOL_ID)
    first = await mint.record_mining(user, "module_completed", "m-1", 5)
    repeat = await mint.record_mining(user, "module_completed", "m-1", 7)
    other = await mint.record_mining(user, "module_completed", "m-2", 3)
    assert (first.paid, repeat.paid, other.paid) == (True, False, True)
    assert repeat == first.model_copy(update={"paid": False, "transaction_id": None})
    wallet = await mint.get_wallet(user, AZR)
    assert (wallet.balance, wallet.earned) == (8, 8)
    assert len(await _events(databases, events.MINING_REWARD)) == 2


@pytest.mark.parametrize(
    ("lock_days", "rate"),
    [(1, "0.05"), (89, "0.05"), (90, "0.07"), (179, "0.07"), (180, "0.09"), (365, "0.12")],
    ids=lambda value: f"{value}",
)
async def test_a_stake_earns_the_rate_of_its_lock_period(
    mint: MintService, lock_days: int, rate: str
) -> None:
    user = await _user(mint, 100)
    stake = await mint.stake(user, AZR, 40, lock_days, now=T0)
    assert staking_rate(lock_days) == stake.reward_rate == Decimal(rate)
    assert (stake.started_at, stake.unlocks_at) == (T0, T0 + lock_days * DAY)
    assert (stake.status, stake.rewards_paid) == (StakeStatus.ACTIVE, 0)
    wallet = await mint.get_wallet(user, AZR)
    assert (wallet.balance, wallet.staked) == (60, 40)
    assert await _balance(mint, SYSTEM_ESCROW_ID) == 40
    metrics = await mint.economic_metrics(AZR)
    assert (metrics.circulating_supply, metrics.staked_supply) == (60, 40)


async def test_staking_rewards_accrue_once_per_moment_and_stop_at_unlock(
    mint: MintService,
) -> None:
    user = await _user(mint, 1000)
    await mint.mint(AZR, 500, SYSTEM_REWARD_POOL_ID)
    await mint.stake(user, AZR, 1000, 365, now=T0)  # 12 % a year: 120 over the lock
    assert (await mint.accrue_staking_rewards(T0 + 73 * DAY)).total == 24  # a fifth of a year
    repeat = await mint.accrue_staking_rewards(T0 + 73 * DAY)
    assert (repeat.stakes_paid, repeat.total) == (0, 0)
    rest = await mint.accrue_staking_rewards(T0 + 1000 * DAY)
    assert (rest.stakes_paid, rest.total) == (1, 96)
    assert (await mint.accrue_staking_rewards(T0 + 2000 * DAY)).total == 0
    wallet = await mint.get_wallet(user, AZR)
    assert (wallet.balance, wallet.staked, wallet.earned) == (120, 1000, 120)
    assert await _balance(mint, SYSTEM_REWARD_POOL_ID) == 380


async def test_a_stake_is_released_once_and_only_after_unlock(
    mint: MintService, databases: Databases
) -> None:
    user = await _user(mint, 100)
    stake = await mint.stake(user, AZR, 30, 30, now=T0)
    with pytest.raises(StakeLocked):
        await mint.release_stake(stake.id, now=stake.unlocks_at - dt.timedelta(seconds=1))
    with pytest.raises(StakeLocked):
        await mint.release_stake(stake.id)  # today is long before 2030
    released = await mint.release_stake(stake.id, now=stake.unlocks_at)
    assert released.status is StakeStatus.RELEASED
    with pytest.raises(StakeLocked, match="already released"):
        await mint.release_stake(stake.id, now=stake.unlocks_at + DAY)
    wallet = await mint.get_wallet(user, AZR)
    assert (wallet.balance, wallet.staked) == (100, 0)
    assert await _balance(mint, SYSTEM_ESCROW_ID) == 0
    assert [subject for subject, _ in await _events(databases, events.STAKE_RELEASED)] == [user]


async def test_escrow_holds_releases_and_refunds_what_remains_to_the_payer(
    mint: MintService,
) -> None:
    payer, payee = await _user(mint, 100), await _user(mint)
    await mint.hold_escrow("contract-1", payer, 60)
    assert (await _balance(mint, payer), await _balance(mint, SYSTEM_ESCROW_ID)) == (40, 60)
    await mint.release_escrow("contract-1", payee, 25)
    assert await _balance(mint, payee) == 25
    partial = await mint.refund_escrow("contract-1", 5)
    rest = await mint.refund_escrow("contract-1")
    assert (partial.amount, rest.amount) == (5, 30)
    assert await _balance(mint, payer) == 75
    assert await _balance(mint, SYSTEM_ESCROW_ID) == 0
    assert (await mint.verify()).ok


async def test_ubi_pays_each_active_user_wallet_once_per_period(
    mint: MintService, databases: Databases
) -> None:
    active = [await _user(mint, 5) for _ in range(3)]
    frozen = await _user(mint, 5)
    await mint.set_frozen(frozen, AZR, True, actor_id=uuid.uuid4())
    await mint.open_wallet(uuid.uuid4(), Currency.USD)
    await mint.mint(AZR, 10, SYSTEM_REWARD_POOL_ID)
    paid = await mint.distribute_ubi(AZR, "2.5", "2030-01")
    assert (paid.wallets_paid, paid.total, paid.already_distributed) == (3, Decimal("7.5"), False)
    again = await mint.distribute_ubi(AZR, "2.5", "2030-01")
    assert again == paid.model_copy(update={"already_distributed": True})
    assert [await _balance(mint, user) for user in active] == [Decimal("7.5")] * 3
    assert await _balance(mint, frozen) == 5
    assert await _balance(mint, SYSTEM_REWARD_POOL_ID) == 10
    assert await _balance(mint, SYSTEM_TREASURY_ID) == Decimal("-37.5")
    assert (await mint.economic_metrics(AZR)).total_supply == Decimal("37.5")
    assert len(await _events(databases, events.UBI_DISTRIBUTED)) == 1
    assert (await mint.verify()).ok


async def test_a_ubi_round_with_nobody_to_pay_leaves_the_period_open(mint: MintService) -> None:
    empty = await mint.distribute_ubi(AZR, 1, "2030-02")
    assert (empty.wallets_paid, empty.total, empty.already_distributed) == (0, 0, False)
    user = await _user(mint)
    later = await mint.distribute_ubi(AZR, 1, "2030-02")
    assert (later.wallets_paid, later.already_distributed) == (1, False)
    assert await _balance(mint, user) == 1


async def test_history_pages_walk_every_entry_once_newest_first(
    mint: MintService, databases: Databases
) -> None:
    alice, bob = await _user(mint, 100), await _user(mint)
    for n in range(1, 8):
        await mint.transfer(alice, bob, AZR, n, f"h-{n}")
    wallet = await mint.get_wallet(alice, AZR)
    expected = {
        row.id
        for row in await _all(
            databases, select(LedgerEntry.id).where(LedgerEntry.wallet_id == wallet.id)
        )
    }
    pages = [await mint.history(alice, AZR, limit=3)]
    while pages[-1].next_cursor is not None:
        pages.append(await mint.history(alice, AZR, cursor=pages[-1].next_cursor, limit=3))
    assert [len(page.items) for page in pages] == [3, 3, 2]
    seen = [item for page in pages for item in page.items]
    assert {item.entry_id for item in seen} == expected
    assert len(seen) == len(expected)
    keys = [(item.created_at, item.entry_id) for item in seen]
    assert keys == sorted(keys, reverse=True)
    assert seen[0].balance_after == wallet.balance == 72
    assert seen[-1].amount == 100  # the issuance came first
    assert len((await mint.history(alice, AZR, limit=1)).items) == 1
    everything = await mint.history(alice, AZR, limit=200)
    assert (len(everything.items), everything.next_cursor) == (8, None)


async def test_the_supply_figures_agree_with_the_wallets(
    mint: MintService, databases: Databases
) -> None:
    alice, bob = await _user(mint, 100), await _user(mint, 10)
    await mint.mint(AZR, 50, SYSTEM_REWARD_POOL_ID)
    await mint.transfer(alice, bob, AZR, 15, "m-1")
    await mint.stake(bob, AZR, 20, 90, now=T0)
    await mint.reward(alice, AZR, 5, "quiz")
    await mint.hold_escrow("c-9", alice, 30)
    await mint.release_escrow("c-9", bob, 10)
    await mint.distribute_ubi(AZR, 1, "2030-03")
    report = await mint.verify()
    assert report.ok, report
    users = await _all(
        databases,
        select(func.sum(Wallet.balance), func.sum(Wallet.staked), func.count()).where(
            Wallet.kind == WalletKind.USER
        ),
    )
    metrics = await mint.economic_metrics(AZR)
    assert (metrics.circulating_supply, metrics.staked_supply, metrics.wallet_count) == users[0]
    assert metrics.total_supply == -(await _balance(mint, SYSTEM_TREASURY_ID)) == 162
    assert metrics.burned_supply == 0


async def test_verify_names_a_wallet_whose_balance_was_tampered_with(
    mint: MintService, databases: Databases
) -> None:
    alice, bob = await _user(mint, 100), await _user(mint)
    await mint.transfer(alice, bob, AZR, 1, "before")
    assert (await mint.verify()).ok
    tampered = await mint.get_wallet(bob, AZR)
    async with databases.owner_engine(ServiceName.MINT).begin() as connection:
        if connection.dialect.name == "postgresql":
            # Past the ledger's balance guard, as only a superuser can (its replica mode).
            await connection.execute(text("SET LOCAL session_replication_role = replica"))
        await connection.execute(
            update(Wallet)
            .where(Wallet.id == tampered.id)
            .values(balance=Wallet.balance + literal(Decimal(1), Money()))
        )
    report = await mint.verify()
    assert not report.ok
    assert len(report.wallet_mismatches) == 1
    assert report.wallet_mismatches[0].startswith(f"wallet {tampered.id}: balance 2")
    assert report.currency_imbalances  # the journal no longer sums to zero
    assert report.metric_mismatches  # nor does circulating supply match the wallets
