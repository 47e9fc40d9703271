"""A server-side function called as one statement is a whole unit of work (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.procedures import FunctionError, call_function
from azora.types import ServiceName

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def _move_args(key: str, source: uuid.UUID, target: uuid.UUID, amount: str) -> list[object]:
    """Arguments of ``mint_move`` for a plain user-to-user transfer."""
    return [
        new_id(), "transfer", "AZR", Decimal(amount), source, "user", target, "user", False,
        key, new_id(), "fingerprint", NOW + dt.timedelta(days=1), None, None, NOW,
        [new_id(), new_id()], "[]", "[]", Decimal(0), Decimal(0),
    ]  # fmt: skip


async def _count(databases: Databases, sql: str) -> int:
    async with databases.owner_engine(ServiceName.MINT).connect() as connection:
        return int(await connection.scalar(text(sql)) or 0)


async def _user_wallet(databases: Databases, balance: str) -> uuid.UUID:
    """A user wallet holding ``balance`` with no journal behind it: made past the ledger's
    balance guard (a superuser's replica mode), so the journal holds only mint_move's rows."""
    owner = uuid.uuid4()
    async with databases.owner_engine(ServiceName.MINT).begin() as connection:
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        await connection.execute(
            text(
                "INSERT INTO wallets (id, user_id, currency, kind, balance, staked, earned,"
                " status, created_at, updated_at)"
                " VALUES (:id, :owner, 'AZR', 'user', :balance, 0, 0, 'active', now(), now())"
            ),
            {"id": new_id(), "owner": owner, "balance": Decimal(balance)},
        )
    return owner


async def test_a_call_that_returns_has_committed_everything(databases: Databases) -> None:
    alice, bob = await _user_wallet(databases, "5"), await _user_wallet(databases, "0")
    rows = await call_function(
        databases, ServiceName.MINT, "mint_move", *_move_args("k-ok", alice, bob, "2")
    )
    assert [row["outcome"] for row in rows] == ["posted"]
    # Seen from another connection: no transaction was left open.
    assert await _count(databases, "SELECT count(*) FROM transactions") == 1
    assert await _count(databases, "SELECT count(*) FROM ledger_entries") == 2
    assert await _count(databases, "SELECT count(*) FROM idempotency_keys") == 1


async def test_a_call_that_raises_leaves_nothing_behind(databases: Databases) -> None:
    alice, bob = await _user_wallet(databases, "1"), await _user_wallet(databases, "0")
    with pytest.raises(FunctionError) as raised:
        # The key is claimed first, then the balance check refuses the move.
        await call_function(
            databases, ServiceName.MINT, "mint_move", *_move_args("k-no", alice, bob, "2")
        )
    assert raised.value.sqlstate == "AZ003"
    assert "needed" in raised.value.message
    assert await _count(databases, "SELECT count(*) FROM idempotency_keys") == 0
    assert await _count(databases, "SELECT count(*) FROM transactions") == 0
    assert await _count(databases, "SELECT sum(balance) FROM wallets") == 1


async def test_a_constraint_violation_names_its_constraint(databases: Databases) -> None:
    alice, bob = await _user_wallet(databases, "5"), await _user_wallet(databases, "0")
    args = _move_args("k-dup", alice, bob, "1")
    await call_function(databases, ServiceName.MINT, "mint_move", *args)
    again = _move_args("k-other", alice, bob, "1")
    again[0] = args[0]  # the same transaction id
    with pytest.raises(FunctionError) as raised:
        await call_function(databases, ServiceName.MINT, "mint_move", *again)
    assert raised.value.sqlstate == "23505"
    assert raised.value.constraint == "pk_transactions"


async def test_only_plain_function_names_are_called(databases: Databases) -> None:
    with pytest.raises(ValueError, match="not a function name"):
        await call_function(databases, ServiceName.MINT, "mint_move(); DROP TABLE wallets; --")
