"""Single-use tokens in the ``tokens`` table: email verification and password reset.

Each is an opaque random token (see :mod:`azora.auth.opaque`) stored as a hash, with an
expiry; using one stamps ``used_at`` in a conditional ``UPDATE``, so of two concurrent
uses exactly one succeeds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from azora.auth.errors import InvalidToken, TokenExpired
from azora.auth.models import Token, TokenKind
from azora.auth.opaque import new_token, token_hash

_WHAT = {
    TokenKind.EMAIL_VERIFICATION: "email verification",
    TokenKind.PASSWORD_RESET: "password reset",
    TokenKind.REFRESH: "refresh",
}


def issue(
    session: AsyncSession,
    user_id: uuid.UUID,
    kind: TokenKind,
    *,
    now: dt.datetime,
    expires_at: dt.datetime,
    family_id: uuid.UUID | None = None,
) -> str:
    """Add a new token of ``kind`` for ``user_id``; the plain token (never stored)."""
    token = new_token()
    session.add(
        Token(
            user_id=user_id,
            kind=kind,
            token_hash=token_hash(token),
            family_id=family_id,
            expires_at=expires_at,
            created_at=now,
            updated_at=now,
        )
    )
    return token


async def consume(
    session: AsyncSession, token: str, kind: TokenKind, *, now: dt.datetime
) -> uuid.UUID:
    """Mark the token used and return its user.

    Raises:
        TokenExpired: the token's time is up.
        InvalidToken: unknown, of another kind, already used or withdrawn.
    """
    digest = token_hash(token)
    used = await session.execute(
        update(Token)
        .where(
            Token.token_hash == digest,
            Token.kind == kind,
            Token.used_at.is_(None),
            Token.revoked_at.is_(None),
            Token.expires_at > now,
        )
        .values(used_at=now, updated_at=now)
        .returning(Token.user_id)
    )
    user_id = used.scalar_one_or_none()
    if user_id is None:
        refuse(await lookup(session, token, kind), kind, now=now)
    return user_id


@dataclass(frozen=True)
class TokenRecord:
    """A stored token's state."""

    user_id: uuid.UUID
    family_id: uuid.UUID | None
    used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    expires_at: dt.datetime


async def lookup(session: AsyncSession, token: str, kind: TokenKind) -> TokenRecord | None:
    """The stored state of ``token`` (of ``kind``), or None if there is no such token."""
    result = await session.execute(
        select(
            Token.user_id, Token.family_id, Token.used_at, Token.revoked_at, Token.expires_at
        ).where(Token.token_hash == token_hash(token), Token.kind == kind)
    )
    row = result.first()
    return None if row is None else TokenRecord(*row)


def usable(record: TokenRecord | None, kind: TokenKind, *, now: dt.datetime) -> TokenRecord:
    """``record`` if the token can be used now (unused, not withdrawn, not expired).

    Raises:
        TokenExpired, InvalidToken: see :func:`consume`.
    """
    if record is None or record.used_at or record.revoked_at or record.expires_at <= now:
        refuse(record, kind, now=now)
    return record


def refuse(record: TokenRecord | None, kind: TokenKind, *, now: dt.datetime) -> NoReturn:
    """Raise the error that says why ``record`` cannot be used.

    Raises:
        TokenExpired, InvalidToken: see :func:`consume`.
    """
    what = _WHAT[kind]
    if record is None:
        raise InvalidToken(f"the {what} token is not valid")
    if record.used_at is not None:
        raise InvalidToken(f"the {what} token has already been used")
    if record.revoked_at is not None:
        raise InvalidToken(f"the {what} token was withdrawn")
    if record.expires_at <= now:
        raise TokenExpired(f"the {what} token has expired", hint="ask for a new one")
    # Usable now, yet a conditional update just missed it: a concurrent use won.
    raise InvalidToken(f"the {what} token has already been used")


async def withdraw(
    session: AsyncSession, user_id: uuid.UUID, kind: TokenKind, *, now: dt.datetime
) -> None:
    """Withdraw every unused token of ``kind`` the user holds (a newer one replaces them)."""
    await session.execute(
        update(Token)
        .where(
            Token.user_id == user_id,
            Token.kind == kind,
            Token.used_at.is_(None),
            Token.revoked_at.is_(None),
        )
        .values(revoked_at=now, updated_at=now)
    )
