"""Signing in: tokens on success, one answer for every failure, progressive lockout."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from azora.auth.errors import InvalidCredentials, TooManyAttempts
from azora.auth.events import USER_LOGIN
from azora.auth.models import Role, User
from azora.auth.passwords import Argon2Parameters, Passwords
from azora.auth.service import AuthService
from azora.catalog import SERVICES
from azora.db.engines import Databases
from azora.db.seeding import DEV_ADMIN_EMAIL, DEV_SEED_PASSWORD, DEV_STUDENT_EMAIL, run_seeds
from azora.types import ServiceName

from .conftest import (
    AGENT,
    IP,
    PASSWORD,
    FakeClock,
    attempts,
    audit_rows,
    new_email,
    outbox_rows,
    register,
)


async def _user(databases: Databases, email: str) -> dict[str, object]:
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        row = (
            await connection.execute(
                select(
                    User.failed_login_count,
                    User.locked_until,
                    User.last_login_at,
                    User.password_hash,
                ).where(User.email == email)
            )
        ).one()
    return dict(row._mapping)


async def test_a_sign_in_returns_tokens_records_announces_and_audits(
    auth: AuthService, databases: Databases
) -> None:
    registration = await register(auth)
    email = registration.user.email

    signed = await auth.login(f" {email.upper()}", PASSWORD, IP, AGENT)

    principal = await auth.verify_access_token(signed.access_token)
    assert (principal.user_id, principal.session_id) == (registration.user.id, signed.session_id)
    assert signed.refresh_token
    assert signed.session_token
    assert signed.access_expires_at < signed.refresh_expires_at
    assert PASSWORD not in repr(signed)
    assert signed.access_token not in repr(signed)
    [attempt] = await attempts(databases)
    assert (attempt["email"], attempt["ip"], attempt["succeeded"]) == (email, IP, True)
    assert attempt["user_id"] == registration.user.id
    [event] = await outbox_rows(databases, USER_LOGIN)
    assert event["payload"]["method"] == "password"
    [audit] = await audit_rows(databases, "auth.login.succeeded")
    assert (audit["ip"], audit["user_agent"]) == (IP, AGENT)
    assert (await _user(databases, email))["last_login_at"] is not None


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    auth: AuthService, databases: Databases
) -> None:
    registration = await register(auth)
    with pytest.raises(InvalidCredentials) as unknown:
        await auth.login(new_email(), PASSWORD, IP, AGENT)
    with pytest.raises(InvalidCredentials) as wrong:
        await auth.login(registration.user.email, "not the passphrase", IP, AGENT)
    assert str(unknown.value) == str(wrong.value)
    assert unknown.value.code == wrong.value.code == "invalid_credentials"
    failures = await audit_rows(databases, "auth.login.failed")
    assert [row["metadata"]["reason"] for row in failures] == ["unknown_email", "bad_password"]
    assert [a["succeeded"] for a in await attempts(databases)] == [False, False]


async def test_an_inactive_account_cannot_sign_in(auth: AuthService, databases: Databases) -> None:
    registration = await register(auth)
    async with databases.owner_engine(ServiceName.AUTH).begin() as connection:
        await connection.execute(
            User.__table__.update()
            .where(User.__table__.c.id == registration.user.id)
            .values(is_active=False)
        )
    with pytest.raises(InvalidCredentials):
        await auth.login(registration.user.email, PASSWORD, IP, AGENT)


async def test_the_account_locks_progressively_and_the_lock_is_recorded(
    auth: AuthService, databases: Databases, clock: FakeClock
) -> None:
    registration = await register(auth)
    email, policy = registration.user.email, auth.config.lockout
    for _ in range(policy.account_threshold):
        with pytest.raises(InvalidCredentials):
            await auth.login(email, "not the passphrase", IP, AGENT)

    with pytest.raises(TooManyAttempts) as locked:
        await auth.login(email, PASSWORD, IP, AGENT)  # even the right password
    assert locked.value.retry_after_s == policy.base.total_seconds()
    user = await _user(databases, email)
    assert user["failed_login_count"] == policy.account_threshold
    assert user["locked_until"] == clock.now + policy.base
    [lock] = await audit_rows(databases, "auth.account.locked")
    assert lock["metadata"] == {"failures": 5, "locked_s": 30}
    assert len(await audit_rows(databases, "auth.login.blocked")) == 1
    assert len(await attempts(databases)) == policy.account_threshold  # blocked: not counted

    clock.advance(seconds=policy.base.total_seconds())
    with pytest.raises(InvalidCredentials):
        await auth.login(email, "still not it", IP, AGENT)
    with pytest.raises(TooManyAttempts) as longer:
        await auth.login(email, PASSWORD, IP, AGENT)
    assert longer.value.retry_after_s == 2 * policy.base.total_seconds()  # doubled

    clock.advance(seconds=2 * policy.base.total_seconds())
    await auth.login(email, PASSWORD, IP, AGENT)
    user = await _user(databases, email)
    assert (user["failed_login_count"], user["locked_until"]) == (0, None)


async def test_unknown_emails_lock_exactly_like_accounts(auth: AuthService) -> None:
    email = new_email()
    for _ in range(auth.config.lockout.account_threshold):
        with pytest.raises(InvalidCredentials):
            await auth.login(email, "anything at all", IP, AGENT)
    with pytest.raises(TooManyAttempts) as locked:
        await auth.login(email, "anything at all", IP, AGENT)
    assert locked.value.retry_after_s == auth.config.lockout.base.total_seconds()


async def test_one_address_failing_across_many_emails_is_blocked(
    auth: AuthService, databases: Databases, clock: FakeClock
) -> None:
    registration = await register(auth)
    threshold = auth.config.lockout.ip_threshold
    for _ in range(threshold):
        with pytest.raises(InvalidCredentials):
            await auth.login(new_email(), "credential stuffing", IP, AGENT)

    with pytest.raises(TooManyAttempts):
        await auth.login(registration.user.email, PASSWORD, IP, AGENT)
    await auth.login(registration.user.email, PASSWORD, "198.51.100.9", AGENT)  # elsewhere
    [blocked] = await audit_rows(databases, "auth.ip.blocked")
    assert (blocked["resource_id"], blocked["metadata"]["failures"]) == (IP, threshold)

    clock.advance(seconds=auth.config.lockout.window.total_seconds() + 1)
    await auth.login(registration.user.email, PASSWORD, IP, AGENT)  # the window moved on


async def test_a_success_resets_the_count_of_its_email(auth: AuthService) -> None:
    registration = await register(auth)
    email = registration.user.email
    for _ in range(2):
        for _ in range(auth.config.lockout.account_threshold - 1):
            with pytest.raises(InvalidCredentials):
                await auth.login(email, "not the passphrase", IP, AGENT)
        await auth.login(email, PASSWORD, IP, AGENT)


async def test_an_outdated_hash_is_rehashed_at_sign_in(
    databases: Databases, auth: AuthService
) -> None:
    registration = await register(auth)
    email = registration.user.email
    before = (await _user(databases, email))["password_hash"]
    stronger = Passwords(Argon2Parameters(time_cost=2, memory_cost_kib=2_048, parallelism=1))
    upgraded = AuthService(databases, config=auth.config, passwords=stronger)

    await upgraded.login(email, PASSWORD, IP, AGENT)

    after = (await _user(databases, email))["password_hash"]
    assert isinstance(after, str)
    assert after != before
    assert "m=2048,t=2,p=1" in after
    assert not stronger.needs_rehash(after)
    await upgraded.login(email, PASSWORD, IP, AGENT)  # the new hash verifies
    assert len(await audit_rows(databases, "auth.password.rehashed")) == 1


async def test_the_development_seed_accounts_can_sign_in(
    auth: AuthService, databases: Databases
) -> None:
    auth_source = SERVICES[ServiceName.AUTH]
    await run_seeds(
        databases,
        [(auth_source.migrations, auth_source.seed_development)],
        production=False,
        admin_password="an admin passphrase",
    )
    signed = await auth.login(DEV_STUDENT_EMAIL, DEV_SEED_PASSWORD, IP, AGENT)
    assert signed.role is Role.STUDENT
    admin = await auth.login(DEV_ADMIN_EMAIL, "an admin passphrase", IP, AGENT)
    assert admin.role is Role.ADMIN
