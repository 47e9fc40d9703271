"""A UBI round is all or nothing, even when its process dies in the middle of it.

The round runs in a worker process (``ubi_worker.py``) that is killed with SIGKILL at
10 %, 50 % and 90 % of the fastest complete round's duration; the database must then
show no trace of the round, and a rerun must pay every wallet exactly once. The wallets
are made in bulk by SQL, so that a round lasts long enough to be interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, insert, literal, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from azora.db.columns import UTCDateTime, utcnow
from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.money import Money
from azora.mint.models import (
    EconomicMetrics,
    LedgerEntry,
    Transaction,
    TransactionType,
    UbiDistribution,
    Wallet,
    WalletKind,
    WalletStatus,
)
from azora.mint.service import MintService
from azora.types import Currency, ServiceName

#: Enough wallets for a round of about 1-3 s on a small, busy machine.
WALLETS = {"sqlite": 100_000, "postgresql": 40_000}
KILL_POINTS = (0.1, 0.5, 0.9)
WORKER = Path(__file__).with_name("ubi_worker.py")
ZERO = Decimal("0")
#: 32 random hex digits shaped as a version-4 UUID: how SQLite stores a UUID.
_SQLITE_UUID4 = (
    "lower(hex(randomblob(6))) || '4' || substr(lower(hex(randomblob(2))), 2)"
    " || substr('89ab', 1 + abs(random()) % 4, 1) || substr(lower(hex(randomblob(8))), 2)"
)


def _random_uuid(dialect: str) -> ColumnElement[Any]:
    return func.gen_random_uuid() if dialect == "postgresql" else literal_column(_SQLITE_UUID4)


async def _open_wallets_in_bulk(engine: AsyncEngine, count: int) -> None:
    """``count`` empty, active AZR user wallets in one statement, and the metrics to match."""
    dialect = engine.dialect.name
    now = utcnow()
    series = select(literal(1).label("i")).cte("series", recursive=True)
    series = series.union_all(select(series.c.i + 1).where(series.c.i < count))
    zero, stamp = literal(ZERO, Money()), literal(now, UTCDateTime())
    rows = select(
        _random_uuid(dialect).label("id"),
        _random_uuid(dialect).label("user_id"),
        literal(Currency.AZR, Wallet.currency.type).label("currency"),
        literal(WalletKind.USER, Wallet.kind.type).label("kind"),
        zero.label("balance"),
        zero.label("staked"),
        zero.label("earned"),
        literal(WalletStatus.ACTIVE, Wallet.status.type).label("status"),
        stamp.label("created_at"),
        stamp.label("updated_at"),
    ).select_from(series)
    columns = [c.name for c in rows.selected_columns]
    async with engine.begin() as connection:
        await connection.execute(insert(Wallet).from_select(columns, rows))
        await connection.execute(
            insert(EconomicMetrics).values(
                id=new_id(),
                currency=Currency.AZR,
                total_supply=ZERO,
                circulating_supply=ZERO,
                staked_supply=ZERO,
                burned_supply=ZERO,
                wallet_count=count,
                created_at=now,
                updated_at=now,
            )
        )
        if dialect == "postgresql":  # plan the round's scan on real statistics
            await connection.execute(text("ANALYZE wallets"))


@dataclass(frozen=True)
class Snapshot:
    """What a round changes: the user wallets' balances, the journal, the period's row."""

    wallets: int
    total: Decimal
    lowest: Decimal
    highest: Decimal
    entries: int
    period_entries: int
    period_paid: int | None


async def _snapshot(engine: AsyncEngine, period: str) -> Snapshot:
    async with engine.connect() as connection:
        balances = (
            await connection.execute(
                select(
                    func.count(),
                    func.sum(Wallet.balance),
                    func.min(Wallet.balance),
                    func.max(Wallet.balance),
                ).where(Wallet.kind == WalletKind.USER)
            )
        ).one()
        entries = await connection.scalar(select(func.count()).select_from(LedgerEntry))
        period_entries = await connection.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .join(Transaction, Transaction.id == LedgerEntry.transaction_id)
            .where(
                Transaction.type == TransactionType.UBI, Transaction.reference == f"ubi:{period}"
            )
        )
        paid = await connection.scalar(
            select(UbiDistribution.wallets_paid).where(
                UbiDistribution.period == period, UbiDistribution.currency == Currency.AZR
            )
        )
    return Snapshot(
        wallets=balances[0],
        total=balances[1],
        lowest=balances[2],
        highest=balances[3],
        entries=int(entries or 0),
        period_entries=int(period_entries or 0),
        period_paid=paid,
    )


class Workers:
    """Worker processes running one round each; none outlives the test (see ``close``)."""

    def __init__(self, mint_url: str) -> None:
        self._env = {**os.environ, "AZORA_MINT_DATABASE_URL": mint_url, "AZORA_ENV": "test"}
        self.started: list[asyncio.subprocess.Process] = []

    async def start(self, period: str) -> asyncio.subprocess.Process:
        """A worker paying ``period``, returned once it has started the round."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            period,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
        )
        self.started.append(process)
        assert process.stdout is not None
        line = await process.stdout.readline()
        if line.decode().strip() != "ready":
            _, err = await process.communicate()
            raise AssertionError(f"the worker for {period} did not start:\n{err.decode()}")
        return process

    async def finish(self, process: asyncio.subprocess.Process) -> dict[str, Any]:
        """The result of a worker's round, once it has run to completion."""
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    async def kill(self, process: asyncio.subprocess.Process) -> bool:
        """SIGKILL the worker; True when it died before finishing its round."""
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it has just exited by itself
                os.kill(process.pid, signal.SIGKILL)
        out, _ = await process.communicate()
        return process.returncode == -signal.SIGKILL and not out.strip()

    async def close(self) -> None:
        """Kill every worker still running and collect its exit."""
        for process in self.started:
            if process.returncode is None:
                await self.kill(process)


