"""TOTP two-factor sign-in: enrolment, confirmation, replay refusal, recovery codes."""

from __future__ import annotations

import urllib.parse
import uuid

import pytest
from sqlalchemy import select

from azora.auth.errors import (
    InvalidCredentials,
    InvalidMFACode,
    MFAAlreadyEnabled,
    MFAEnrolmentMissing,
    MFANotEnabled,
    MFARequired,
)
from azora.auth.events import USER_MFA_ENABLED
from azora.auth.mfa import current_step, totp_code
from azora.auth.models import MFASettings
from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.types import ServiceName

from .conftest import AGENT, IP, PASSWORD, FakeClock, audit_rows, outbox_rows, register


def _code(secret: str, clock: FakeClock, steps: int = 0) -> str:
    return totp_code(secret, current_step(clock.now) + steps)


async def _enrolled(auth: AuthService, clock: FakeClock) -> tuple[str, uuid.UUID, str, list[str]]:
    """A user with two-factor sign-in on: (email, user id, TOTP secret, recovery codes)."""
    registration = await register(auth)
    user_id = registration.user.id
    enrolment = await auth.begin_mfa_enrolment(user_id, ip=IP, user_agent=AGENT)
    codes = await auth.confirm_mfa(user_id, _code(enrolment.secret, clock), ip=IP)
    clock.advance(seconds=30)  # the confirming code's step is used up
    return registration.user.email, user_id, enrolment.secret, codes


async def test_enrolment_gives_a_provisioning_uri_and_stores_the_secret_encrypted(
    auth: AuthService, databases: Databases
) -> None:
    registration = await register(auth)
    enrolment = await auth.begin_mfa_enrolment(registration.user.id)

    uri = urllib.parse.urlparse(enrolment.provisioning_uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    query = urllib.parse.parse_qs(uri.query)
    assert query["secret"] == [enrolment.secret]
    assert query["issuer"] == ["Azora"]
    assert urllib.parse.quote(registration.user.email) in uri.path
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        stored = (await connection.execute(select(MFASettings.totp_secret))).scalar_one()
    assert stored.startswith("v1.")
    assert enrolment.secret not in stored
    # Not enabled until confirmed: the password alone still signs in.
    await auth.login(registration.user.email, PASSWORD, IP, AGENT)


async def test_confirmation_needs_a_valid_code_and_then_sign_in_needs_one(
    auth: AuthService, databases: Databases, clock: FakeClock
) -> None:
    registration = await register(auth)
    user_id, email = registration.user.id, registration.user.email
    with pytest.raises(MFAEnrolmentMissing):
        await auth.confirm_mfa(user_id, "123456")
    enrolment = await auth.begin_mfa_enrolment(user_id)
    with pytest.raises(InvalidMFACode):
        await auth.confirm_mfa(user_id, _code(enrolment.secret, clock, steps=5))

    codes = await auth.confirm_mfa(user_id, _code(enrolment.secret, clock))

    assert len(codes) == len(set(codes)) == 10
    assert len(await outbox_rows(databases, USER_MFA_ENABLED)) == 1
    with pytest.raises(MFAAlreadyEnabled):
        await auth.begin_mfa_enrolment(user_id)
    with pytest.raises(MFARequired):
        await auth.login(email, PASSWORD, IP, AGENT)
    assert await audit_rows(databases, "auth.login.succeeded") == []
    clock.advance(seconds=30)
    signed = await auth.login(email, PASSWORD, IP, AGENT, _code(enrolment.secret, clock))
    assert (await auth.verify_access_token(signed.access_token)).user_id == user_id
    [audit] = await audit_rows(databases, "auth.login.succeeded")
    assert audit["metadata"]["second_factor"] == "totp"


async def test_a_code_is_accepted_once_and_older_steps_never(
    auth: AuthService, clock: FakeClock
) -> None:
    email, _user_id, secret, _codes = await _enrolled(auth, clock)
    code = _code(secret, clock)
    await auth.login(email, PASSWORD, IP, AGENT, code)

    with pytest.raises(InvalidCredentials, match="code is not valid"):
        await auth.login(email, PASSWORD, IP, AGENT, code)  # replayed
    with pytest.raises(InvalidCredentials):
        await auth.login(email, PASSWORD, IP, AGENT, _code(secret, clock, steps=-1))  # older
    clock.advance(seconds=30)
    await auth.login(email, PASSWORD, IP, AGENT, _code(secret, clock))  # the next step is fine


async def test_codes_within_one_step_of_drift_are_accepted(
    auth: AuthService, clock: FakeClock
) -> None:
    email, _user_id, secret, _codes = await _enrolled(auth, clock)
    await auth.login(email, PASSWORD, IP, AGENT, _code(secret, clock, steps=1))
    clock.advance(seconds=90)
    with pytest.raises(InvalidCredentials):
        await auth.login(email, PASSWORD, IP, AGENT, _code(secret, clock, steps=2))


async def test_wrong_codes_count_towards_the_lockout(
    auth: AuthService, databases: Databases, clock: FakeClock
) -> None:
    email, _user_id, _secret, _codes = await _enrolled(auth, clock)
    for _ in range(auth.config.lockout.account_threshold):
        with pytest.raises(InvalidCredentials):
            await auth.login(email, PASSWORD, IP, AGENT, "000000")
    assert len(await audit_rows(databases, "auth.account.locked")) == 1


async def test_a_recovery_code_works_once(
    auth: AuthService, databases: Databases, clock: FakeClock
) -> None:
    email, _user_id, _secret, codes = await _enrolled(auth, clock)

    await auth.login(email, PASSWORD, IP, AGENT, recovery_code=codes[0].lower())

    with pytest.raises(InvalidCredentials):
        await auth.login(email, PASSWORD, IP, AGENT, recovery_code=codes[0])
    await auth.login(email, PASSWORD, IP, AGENT, recovery_code=codes[1].replace("-", " "))
    used = await audit_rows(databases, "auth.mfa.recovery_code_used")
    assert [row["metadata"]["remaining"] for row in used] == [9, 8]


async def test_disabling_needs_a_valid_code(auth: AuthService, clock: FakeClock) -> None:
    email, user_id, secret, codes = await _enrolled(auth, clock)
    with pytest.raises(InvalidMFACode):
        await auth.disable_mfa(user_id, "000000")
    with pytest.raises(MFARequired):
        await auth.login(email, PASSWORD, IP, AGENT)  # still on

    await auth.disable_mfa(user_id, codes[3])

    await auth.login(email, PASSWORD, IP, AGENT)
    with pytest.raises(MFANotEnabled):
        await auth.disable_mfa(user_id, _code(secret, clock))
    enrolment = await auth.begin_mfa_enrolment(user_id)  # and it can be set up anew
    assert enrolment.secret != secret


async def test_disabling_with_a_totp_code(auth: AuthService, clock: FakeClock) -> None:
    email, user_id, secret, _codes = await _enrolled(auth, clock)
    await auth.disable_mfa(user_id, _code(secret, clock))
    await auth.login(email, PASSWORD, IP, AGENT)


async def test_identity_sign_in_also_needs_the_second_factor(
    auth: AuthService, clock: FakeClock
) -> None:
    _email, user_id, secret, _codes = await _enrolled(auth, clock)
    await auth.link_identity(user_id, "google", "g-123")
    with pytest.raises(MFARequired):
        await auth.login_with_identity("google", "g-123", IP, AGENT)
    await auth.login_with_identity("google", "g-123", IP, AGENT, _code(secret, clock))
