"""The mint agrees with a tiny in-memory ledger over random sequences of operations.

A hypothesis state machine runs random operations against the service and against
:class:`ReferenceLedger`; both must refuse the same requests with the same error, and
after every step each wallet, the supply figures and ``verify()`` must agree with the
model. Each run gets its own event loop and empty databases: on SQLite a fresh copy of
the test's migrated files, on PostgreSQL the suite's migrated databases emptied before
the run (creating and dropping nine databases per run would take ~3.5 s, not ~0.5 s).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import hypothesis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from azora.db.engines import Databases
from azora.db.seeding import SYSTEM_ESCROW_ID, SYSTEM_REWARD_POOL_ID, SYSTEM_TREASURY_ID
from azora.errors import AzoraError
from azora.mint.models import Wallet
from azora.mint.service import MintService
from azora.settings import Settings
from azora.types import Currency, ServiceName
from tests import databases as dbs
from tests.mint.model_ledger import Account, ReferenceLedger

T = TypeVar("T")
R = TypeVar("R")
AZR = Currency.AZR
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
UNIT = Decimal("0.00000001")

amounts = st.decimals(min_value=UNIT, max_value=Decimal(500), places=8)
#: How much to ask for: a part of what is available (the drawn amount's share of 500),
#: all of it, one unit more, or the drawn amount itself (which may or may not fit).
shares = st.sampled_from(["part", "all", "over", "drawn"])
contracts = st.sampled_from(["c-1", "c-2", "c-3"])
proofs = st.sampled_from(["p-1", "p-2", "p-3", "p-4"])


def _ask(drawn: Decimal, share: str, available: Decimal) -> Decimal:
    if share == "all" and available > 0:
        return available
    if share == "over":
        return available + UNIT
    if share == "part" and available > 0:
        return max(UNIT, (available * drawn / 500).quantize(UNIT, rounding=ROUND_DOWN))
    return drawn


class LedgerMachine(RuleBasedStateMachine):
    """Random ledger operations, each checked against the reference (module docstring)."""

    prepare: ClassVar[Callable[[], Awaitable[Settings]]]
    users = Bundle("users")
    stakes = Bundle("stakes")

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.settings = self.runner.run(type(self).prepare())
        self.databases = Databases(self.settings)
        self.mint = MintService(self.databases)
        self.model = ReferenceLedger()
        self.last_transfer: tuple[uuid.UUID, uuid.UUID, Decimal, str, uuid.UUID] | None = None
        self.keys = 0

    def teardown(self) -> None:
        self.runner.run(self.databases.aclose())
        self.runner.close()
        if self.settings.database_url is None:  # SQLite: the run's own data directory
            shutil.rmtree(self.settings.data_dir, ignore_errors=True)

    def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        async def go() -> T:
            return await call()

        return self.runner.run(go())

    def _agree(
        self, reference: Callable[[], R], call: Callable[[], Awaitable[T]]
    ) -> tuple[R, T] | None:
        """Both results when the model accepts; ``None`` when both refused with one error."""
        try:
            expected = reference()
        except AzoraError as refusal:
            with pytest.raises(type(refusal)):
                self._run(call)
            return None
        return expected, self._run(call)

    def _key(self) -> str:
        self.keys += 1
        return f"key-{self.keys}"

    # -- rules ----------------------------------------------------------------------

    @initialize(
        target=users,
        people=st.lists(st.uuids(version=4), min_size=2, max_size=2, unique=True),
        funds=amounts,
        pool=amounts,
    )
    def two_funded_users_and_a_funded_pool(
        self, people: list[uuid.UUID], funds: Decimal, pool: Decimal
    ) -> Any:
        for user in people:
            self.open_wallet(user)
            self.mint_to_user(user, funds)
        self.mint_to_reward_pool(pool)
        return multiple(*people)

    @rule(target=users, user=st.uuids(version=4))
    def open_wallet(self, user: uuid.UUID) -> uuid.UUID:
        view = self._run(lambda: self.mint.open_wallet(user, AZR))
        self.model.open_wallet(user)
        assert (view.user_id, view.currency) == (user, AZR)
        return user

    @rule(user=users)
    def reopen_wallet(self, user: uuid.UUID) -> None:
        view = self._run(lambda: self.mint.open_wallet(user, AZR))
        assert Account(view.balance, view.staked, view.earned) == self.model.users[user]

    @rule(user=users, amount=amounts)
    def mint_to_user(self, user: uuid.UUID, amount: Decimal) -> None:
        self.model.mint(user, amount)
        self._run(lambda: self.mint.mint(AZR, amount, user))

    @rule(amount=amounts)
    def mint_to_reward_pool(self, amount: Decimal) -> None:
        self.model.mint(None, amount)
        self._run(lambda: self.mint.mint(AZR, amount, SYSTEM_REWARD_POOL_ID))

    @rule(source=users, payee=users, drawn=amounts, share=shares)
    def transfer(self, source: uuid.UUID, payee: uuid.UUID, drawn: Decimal, share: str) -> None:
        amount, key = _ask(drawn, share, self.model.users[source].balance), self._key()
        outcome = self._agree(
            lambda: self.model.transfer(source, payee, amount),
            lambda: self.mint.transfer(source, payee, AZR, amount, key),
        )
        if outcome is not None:
            done = outcome[1]
            assert (done.amount, done.replayed) == (amount, False)
            self.last_transfer = (source, payee, amount, key, done.id)

    @precondition(lambda self: self.last_transfer is not None)
    @rule()
    def replay_last_transfer(self) -> None:
        assert self.last_transfer is not None
        source, payee, amount, key, transaction_id = self.last_transfer
        again = self._run(lambda: self.mint.transfer(source, payee, AZR, amount, key))
        assert (again.id, again.replayed) == (transaction_id, True)

    @rule(user=users, drawn=amounts, share=shares)
    def reward(self, user: uuid.UUID, drawn: Decimal, share: str) -> None:
        amount = _ask(drawn, share, self.model.pool)
        self._agree(
            lambda: self.model.reward(user, amount),
            lambda: self.mint.reward(user, AZR, amount, "model"),
        )

    @rule(user=users, proof=proofs, amount=amounts)
    def record_mining(self, user: uuid.UUID, proof: str, amount: Decimal) -> None:
        outcome = self._agree(
            lambda: self.model.record_mining(user, proof, amount),
            lambda: self.mint.record_mining(user, "quiz", proof, amount),
        )
        if outcome is not None:
            paid, result = outcome
            assert result.paid is paid

    @rule(target=stakes, user=users, drawn=amounts, share=shares, days=st.integers(1, 400))
    def stake(self, user: uuid.UUID, drawn: Decimal, share: str, days: int) -> Any:
        amount = _ask(drawn, share, self.model.users[user].balance)
        outcome = self._agree(
            lambda: self.model.stake(user, amount, days, T0),
            lambda: self.mint.stake(user, AZR, amount, days, now=T0),
        )
        if outcome is None:
            return multiple()
        record, view = outcome
        assert (view.reward_rate, view.unlocks_at) == (record.rate, record.unlocks_at)
        self.model.stakes[view.id] = record
        return view.id

    @rule(stake=stakes, late=st.booleans())
    def release_stake(self, stake: uuid.UUID, late: bool) -> None:
        unlocks_at = self.model.stakes[stake].unlocks_at
        now = unlocks_at + dt.timedelta(days=1) if late else unlocks_at - dt.timedelta(seconds=1)
        for _ in range(2 if late else 1):  # once released, a stake is never released again
            self._agree(
                lambda: self.model.release_stake(stake, now),
                lambda: self.mint.release_stake(stake, now=now),
            )

    @rule(contract=contracts, payer=users, drawn=amounts, share=shares)
    def hold_escrow(self, contract: str, payer: uuid.UUID, drawn: Decimal, share: str) -> None:
        amount = _ask(drawn, share, self.model.users[payer].balance)
        self._agree(
            lambda: self.model.hold_escrow(contract, payer, amount),
            lambda: self.mint.hold_escrow(contract, payer, amount),
        )

    @rule(contract=contracts, payee=users, drawn=amounts, share=shares)
    def release_escrow(self, contract: str, payee: uuid.UUID, drawn: Decimal, share: str) -> None:
        amount = _ask(drawn, share, self.model.held(contract))
        outcome = self._agree(
            lambda: self.model.release_escrow(contract, payee, amount),
            lambda: self.mint.release_escrow(contract, payee, amount),
        )
        if outcome is not None:
            assert outcome[1].amount == outcome[0]

    @rule(contract=contracts, everything=st.booleans(), drawn=amounts, share=shares)
    def refund_escrow(self, contract: str, everything: bool, drawn: Decimal, share: str) -> None:
        amount = None if everything else _ask(drawn, share, self.model.held(contract))
        outcome = self._agree(
            lambda: self.model.refund_escrow(contract, amount),
            lambda: self.mint.refund_escrow(contract, amount),
        )
        if outcome is not None:
            assert outcome[1].amount == outcome[0]

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def wallets_metrics_and_journal_agree_with_the_model(self) -> None:
        async def read() -> dict[uuid.UUID, Account]:
            async with self.databases.owner_engine(ServiceName.MINT).connect() as connection:
                rows = await connection.execute(
                    select(Wallet.user_id, Wallet.balance, Wallet.staked, Wallet.earned)
                )
                return {row.user_id: Account(*row[1:]) for row in rows}

        wallets = self._run(read)
        model = self.model
        for user, account in model.users.items():
            assert wallets[user] == account, f"wallet of {user}"
        for owner, balance in [
            (SYSTEM_TREASURY_ID, model.treasury),
            (SYSTEM_REWARD_POOL_ID, model.pool),
            (SYSTEM_ESCROW_ID, model.escrow),
        ]:
            assert wallets.get(owner, Account()).balance == balance, f"system wallet {owner}"
        metrics = self._run(lambda: self.mint.economic_metrics(AZR))
        assert metrics.model_dump(exclude={"currency"}) == model.metrics()
        report = self._run(self.mint.verify)
        assert report.ok, report


def _machine(prepare: Callable[[], Awaitable[Settings]]) -> type[LedgerMachine]:
    return type("LedgerMachine", (LedgerMachine,), {"prepare": staticmethod(prepare)})


def _settings(max_examples: int) -> hypothesis.settings:
    return hypothesis.settings(max_examples=max_examples, stateful_step_count=25, deadline=None)


def test_the_mint_agrees_with_the_model(
    backend: str, migrated_settings: Settings, tmp_path: Path
) -> None:
    if backend == "sqlite":

        async def prepare() -> Settings:
            data_dir = Path(tempfile.mkdtemp(dir=tmp_path))
            dbs.copy_sqlite_files(migrated_settings.data_dir, data_dir)
            return dbs.settings_for("sqlite", data_dir=data_dir, prefix="", pg_url=None)

    else:

        async def prepare() -> Settings:
            await dbs.truncate_all(migrated_settings)
            return migrated_settings

    run_state_machine_as_test(
        _machine(prepare), settings=_settings(25 if backend == "sqlite" else 10)
    )
