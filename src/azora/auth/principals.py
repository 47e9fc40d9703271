"""Who a request speaks for: checking an access token or a session token.

:func:`verify_access_token` is the hot path of every API call: the JWT is verified
without the database (:mod:`azora.auth.access`), then its session's state is read
through the cache, where a hit needs no database either. Sessions invalidate that entry
whenever their state changes (:mod:`azora.auth.sessions`), so a revoked session is
refused at once. Without a cache the state is read from the database each time.
"""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.auth.context import AuthContext
from azora.auth.errors import InvalidToken, SessionRevoked
from azora.auth.models import Role, Session, User
from azora.auth.opaque import token_hash
from azora.auth.schemas import Principal
from azora.auth.sessions import session_key, slid_expiry


class SessionState(BaseModel):
    """What the access-token check needs to know about a session (cached)."""

    model_config = ConfigDict(frozen=True)

    revoked: bool
    expires_at: dt.datetime


async def _load_state(
    ctx: AuthContext, user_id: uuid.UUID, session_id: uuid.UUID
) -> SessionState | None:
    async with ctx.for_user(user_id) as uow:
        row = (
            await uow.session.execute(
                select(Session.revoked_at, Session.expires_at).where(
                    Session.id == session_id, Session.user_id == user_id
                )
            )
        ).first()
    if row is None:
        return None
    return SessionState(revoked=row.revoked_at is not None, expires_at=row.expires_at)


async def verify_access_token(ctx: AuthContext, token: str) -> Principal:
    """Who ``token`` speaks for, if it is genuine, unexpired and its session is active.

    With a cache, a session whose state is cached needs no database.

    Raises:
        TokenExpired: the access token is past its expiry (refresh it).
        SessionRevoked: its session was signed out, revoked or has expired.
        InvalidToken: anything else (signature, algorithm, key id, claims).
    """
    now = ctx.now()
    claims = ctx.access.verify(token, now=now)
    user_id, session_id = claims.user_id, claims.session_id
    if ctx.cache is None:
        state = await _load_state(ctx, user_id, session_id)
    else:
        state = await ctx.cache.get_or_load(
            session_key(user_id, session_id),
            lambda: _load_state(ctx, user_id, session_id),
            ttl=ctx.config.session_cache_ttl.total_seconds(),
            schema=SessionState,
        )
    if state is None or state.revoked:
        raise SessionRevoked("the session was signed out", hint="sign in again")
    if state.expires_at <= now:
        raise SessionRevoked("the session has expired", hint="sign in again")
    return Principal(
        user_id=user_id, session_id=session_id, role=claims.role, expires_at=claims.expires_at
    )


async def authenticate_session(ctx: AuthContext, session_token: str) -> Principal:
    """Who a session token (a cookie-based client's credential) speaks for.

    Slides the session's expiry (written at most once per ``touch_interval``).

    Raises:
        SessionRevoked: the session was signed out, revoked or has expired.
        InvalidToken: unknown token.
    """
    now = ctx.now()
    async with ctx.as_service() as uow:
        found = await _session_by_token(uow.session, session_token)
        if found is None:
            raise InvalidToken("the session token is not valid")
        session, role = found
        if session.revoked_at is not None or session.expires_at <= now:
            raise SessionRevoked("the session was signed out or has expired", hint="sign in again")
        last_seen = session.last_seen_at or session.created_at
        if now - last_seen >= ctx.config.touch_interval:
            session.last_seen_at = now
            session.expires_at = slid_expiry(ctx, session.created_at, now)
            uow.invalidate(session_key(session.user_id, session.id))
        principal = Principal(
            user_id=session.user_id, session_id=session.id, role=role, expires_at=session.expires_at
        )
    return principal


async def _session_by_token(session: AsyncSession, token: str) -> tuple[Session, Role] | None:
    row = (
        await session.execute(
            select(Session, User.role)
            .join(User, User.id == Session.user_id)
            .where(
                Session.token_hash == token_hash(token),
                User.is_active.is_(True),
                User.deleted_at.is_(None),
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])
