"""The posting core every ledger operation goes through.

A movement is a list of legs (wallet, signed amount) that sums to zero. ``post``:
1. takes the wallets as :func:`lock_wallets` returned them — locked ``FOR UPDATE`` in
   wallet-id order, so concurrent movements never deadlock and never lose an update;
2. refuses frozen wallets and any leg that would take a user wallet, the reward pool or
   escrow below zero (only the treasury may go negative: issuance is its debt);
3. applies every leg in one conditional ``UPDATE`` (the same guards in SQL, so a bug in
   Python cannot break the invariant; the CHECK constraint is the third line);
4. writes the journal header and its entries, and updates the currency's metrics.

On SQLite the unit of work's ``BEGIN IMMEDIATE`` already serialises writers.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, Uuid, bindparam, case, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Update

from azora.db.columns import UTCDateTime
from azora.db.ids import new_id
from azora.db.money import Money, to_money
from azora.db.statements import core_execute, insert_or_skip
from azora.errors import InvalidAmountError
from azora.mint.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidOperation,
    WalletFrozen,
    WalletNotFound,
)
from azora.mint.models import (
    EconomicMetrics,
    IdempotencyKey,
    LedgerEntry,
    Transaction,
    TransactionStatus,
    TransactionType,
    Wallet,
    WalletKind,
    WalletStatus,
)
from azora.types import Currency

ZERO = Decimal("0")


@dataclass(frozen=True)
class LockedWallet:
    """A wallet as read under its row lock (its balances cannot change until commit)."""

    id: uuid.UUID
    user_id: uuid.UUID
    currency: Currency
    kind: WalletKind
    balance: Decimal
    staked: Decimal
    earned: Decimal
    status: WalletStatus


@dataclass(frozen=True)
class Leg:
    """One wallet's part of a movement: signed change of balance (and of staked, earned)."""

    wallet: LockedWallet
    amount: Decimal
    staked: Decimal = ZERO
    earned: Decimal = ZERO


_WALLET_COLUMNS = (
    Wallet.id,
    Wallet.user_id,
    Wallet.currency,
    Wallet.kind,
    Wallet.balance,
    Wallet.staked,
    Wallet.earned,
    Wallet.status,
)


def checked_amount(value: Decimal | int | str) -> Decimal:
    """A positive, exact amount.

    Raises:
        InvalidAmountError: not exact, more than 8 decimals, out of range, or not > 0.
    """
    amount = to_money(value)
    if amount <= 0:
        raise InvalidAmountError(f"amount must be greater than zero, got {amount}")
    return amount


#: Statements of the hot path, built once so SQLAlchemy compiles each of them once.
_MONEY = Money()
_WALLETS = cast(Table, Wallet.__table__)
_LOCK = (
    select(*_WALLET_COLUMNS)
    .where(
        Wallet.currency == bindparam("currency"),
        Wallet.user_id.in_(bindparam("owners", expanding=True)),
    )
    .order_by(Wallet.id)
    .with_for_update()
)
_INSERT_TRANSACTION = insert(cast(Table, Transaction.__table__))
_INSERT_ENTRIES = insert(cast(Table, LedgerEntry.__table__))


@functools.cache
def _wallet_update(legs: int) -> Update:
    """One UPDATE moving ``legs`` wallets, guarded like :func:`_check` (parameters by leg)."""
    ids = [bindparam(f"id_{i}", type_=Uuid()) for i in range(legs)]
    zero = bindparam("zero", type_=_MONEY)

    def delta(name: str) -> Any:
        return case(
            *[
                (_WALLETS.c.id == ids[i], bindparam(f"{name}_{i}", type_=_MONEY))
                for i in range(legs)
            ],
            else_=zero,
        )

    balance, staked, earned = delta("amount"), delta("staked"), delta("earned")
    return (
        update(_WALLETS)
        .where(
            _WALLETS.c.id.in_(ids),
            _WALLETS.c.status == WalletStatus.ACTIVE,
            or_(_WALLETS.c.kind == WalletKind.TREASURY, _WALLETS.c.balance + balance >= 0),
            _WALLETS.c.staked + staked >= 0,
        )
        .values(
            balance=_WALLETS.c.balance + balance,
            staked=_WALLETS.c.staked + staked,
            earned=_WALLETS.c.earned + earned,
            updated_at=bindparam("now", type_=UTCDateTime()),
        )
    )


