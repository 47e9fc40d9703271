"""Access tokens (JWT): what is refused, and key rotation."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import uuid

import jwt
import pytest

from azora.auth.access import AccessTokens, key_id
from azora.auth.config import AuthConfig
from azora.auth.errors import InvalidToken, TokenExpired
from azora.auth.models import Role
from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.errors import ConfigurationError

from .conftest import AGENT, IP, PASSWORD, FakeClock, register

OLD = "the old secret, retired but still accepted"
NEW = "the new secret, which signs every new token"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(minutes=15)


def _issue(tokens: AccessTokens, now: dt.datetime = NOW) -> str:
    token, _ = tokens.issue(
        user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.STUDENT, now=now, ttl=TTL
    )
    return token


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_genuine_token_verifies_with_its_claims() -> None:
    tokens = AccessTokens(NEW)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    token, expires = tokens.issue(
        user_id=user_id, session_id=session_id, role=Role.EDUCATOR, now=NOW, ttl=TTL
    )
    claims = tokens.verify(token, now=NOW)
    assert (claims.user_id, claims.session_id, claims.role) == (user_id, session_id, Role.EDUCATOR)
    assert claims.expires_at == expires == NOW + TTL
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": key_id(NEW), "typ": "JWT"}


def test_a_token_signed_with_another_secret_is_refused() -> None:
    forged = _issue(AccessTokens("an attacker's secret of enough length!"))
    header, payload, signature = forged.split(".")
    # Same key id as ours, so only the signature can tell.
    relabelled = f"{_b64({'alg': 'HS256', 'kid': key_id(NEW), 'typ': 'JWT'})}.{payload}.{signature}"
    with pytest.raises(InvalidToken, match="signature does not match"):
        AccessTokens(NEW).verify(relabelled, now=NOW)
    with pytest.raises(InvalidToken, match="unknown key"):
        AccessTokens(NEW).verify(forged, now=NOW)
    assert header


def test_alg_none_is_refused() -> None:
    genuine = _issue(AccessTokens(NEW))
    _header, payload, _signature = genuine.split(".")
    unsigned = f"{_b64({'alg': 'none', 'kid': key_id(NEW), 'typ': 'JWT'})}.{payload}."
    with pytest.raises(InvalidToken, match="must be signed with HS256"):
        AccessTokens(NEW).verify(unsigned, now=NOW)


def test_another_algorithm_is_refused_even_with_the_right_key() -> None:
    claims = jwt.decode(_issue(AccessTokens(NEW)), options={"verify_signature": False})
    other = jwt.encode(claims, NEW.encode() * 2, algorithm="HS512", headers={"kid": key_id(NEW)})
    with pytest.raises(InvalidToken, match="HS256"):
        AccessTokens(NEW).verify(other, now=NOW)


def test_a_tampered_payload_is_refused() -> None:
    header, payload, signature = _issue(AccessTokens(NEW)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    with pytest.raises(InvalidToken, match="signature does not match"):
        AccessTokens(NEW).verify(f"{header}.{_b64(claims)}.{signature}", now=NOW)


def test_an_expired_token_is_refused_and_says_so() -> None:
    token = _issue(AccessTokens(NEW))
    AccessTokens(NEW).verify(token, now=NOW + TTL - dt.timedelta(seconds=1))
    with pytest.raises(TokenExpired, match="expired"):
        AccessTokens(NEW).verify(token, now=NOW + TTL)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 50])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        AccessTokens(NEW).verify(garbage, now=NOW)


def test_a_token_without_the_session_claim_is_refused() -> None:
    claims = {
        "iss": "azora",
        "aud": "azora",
        "sub": str(uuid.uuid4()),
        "role": "student",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + TTL).timestamp()),
    }
    token = jwt.encode(claims, NEW, algorithm="HS256", headers={"kid": key_id(NEW)})
    with pytest.raises(InvalidToken, match="sid"):
        AccessTokens(NEW).verify(token, now=NOW)


def test_rotation_keeps_tokens_of_a_retired_key_valid_and_refuses_unknown_keys() -> None:
    before = _issue(AccessTokens(OLD))
    rotated = AccessTokens(NEW, retired=(OLD,))

    assert rotated.verify(before, now=NOW).role is Role.STUDENT
    after = _issue(rotated)
    assert jwt.get_unverified_header(after)["kid"] == key_id(NEW)
    with pytest.raises(InvalidToken, match="unknown key"):
        AccessTokens(NEW).verify(before, now=NOW)  # once the old key is dropped
    with pytest.raises(InvalidToken, match="unknown key"):
        AccessTokens(OLD).verify(after, now=NOW)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        AccessTokens("too short")
    with pytest.raises(ConfigurationError):
        AccessTokens(NEW, retired=("short",))


async def test_rotation_through_the_service(
    databases: Databases, auth: AuthService, clock: FakeClock
) -> None:
    registration = await register(auth)
    old_config = AuthConfig.from_settings(databases.settings, clock=clock)
    signed = await auth.login(registration.user.email, PASSWORD, IP, AGENT)
    rotated = AuthService(
        databases,
        config=dataclasses.replace(
            old_config, jwt_secret=NEW, jwt_retired_secrets=(old_config.jwt_secret,)
        ),
    )
    assert (await rotated.verify_access_token(signed.access_token)).user_id == signed.user_id
    renewed = await rotated.refresh(signed.refresh_token)
    assert jwt.get_unverified_header(renewed.access_token)["kid"] == key_id(NEW)
    with pytest.raises(InvalidToken, match="unknown key"):
        await auth.verify_access_token(renewed.access_token)
