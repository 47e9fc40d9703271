"""A wrong email costs as long as a wrong password (no account enumeration by timing)."""

from __future__ import annotations

import statistics
import time

import pytest

from azora.auth.config import AuthConfig
from azora.auth.errors import InvalidCredentials
from azora.auth.passwords import Argon2Parameters, Passwords
from azora.auth.service import AuthService
from azora.cache import Cache
from azora.db.engines import Databases

from .conftest import AGENT, FakeClock, new_email, register

ROUNDS = 15
#: One of OWASP's minimum configurations (m=46 MiB, t=1): ~40 ms a hash here, so the
#: hash dominates the database work as it does in production, at 40% of its cost.
TIMED = Argon2Parameters(time_cost=1, memory_cost_kib=47_104, parallelism=1)


async def _failed_login_seconds(auth: AuthService, email: str, ip: str) -> float:
    began = time.perf_counter()
    with pytest.raises(InvalidCredentials):
        await auth.login(email, "not the passphrase", ip, AGENT)
    return time.perf_counter() - began


async def test_unknown_email_and_wrong_password_take_the_same_time(
    databases: Databases, cache: Cache, clock: FakeClock
) -> None:
    auth = AuthService(
        databases,
        cache=cache,
        config=AuthConfig.from_settings(databases.settings, clock=clock),
        passwords=Passwords(TIMED),
    )
    accounts = [(await register(auth)).user.email for _ in range(ROUNDS + 1)]
    # Warm up both paths (the dummy hash is made on first use, connections open).
    await _failed_login_seconds(auth, new_email(), "192.0.2.1")
    await _failed_login_seconds(auth, accounts[-1], "192.0.2.1")

    unknown: list[float] = []
    wrong: list[float] = []
    # Interleaved, and each pair in alternating order, so that changes in the machine's
    # load hit both kinds alike.
    for index in range(ROUNDS):
        ip = f"192.0.2.{10 + index}"
        pair = [(unknown, new_email()), (wrong, accounts[index])]
        for timings, email in pair if index % 2 else reversed(pair):
            timings.append(await _failed_login_seconds(auth, email, ip))

    unknown_ms, wrong_ms = statistics.median(unknown) * 1000, statistics.median(wrong) * 1000
    ratio = max(unknown_ms, wrong_ms) / min(unknown_ms, wrong_ms)
    assert ratio <= 1.2, f"unknown email {unknown_ms:.1f} ms vs wrong password {wrong_ms:.1f} ms"