async def _kill_mid_round(
    workers: Workers, engine: AsyncEngine, period: str, delay: float, fastest: float
) -> None:
    """Start a round for ``period``, SIGKILL it ``delay`` s in, check it left nothing."""
    before = await _snapshot(engine, period)
    process = await workers.start(period)
    started = time.perf_counter()
    await asyncio.sleep(delay)
    killed_at = time.perf_counter() - started
    killed = await workers.kill(process)
    after = await _snapshot(engine, period)
    print(f"killed {period} at {killed_at:.2f} s (target {delay:.2f} s)")
    assert killed, (
        f"the worker finished its round before the kill at {killed_at:.2f} s (the fastest"
        f" round so far took {fastest:.2f} s): use more wallets"
    )
    assert after.period_paid is None, f"{period} committed before the kill at {killed_at:.2f} s"
    assert after == before, f"killed at {killed_at:.2f} s, the round left a trace"


async def test_a_ubi_round_killed_at_any_point_leaves_nothing_and_a_rerun_pays_once(
    databases: Databases, backend: str
) -> None:
    count = WALLETS[backend]
    engine = databases.owner_engine(ServiceName.MINT)
    mint = MintService(databases)
    await _open_wallets_in_bulk(engine, count)
    assert (await mint.verify()).ok
    workers = Workers(databases.target(ServiceName.MINT).url.render_as_string(hide_password=False))
    try:
        rounds = [await workers.finish(await workers.start(p)) for p in ("warm-up", "base")]
        assert [r["wallets_paid"] for r in rounds] == [count, count]
        # A round's duration varies with the machine's load: each kill is timed against
        # the fastest complete round so far, so that even the 90 % kill lands in time.
        fastest = min(float(r["seconds"]) for r in rounds)
        timings = ", ".join(f"{r['seconds']:.2f} s" for r in rounds)
        print(f"{backend}: {count} wallets; rounds took {timings}")
        for paid, point in enumerate(KILL_POINTS, start=len(rounds) + 1):
            period = f"kill-{int(point * 100)}"
            entries = (await _snapshot(engine, period)).entries
            await _kill_mid_round(workers, engine, period, point * fastest, fastest)

            rerun = await workers.finish(await workers.start(period))
            # On PostgreSQL it first waits for the killed round's statement to end.
            print(f"rerun of {period} took {rerun['seconds']:.2f} s")
            fastest = min(fastest, float(rerun["seconds"]))
            assert (rerun["wallets_paid"], rerun["already_distributed"]) == (count, False)
            assert await _snapshot(engine, period) == Snapshot(
                wallets=count,
                total=Decimal(count * paid),
                lowest=Decimal(paid),
                highest=Decimal(paid),
                entries=entries + count + 1,  # a credit per wallet and the treasury's debit
                period_entries=count + 1,
                period_paid=count,
            )
            report = await mint.verify()
            assert report.ok, report
    finally:
        await workers.close()


async def test_a_second_ubi_round_for_the_same_period_pays_nothing_and_says_so(
    mint: MintService,
) -> None:
    users = [uuid.uuid4() for _ in range(5)]
    for user in users:
        await mint.open_wallet(user, Currency.AZR)

    first = await mint.distribute_ubi(Currency.AZR, "2.5", "2026-11")
    second = await mint.distribute_ubi(Currency.AZR, "2.5", "2026-11")

    assert (first.wallets_paid, first.total, first.already_distributed) == (
        5,
        Decimal("12.5"),
        False,
    )
    assert second.already_distributed
    assert (second.wallets_paid, second.total, second.amount_per_wallet) == (
        5,
        Decimal("12.5"),
        Decimal("2.5"),
    )
    for user in users:
        assert (await mint.get_wallet(user, Currency.AZR)).balance == Decimal("2.5")
    history = await mint.history(users[0], Currency.AZR)
    assert [item.type for item in history.items] == [TransactionType.UBI]
    metrics = await mint.economic_metrics(Currency.AZR)
    assert (metrics.circulating_supply, metrics.total_supply) == (
        Decimal("12.5"),
        Decimal("12.5"),
    )
    assert (await mint.verify()).ok
