"""Password hashing: the production parameters meet OWASP's minimum; hashes verify."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters

from azora.auth.passwords import (
    OWASP_MINIMUM_MEMORY_KIB,
    PRODUCTION_PARAMETERS,
    Argon2Parameters,
    Passwords,
    hash_password,
    meets_owasp_minimum,
)
from azora.auth.policy import COMMON_PASSWORDS, MIN_LENGTH

from .conftest import FAST


def test_the_production_parameters_meet_owasps_minimum() -> None:
    assert meets_owasp_minimum(PRODUCTION_PARAMETERS)
    # OWASP's table, as published (Password Storage Cheat Sheet, Argon2id).
    assert OWASP_MINIMUM_MEMORY_KIB == {1: 47_104, 2: 19_456, 3: 12_288, 4: 9_216, 5: 7_168}
    assert PRODUCTION_PARAMETERS.time_cost >= 2
    assert PRODUCTION_PARAMETERS.memory_cost_kib >= 19_456
    assert PRODUCTION_PARAMETERS.parallelism >= 1


def test_the_default_hasher_uses_the_production_parameters() -> None:
    params = extract_parameters(hash_password("a long enough passphrase"))
    assert params.type.name == "ID"
    assert (params.time_cost, params.memory_cost, params.parallelism) == (
        PRODUCTION_PARAMETERS.time_cost,
        PRODUCTION_PARAMETERS.memory_cost_kib,
        PRODUCTION_PARAMETERS.parallelism,
    )


@pytest.mark.parametrize(
    ("parameters", "enough"),
    [
        (Argon2Parameters(1, 47_104, 1), True),
        (Argon2Parameters(1, 47_103, 1), False),
        (Argon2Parameters(2, 19_456, 1), True),
        (Argon2Parameters(2, 19_000, 1), False),
        (Argon2Parameters(9, 7_168, 1), True),
        (Argon2Parameters(9, 7_000, 1), False),
        (Argon2Parameters(0, 1_000_000, 1), False),
        (FAST, False),
    ],
)
def test_the_owasp_check(parameters: Argon2Parameters, enough: bool) -> None:
    assert meets_owasp_minimum(parameters) is enough


async def test_hash_verify_and_rehash() -> None:
    fast = Passwords(FAST)
    stored = await fast.hash("a long enough passphrase")
    assert stored.startswith("$argon2id$")
    assert await fast.verify(stored, "a long enough passphrase")
    assert not await fast.verify(stored, "a long enough passphrasE")
    assert not await fast.verify("not a hash", "a long enough passphrase")
    assert not await fast.verify_dummy("a long enough passphrase")
    assert not fast.needs_rehash(stored)
    assert Passwords(Argon2Parameters(2, 1_024, 1)).needs_rehash(stored)


def test_the_common_list_holds_only_passwords_long_enough_to_matter() -> None:
    assert all(len(p) >= MIN_LENGTH for p in COMMON_PASSWORDS)
    assert all(p == p.casefold() for p in COMMON_PASSWORDS)


async def test_the_dummy_check_costs_a_real_check_from_the_first_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = Passwords(FAST)
    checked: list[str] = []
    real_verify = fast.verify

    async def verify(stored_hash: str, password: str) -> bool:
        checked.append(stored_hash)
        return await real_verify(stored_hash, password)

    async def no_hashing(password: str) -> str:
        raise AssertionError("the dummy check must not hash first")

    monkeypatch.setattr(fast, "verify", verify)
    monkeypatch.setattr(fast, "hash", no_hashing)
    assert not await fast.verify_dummy("a long enough passphrase")
    [dummy] = checked
    assert dummy.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert not fast.needs_rehash(dummy)  # the parameters, hence the cost, of a real hash
