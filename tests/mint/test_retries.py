"""Serialization failures and deadlocks reported by the database are retried, others are not."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from azora.db.procedures import FunctionError
from azora.mint.service import MintService


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"driver error {sqlstate}")
        self.sqlstate = sqlstate


def _failing(sqlstate: str, times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise DBAPIError("UPDATE wallets ...", None, _DriverError(sqlstate))
        return "done"

    return calls, attempt


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"], ids=["serialization", "deadlock"])
async def test_retryable_failures_are_retried_until_they_pass(
    mint: MintService, sqlstate: str
) -> None:
    calls, attempt = _failing(sqlstate, times=3)
    assert await mint._retrying(attempt) == "done"  # type: ignore[arg-type]
    assert len(calls) == 4
    assert mint.retries == 3


async def test_other_database_errors_are_not_retried(mint: MintService) -> None:
    calls, attempt = _failing("23505", times=1)
    with pytest.raises(DBAPIError):
        await mint._retrying(attempt)  # type: ignore[arg-type]
    assert len(calls) == 1
    assert mint.retries == 0


async def test_retries_give_up_after_the_limit(mint: MintService) -> None:
    calls, attempt = _failing("40001", times=100)
    with pytest.raises(DBAPIError):
        await mint._retrying(attempt)  # type: ignore[arg-type]
    assert len(calls) == 9  # the first try and eight retries


async def test_failures_of_a_server_side_function_are_retried_the_same_way(
    mint: MintService,
) -> None:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise FunctionError("40P01", "deadlock detected", None)
        if len(calls) == 2:
            raise FunctionError("40001", "could not serialize access", None)
        return "done"

    assert await mint._retrying(attempt) == "done"
    assert len(calls) == 3

    async def refused() -> str:
        raise FunctionError("23514", "check constraint violated", "ck_wallets_user_non_negative")

    with pytest.raises(FunctionError):
        await mint._retrying(refused)