async def lock_wallets(
    session: AsyncSession, currency: Currency, owners: Iterable[uuid.UUID]
) -> dict[uuid.UUID, LockedWallet]:
    """Lock the ``currency`` wallets of ``owners`` in id order; keyed by owner id.

    Owners without a wallet are missing from the result.
    """
    rows = await core_execute(session, _LOCK, {"currency": currency, "owners": list(set(owners))})
    return {row.user_id: LockedWallet(**row._asdict()) for row in rows}


def require(
    wallets: dict[uuid.UUID, LockedWallet], owner: uuid.UUID, currency: Currency
) -> LockedWallet:
    """The locked wallet of ``owner``.

    Raises:
        WalletNotFound: ``owner`` has no wallet in ``currency``.
    """
    wallet = wallets.get(owner)
    if wallet is None:
        raise WalletNotFound(f"user {owner} has no {currency} wallet", hint="open the wallet first")
    return wallet


async def ensure_wallet(
    session: AsyncSession, owner: uuid.UUID, currency: Currency, kind: WalletKind, now: dt.datetime
) -> bool:
    """Create the ``currency`` wallet of ``owner`` unless it exists; True when created."""
    result = await core_execute(
        session,
        insert_or_skip(
            session,
            Wallet,
            ["user_id", "currency"],
            id=new_id(),
            user_id=owner,
            currency=currency,
            kind=kind,
            balance=ZERO,
            staked=ZERO,
            earned=ZERO,
            status=WalletStatus.ACTIVE,
            created_at=now,
            updated_at=now,
        ),
    )
    return bool(getattr(result, "rowcount", 0))


def _may_go_negative(wallet: LockedWallet) -> bool:
    return wallet.kind is WalletKind.TREASURY


def _check(legs: Sequence[Leg]) -> None:
    if sum((leg.amount for leg in legs), ZERO) != 0:
        raise InvalidOperation("the legs of a movement must sum to zero")
    for leg in legs:
        wallet = leg.wallet
        if wallet.status is not WalletStatus.ACTIVE:
            raise WalletFrozen(f"wallet {wallet.id} is frozen and can neither send nor receive")
        if wallet.balance + leg.amount < 0 and not _may_go_negative(wallet):
            raise InsufficientFunds(
                f"wallet {wallet.id} holds {wallet.balance} {wallet.currency}, {-leg.amount} needed"
            )
        if wallet.staked + leg.staked < 0:
            raise InsufficientFunds(f"wallet {wallet.id} has only {wallet.staked} staked")


