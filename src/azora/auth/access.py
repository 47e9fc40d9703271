"""Access tokens: short-lived JWTs (HS256) checked without the database.

Signed with ``AZORA_JWT_SECRET``; the ``kid`` header names the key (the first 16 hex
digits of the secret's SHA-256, which reveal nothing usable about a 32+ character
secret). Verification accepts the current key and the retired ones
(``AZORA_JWT_RETIRED_SECRETS``), so keys rotate without signing anyone out: add the old
secret to the retired list, set the new one, and drop the old one after one token
lifetime. The algorithm is pinned to HS256 (``alg: none`` and every other algorithm are
refused) and expiry is checked against the service's clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from azora.auth.errors import InvalidToken, TokenExpired
from azora.auth.models import Role
from azora.errors import ConfigurationError

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
#: How far ahead of this server's clock another server may have issued a token.
_CLOCK_SKEW = dt.timedelta(seconds=30)
_REQUIRED = ("exp", "iat", "sub", "sid", "role", "iss", "aud")


def key_id(secret: str) -> str:
    """The ``kid`` that names ``secret`` in token headers."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    role: Role
    expires_at: dt.datetime


class AccessTokens:
    """Issues and verifies access tokens with a current key and retired ones."""

    def __init__(
        self, secret: str, *, retired: tuple[str, ...] = (), issuer: str = "azora"
    ) -> None:
        """Keys from ``secret`` (signing) and ``retired`` (verification only).

        Raises:
            ConfigurationError: a secret shorter than 32 bytes (HS256 needs 256 bits).
        """
        for value in (secret, *retired):
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ConfigurationError(
                    f"a JWT secret must be at least {MIN_SECRET_BYTES} bytes",
                    hint="check AZORA_JWT_SECRET and AZORA_JWT_RETIRED_SECRETS",
                )
        self.kid = key_id(secret)
        self._secret = secret.encode()
        self._keys = {key_id(value): value.encode() for value in retired}
        self._keys[self.kid] = self._secret
        self._issuer = issuer
        self._jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True})

    def issue(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        role: Role,
        now: dt.datetime,
        ttl: dt.timedelta,
    ) -> tuple[str, dt.datetime]:
        """A signed token for the session and its expiry time."""
        expires = now + ttl
        claims = {
            "iss": self._issuer,
            "aud": self._issuer,
            "sub": str(user_id),
            "sid": str(session_id),
            "role": role.value,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        token = self._jwt.encode(
            claims, self._secret, algorithm=ALGORITHM, headers={"kid": self.kid}
        )
        return token, dt.datetime.fromtimestamp(int(expires.timestamp()), dt.UTC)

    def verify(self, token: str, *, now: dt.datetime) -> AccessClaims:
        """The claims of a genuine, unexpired token signed by a known key.

        Raises:
            TokenExpired: genuine but past its ``exp``.
            InvalidToken: malformed, another algorithm (``none`` included), an unknown or
                missing ``kid``, a wrong signature, a tampered payload or missing claims.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the access token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"the access token must be signed with {ALGORITHM}")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("the access token was signed with an unknown key")
        try:
            claims: dict[str, Any] = self._jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._issuer,
                issuer=self._issuer,
                # Times are checked below against the service's clock.
                options={
                    "require": list(_REQUIRED),
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise InvalidToken("the access token's signature does not match") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the access token is not valid: {_reason(exc)}") from None
        try:
            expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
            issued = dt.datetime.fromtimestamp(int(claims["iat"]), dt.UTC)
            parsed = AccessClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                session_id=uuid.UUID(str(claims["sid"])),
                role=Role(claims["role"]),
                expires_at=expires,
            )
        except (ValueError, TypeError, OverflowError):
            raise InvalidToken("the access token's claims are malformed") from None
        if issued > now + _CLOCK_SKEW:
            raise InvalidToken("the access token was issued in the future")
        if expires <= now:
            raise TokenExpired("the access token has expired", hint="refresh it")
        return parsed


def _reason(exc: jwt.PyJWTError) -> str:
    # PyJWT's messages name claims and algorithms, never the token or the key.
    return str(exc) or type(exc).__name__
