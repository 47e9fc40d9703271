"""A tiny in-memory ledger the mint must agree with, step by step (see test_model_based).

Each operation checks first and raises the domain error the mint must raise, without
changing anything; otherwise it applies its effect. It knows one currency and keeps the
system wallets as plain numbers: the treasury (negative: what was issued), the reward
pool and escrow.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from azora.mint.errors import EscrowShortfall, InsufficientFunds, InvalidOperation, StakeLocked

ZERO = Decimal(0)
#: Annual reward by minimum lock period, written out again rather than imported.
RATES = (
    (365, Decimal("0.12")),
    (180, Decimal("0.09")),
    (90, Decimal("0.07")),
    (0, Decimal("0.05")),
)


@dataclass
class Account:
    balance: Decimal = ZERO
    staked: Decimal = ZERO
    earned: Decimal = ZERO


@dataclass
class StakeRecord:
    owner: uuid.UUID
    amount: Decimal
    rate: Decimal
    unlocks_at: dt.datetime
    released: bool = False


@dataclass
class Contract:
    payer: uuid.UUID
    held: Decimal = ZERO


@dataclass
class ReferenceLedger:
    users: dict[uuid.UUID, Account] = field(default_factory=dict)
    treasury: Decimal = ZERO
    pool: Decimal = ZERO
    escrow: Decimal = ZERO
    stakes: dict[uuid.UUID, StakeRecord] = field(default_factory=dict)
    contracts: dict[str, Contract] = field(default_factory=dict)
    proofs: set[str] = field(default_factory=set)

    # -- figures --------------------------------------------------------------------

    @property
    def total_supply(self) -> Decimal:
        return -self.treasury

    @property
    def circulating_supply(self) -> Decimal:
        return sum((account.balance for account in self.users.values()), ZERO)

    @property
    def staked_supply(self) -> Decimal:
        return sum((account.staked for account in self.users.values()), ZERO)

    def metrics(self) -> dict[str, Decimal | int]:
        """The supply figures ``economic_metrics`` must report."""
        return {
            "total_supply": self.total_supply,
            "circulating_supply": self.circulating_supply,
            "staked_supply": self.staked_supply,
            "burned_supply": ZERO,
            "wallet_count": len(self.users),
        }

    def held(self, contract: str) -> Decimal:
        found = self.contracts.get(contract)
        return found.held if found else ZERO

    # -- operations -----------------------------------------------------------------

    def open_wallet(self, user: uuid.UUID) -> None:
        self.users.setdefault(user, Account())

    def mint(self, user: uuid.UUID | None, amount: Decimal) -> None:
        """Issue to ``user``, or to the reward pool when ``user`` is None."""
        self.treasury -= amount
        if user is None:
            self.pool += amount
        else:
            self.users[user].balance += amount

    def _spend(self, user: uuid.UUID, amount: Decimal) -> Account:
        account = self.users[user]
        if account.balance < amount:
            raise InsufficientFunds(f"{user} holds {account.balance}, {amount} needed")
        return account

    def _pay_from_pool(self, user: uuid.UUID, amount: Decimal) -> None:
        if self.pool < amount:
            raise InsufficientFunds(f"the pool holds {self.pool}, {amount} needed")
        self.pool -= amount
        self.users[user].balance += amount
        self.users[user].earned += amount

    def transfer(self, source: uuid.UUID, target: uuid.UUID, amount: Decimal) -> None:
        if source == target:
            raise InvalidOperation("a wallet cannot pay itself")
        self._spend(source, amount).balance -= amount
        self.users[target].balance += amount

    def reward(self, user: uuid.UUID, amount: Decimal) -> None:
        self._pay_from_pool(user, amount)

    def record_mining(self, user: uuid.UUID, proof: str, amount: Decimal) -> bool:
        """True when paid; a proof already paid pays nothing (to anyone)."""
        if proof in self.proofs:
            return False
        self._pay_from_pool(user, amount)
        self.proofs.add(proof)
        return True

    def stake(
        self, user: uuid.UUID, amount: Decimal, lock_days: int, now: dt.datetime
    ) -> StakeRecord:
        """The new stake, to be filed under the id the mint gives it."""
        account = self._spend(user, amount)
        account.balance -= amount
        account.staked += amount
        self.escrow += amount
        rate = next(rate for days, rate in RATES if lock_days >= days)
        return StakeRecord(user, amount, rate, now + dt.timedelta(days=lock_days))

    def release_stake(self, stake_id: uuid.UUID, now: dt.datetime) -> None:
        stake = self.stakes[stake_id]
        if stake.released or now < stake.unlocks_at:
            raise StakeLocked(f"stake {stake_id} is locked or released")
        stake.released = True
        self.escrow -= stake.amount
        self.users[stake.owner].balance += stake.amount
        self.users[stake.owner].staked -= stake.amount

    def hold_escrow(self, contract: str, payer: uuid.UUID, amount: Decimal) -> None:
        self._spend(payer, amount).balance -= amount
        self.contracts.setdefault(contract, Contract(payer)).held += amount
        self.escrow += amount

    def _out_of_escrow(self, contract: str, to: uuid.UUID, amount: Decimal | None) -> Decimal:
        held = self.held(contract)
        value = held if amount is None else amount
        if value <= 0 or value > held:
            raise EscrowShortfall(f"{contract} holds {held}, {value} requested")
        self.contracts[contract].held -= value
        self.escrow -= value
        self.users[to].balance += value
        return value

    def release_escrow(self, contract: str, payee: uuid.UUID, amount: Decimal) -> Decimal:
        return self._out_of_escrow(contract, payee, amount)

    def refund_escrow(self, contract: str, amount: Decimal | None) -> Decimal:
        """Back to the contract's first payer: ``amount``, or everything still held."""
        if contract not in self.contracts:
            raise EscrowShortfall(f"{contract} holds nothing")
        return self._out_of_escrow(contract, self.contracts[contract].payer, amount)