async def post(
    session: AsyncSession,
    *,
    type_: TransactionType,
    currency: Currency,
    amount: Decimal,
    legs: Sequence[Leg],
    from_wallet: LockedWallet | None,
    to_wallet: LockedWallet | None,
    now: dt.datetime,
    transaction_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    reference: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Apply ``legs`` and journal them as one transaction; returns its id.

    Raises:
        InvalidOperation: the legs do not sum to zero.
        WalletFrozen: a wallet involved is frozen.
        InsufficientFunds: a leg would take a wallet (other than the treasury) below zero.
    """
    _check(legs)
    parameters: dict[str, Any] = {"zero": ZERO, "now": now}
    for i, leg in enumerate(legs):
        parameters.update(
            {
                f"id_{i}": leg.wallet.id,
                f"amount_{i}": leg.amount,
                f"staked_{i}": leg.staked,
                f"earned_{i}": leg.earned,
            }
        )
    result = await core_execute(session, _wallet_update(len(legs)), parameters)
    if getattr(result, "rowcount", -1) != len({leg.wallet.id for leg in legs}):
        raise InsufficientFunds("a wallet changed under the movement; nothing was written")
    transaction_id = transaction_id or new_id()
    await core_execute(
        session,
        _INSERT_TRANSACTION,
        {
            "id": transaction_id,
            "type": type_,
            "amount": amount,
            "currency": currency,
            "from_wallet_id": from_wallet.id if from_wallet else None,
            "to_wallet_id": to_wallet.id if to_wallet else None,
            "status": TransactionStatus.COMPLETED,
            "idempotency_key": idempotency_key,
            "reference": reference,
            "description": description,
            "metadata": metadata or {},
            "completed_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    await core_execute(
        session,
        _INSERT_ENTRIES,
        [
            {
                "id": new_id(),
                "transaction_id": transaction_id,
                "wallet_id": leg.wallet.id,
                "amount": leg.amount,
                "balance_after": leg.wallet.balance + leg.amount,
                "created_at": now,
                "updated_at": now,
            }
            for leg in legs
            if leg.amount != 0
        ],
    )
    await apply_metrics(session, currency, now, legs=legs, burned=ZERO)
    return transaction_id


async def ensure_metrics(session: AsyncSession, currency: Currency, now: dt.datetime) -> None:
    """Create the currency's metrics row (all zeros) unless it exists."""
    await core_execute(
        session,
        insert_or_skip(
            session,
            EconomicMetrics,
            ["currency"],
            id=new_id(),
            currency=currency,
            total_supply=ZERO,
            circulating_supply=ZERO,
            staked_supply=ZERO,
            burned_supply=ZERO,
            wallet_count=0,
            created_at=now,
            updated_at=now,
        ),
    )


async def apply_metrics(
    session: AsyncSession,
    currency: Currency,
    now: dt.datetime,
    *,
    legs: Sequence[Leg] = (),
    circulating: Decimal = ZERO,
    total: Decimal = ZERO,
    burned: Decimal = ZERO,
    wallets: int = 0,
) -> None:
    """Move the currency's supply figures by what ``legs`` (and the extras) changed.

    A movement between user wallets changes nothing and writes nothing.
    """
    circulating += sum((leg.amount for leg in legs if leg.wallet.kind is WalletKind.USER), ZERO)
    total -= sum((leg.amount for leg in legs if leg.wallet.kind is WalletKind.TREASURY), ZERO)
    staked = sum((leg.staked for leg in legs), ZERO)
    if not (circulating or total or staked or burned or wallets):
        return
    values = {
        "total_supply": EconomicMetrics.total_supply + literal(total, Money()),
        "circulating_supply": EconomicMetrics.circulating_supply + literal(circulating, Money()),
        "staked_supply": EconomicMetrics.staked_supply + literal(staked, Money()),
        "burned_supply": EconomicMetrics.burned_supply + literal(burned, Money()),
        "wallet_count": EconomicMetrics.wallet_count + wallets,
        "updated_at": now,
    }
    statement = (
        update(EconomicMetrics)
        .where(EconomicMetrics.currency == currency)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    if getattr(await core_execute(session, statement), "rowcount", 0):
        return
    await ensure_metrics(session, currency, now)
    await core_execute(session, statement)


def request_hash(operation: str, **params: Any) -> str:
    """A stable fingerprint of an operation and its parameters."""
    canonical = json.dumps({"operation": operation, **params}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> None:
    """Refuse an idempotency key that cannot be stored.

    Raises:
        InvalidOperation: the key is empty or longer than 200 characters.
    """
    if not key or len(key) > 200:
        raise InvalidOperation("an idempotency key has 1 to 200 characters")


async def claim_key(
    session: AsyncSession,
    key: str,
    fingerprint: str,
    response: dict[str, Any],
    now: dt.datetime,
    ttl: dt.timedelta,
) -> dict[str, Any] | None:
    """Claim ``key`` for this request, storing its (pre-computed) response.

    Returns ``None`` when this request owns the key, or the stored response of the same
    request done before. A concurrent holder of the key is waited for (unique index).

    Raises:
        IdempotencyConflict: the key was used for a different request.
        InvalidOperation: the key is empty or longer than 200 characters.
    """
    check_key(key)
    result = await core_execute(
        session,
        insert_or_skip(
            session,
            IdempotencyKey,
            ["key"],
            id=new_id(),
            key=key,
            request_hash=fingerprint,
            response=response,
            expires_at=now + ttl,
            created_at=now,
            updated_at=now,
        ),
    )
    if getattr(result, "rowcount", 0) == 1:
        return None
    row = (
        await core_execute(
            session,
            select(IdempotencyKey.request_hash, IdempotencyKey.response).where(
                IdempotencyKey.key == key
            ),
        )
    ).one()
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was already used for a different request",
            hint="use a new key for a new request",
        )
    stored: dict[str, Any] = row.response
    return stored
