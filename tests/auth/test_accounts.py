"""Registration, email verification and password reset."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from azora.auth.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    TokenExpired,
    WeakPassword,
)
from azora.auth.events import USER_REGISTERED
from azora.auth.models import Token, TokenKind, User
from azora.auth.opaque import token_hash
from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.errors import InvalidInput
from azora.types import ServiceName

from .conftest import AGENT, IP, PASSWORD, FakeClock, audit_rows, new_email, outbox_rows, register


async def _count(databases: Databases, model: type[User] | type[Token]) -> int:
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(model))).scalar_one())


async def test_register_normalises_the_email_announces_and_audits(
    auth: AuthService, databases: Databases
) -> None:
    email = new_email()
    registration = await auth.register(
        f"  {email.upper()} ", PASSWORD, "Ama Mensah", ip=IP, user_agent=AGENT
    )

    assert registration.user.email == email
    assert not registration.user.is_email_verified
    [event] = await outbox_rows(databases, USER_REGISTERED)
    assert event["payload"]["email"] == email
    [audit] = await audit_rows(databases, "auth.user.register")
    assert (audit["user_id"], audit["ip"], audit["user_agent"]) == (
        registration.user.id,
        IP,
        AGENT,
    )
    assert registration.verification_token not in repr(registration)


async def test_an_email_is_taken_whatever_its_case(auth: AuthService, databases: Databases) -> None:
    email = new_email()
    await register(auth, email)
    with pytest.raises(EmailTaken):
        await register(auth, email.upper())
    assert await _count(databases, User) == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short pass", "at least 12 characters"),
        ("x" * 129, "at most 128 characters"),
        ("password1234", "common passwords"),
        ("QWERTY123456", "common passwords"),
        ("{email}", "may not be the email"),
    ],
)
async def test_the_password_policy_refuses_weak_passwords_and_writes_nothing(
    auth: AuthService, databases: Databases, password: str, message: str
) -> None:
    email = new_email()
    password = password.format(email=email.upper())
    with pytest.raises(WeakPassword, match=message) as caught:
        await auth.register(email, password, "Ama Mensah")
    assert caught.value.code == "weak_password"
    assert password not in str(caught.value)
    assert await _count(databases, User) == 0
    assert await audit_rows(databases) == []


async def test_long_unicode_passphrases_without_composition_rules_are_fine(
    auth: AuthService,
) -> None:
    registration = await register(auth, password="ngiyabonga kakhulu 🌍 " * 2)
    assert registration.user.id


@pytest.mark.parametrize(
    ("email", "name", "role", "field"),
    [
        ("not-an-email", "Ama", "student", "email"),
        ("{email}", "", "student", "name"),
        ("{email}", "Ama", "admin", "role"),
        ("{email}", "Ama", "wizard", "role"),
    ],
)
async def test_registration_refuses_bad_input_with_the_field_named(
    auth: AuthService, databases: Databases, email: str, name: str, role: str, field: str
) -> None:
    with pytest.raises(InvalidInput, match=f"^{field}: "):
        await auth.register(email.format(email=new_email()), PASSWORD, name, role)
    assert await _count(databases, User) == 0


async def test_email_verification_is_single_use(auth: AuthService, databases: Databases) -> None:
    registration = await register(auth)
    token = registration.verification_token
    assert not (await auth.users.get_user_cached(registration.user.id)).is_email_verified

    verified = await auth.verify_email(token, ip=IP)

    assert verified.is_email_verified
    assert (await auth.users.get_user_cached(verified.id)).is_email_verified  # cache forgot
    with pytest.raises(InvalidToken, match="already been used"):
        await auth.verify_email(token)
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        stored = (await connection.execute(select(Token.token_hash))).scalars().all()
    assert stored == [token_hash(token)]  # only the hash is kept


async def test_an_expired_verification_token_is_refused(
    auth: AuthService, clock: FakeClock
) -> None:
    registration = await register(auth)
    clock.advance(seconds=auth.config.email_verification_ttl.total_seconds() + 1)
    with pytest.raises(TokenExpired):
        await auth.verify_email(registration.verification_token)


async def test_a_new_verification_token_withdraws_the_old_one(auth: AuthService) -> None:
    registration = await register(auth)
    fresh = await auth.issue_email_verification(registration.user.id)
    assert fresh is not None
    with pytest.raises(InvalidToken, match="withdrawn"):
        await auth.verify_email(registration.verification_token)
    await auth.verify_email(fresh)
    assert await auth.issue_email_verification(registration.user.id) is None


async def test_unknown_tokens_are_refused(auth: AuthService) -> None:
    with pytest.raises(InvalidToken, match="not valid"):
        await auth.verify_email("made-up")


# -- password reset ----------------------------------------------------------------------


async def test_a_reset_sets_the_password_revokes_every_session_and_is_single_use(
    auth: AuthService, databases: Databases
) -> None:
    registration = await register(auth)
    email = registration.user.email
    first = await auth.login(email, PASSWORD, IP, AGENT)
    second = await auth.login(email, PASSWORD, "198.51.100.1", AGENT)
    token = await auth.request_password_reset(email, ip=IP)
    assert token is not None

    revoked = await auth.reset_password(token, "a brand new passphrase", ip=IP)

    assert revoked == 2
    for signed in (first, second):
        with pytest.raises(InvalidToken):
            await auth.verify_access_token(signed.access_token)
        with pytest.raises(InvalidToken):
            await auth.refresh(signed.refresh_token)
    with pytest.raises(InvalidToken, match="already been used"):
        await auth.reset_password(token, "yet another passphrase")
    await auth.login(email, "a brand new passphrase", IP, AGENT)
    [audit] = await audit_rows(databases, "auth.password.reset")
    assert audit["metadata"] == {"sessions_revoked": 2}


async def test_an_expired_reset_token_is_refused(auth: AuthService, clock: FakeClock) -> None:
    registration = await register(auth)
    token = await auth.request_password_reset(registration.user.email)
    assert token is not None
    clock.advance(seconds=auth.config.password_reset_ttl.total_seconds() + 1)
    with pytest.raises(TokenExpired):
        await auth.reset_password(token, "a brand new passphrase")


async def test_a_weak_new_password_leaves_the_token_usable(auth: AuthService) -> None:
    registration = await register(auth)
    token = await auth.request_password_reset(registration.user.email)
    assert token is not None
    with pytest.raises(WeakPassword):
        await auth.reset_password(token, registration.user.email)
    await auth.reset_password(token, "a brand new passphrase")


async def test_a_newer_reset_request_withdraws_the_older_token(auth: AuthService) -> None:
    registration = await register(auth)
    older = await auth.request_password_reset(registration.user.email)
    newer = await auth.request_password_reset(registration.user.email)
    assert older is not None
    assert newer is not None
    with pytest.raises(InvalidToken, match="withdrawn"):
        await auth.reset_password(older, "a brand new passphrase")
    await auth.reset_password(newer, "a brand new passphrase")


async def test_a_reset_request_for_an_unknown_email_gives_nothing(
    auth: AuthService, databases: Databases
) -> None:
    assert await auth.request_password_reset(new_email()) is None
    assert await _count(databases, Token) == 0
    [audit] = await audit_rows(databases, "auth.password.reset_requested")
    assert audit["metadata"] == {"known": False}


async def test_a_verification_token_cannot_reset_a_password(auth: AuthService) -> None:
    registration = await register(auth)
    with pytest.raises(InvalidToken):
        await auth.reset_password(registration.verification_token, "a brand new passphrase")
    assert TokenKind.PASSWORD_RESET.value == "password_reset"


async def test_changing_the_password_needs_the_current_one_and_signs_out_other_sessions(
    auth: AuthService, databases: Databases
) -> None:
    registration = await register(auth)
    email = registration.user.email
    here = await auth.login(email, PASSWORD, IP, AGENT)
    elsewhere = await auth.login(email, PASSWORD, "198.51.100.1", AGENT)
    principal = await auth.verify_access_token(here.access_token)
    with pytest.raises(InvalidCredentials, match="current password"):
        await auth.change_password(principal, "not the passphrase", "a brand new passphrase")
    with pytest.raises(WeakPassword):
        await auth.change_password(principal, PASSWORD, "password1234")

    assert await auth.change_password(principal, PASSWORD, "a brand new passphrase") == 1

    await auth.verify_access_token(here.access_token)  # this session stays
    with pytest.raises(InvalidToken):
        await auth.verify_access_token(elsewhere.access_token)
    with pytest.raises(InvalidCredentials):
        await auth.login(email, PASSWORD, IP, AGENT)
    await auth.login(email, "a brand new passphrase", IP, AGENT)
    assert len(await audit_rows(databases, "auth.password.changed")) == 1
