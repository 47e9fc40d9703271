"""Sessions and their rotating refresh tokens: open, refresh, revoke, list.

A session is one signed-in device. It has an opaque token of its own (for cookie-based
clients), a family of refresh tokens (``tokens.family_id`` = the session id) and any
number of short-lived access tokens (JWTs naming the session in ``sid``). Only hashes
of the opaque tokens are stored. Expiry slides: each use moves ``expires_at`` to
``idle TTL`` from now, never past ``max age`` after sign-in.

Refresh tokens rotate on every use. Presenting one that was already exchanged means two
parties hold it (the client and a thief): the whole family and the session are revoked
and the event is audited (``auth.refresh.reuse_detected``).

Every change of a session's state invalidates its cache key (:func:`session_key`) once
the change committed, so :mod:`azora.auth.principals` refuses a revoked session at once.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update

from azora.auth import onetime
from azora.auth.context import AuthContext, Client
from azora.auth.errors import RefreshTokenReused, SessionRevoked
from azora.auth.models import Role, Session, Token, TokenKind, User
from azora.auth.opaque import new_token, token_hash
from azora.auth.schemas import SessionView, SignIn
from azora.cache import CacheKey, KeySpace
from azora.db.uow import UnitOfWork

SESSIONS = KeySpace("auth.session", version=1)


def session_key(user_id: uuid.UUID, session_id: uuid.UUID) -> CacheKey:
    """The cache key of a session's state (scoped to its user)."""
    return SESSIONS.user_key(user_id, session_id)


def slid_expiry(ctx: AuthContext, created_at: dt.datetime, now: dt.datetime) -> dt.datetime:
    """A session's expiry after a use at ``now``: the idle TTL from now, capped by the
    maximum age counted from ``created_at``."""
    return min(now + ctx.config.session_idle_ttl, created_at + ctx.config.session_max_age)


def open_session(
    ctx: AuthContext, uow: UnitOfWork, user_id: uuid.UUID, role: Role, client: Client
) -> SignIn:
    """Add a session for ``user_id`` with its first refresh token; the tokens to hand out."""
    now = ctx.now()
    session_token = new_token()
    session = Session(
        user_id=user_id,
        token_hash=token_hash(session_token),
        ip=client.ip,
        user_agent=client.user_agent,
        expires_at=slid_expiry(ctx, now, now),
        last_seen_at=now,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(session)
    signed = _tokens(ctx, uow, user_id, role, session.id, session.expires_at)
    return signed.model_copy(update={"session_token": session_token})


def _tokens(
    ctx: AuthContext,
    uow: UnitOfWork,
    user_id: uuid.UUID,
    role: Role,
    session_id: uuid.UUID,
    expires_at: dt.datetime,
) -> SignIn:
    now = ctx.now()
    refresh = onetime.issue(
        uow.session,
        user_id,
        TokenKind.REFRESH,
        now=now,
        expires_at=expires_at,
        family_id=session_id,
    )
    access, access_expires = ctx.access.issue(
        user_id=user_id,
        session_id=session_id,
        role=role,
        now=now,
        ttl=ctx.config.access_token_ttl,
    )
    return SignIn(
        user_id=user_id,
        session_id=session_id,
        role=role,
        access_token=access,
        access_expires_at=access_expires,
        refresh_token=refresh,
        refresh_expires_at=expires_at,
    )


async def refresh(ctx: AuthContext, refresh_token: str, client: Client) -> SignIn:
    """Exchange ``refresh_token`` for a new access token and a new refresh token.

    Raises:
        RefreshTokenReused: the token was already exchanged; its family and session are
            now revoked (that revocation and its audit record are committed).
        TokenExpired: the token's time is up.
        SessionRevoked: its session was signed out, revoked or expired.
        InvalidToken: unknown token.
    """
    now = ctx.now()
    digest = token_hash(refresh_token)
    reused: RefreshTokenReused | None = None
    async with ctx.as_service() as uow:
        result = await uow.session.execute(
            update(Token)
            .where(
                Token.token_hash == digest,
                Token.kind == TokenKind.REFRESH,
                Token.used_at.is_(None),
                Token.revoked_at.is_(None),
                Token.expires_at > now,
            )
            .values(used_at=now, updated_at=now)
            .returning(Token.user_id, Token.family_id)
        )
        row = result.first()
        if row is None:
            found = await onetime.lookup(uow.session, refresh_token, TokenKind.REFRESH)
            if found is None or found.used_at is None or found.family_id is None:
                onetime.refuse(found, TokenKind.REFRESH, now=now)  # nothing written
            family = found.family_id
            await revoke_family(uow, found.user_id, family, now=now)
            uow.audit(
                client.audit(
                    "auth.refresh.reuse_detected",
                    user_id=found.user_id,
                    resource="session",
                    resource_id=family,
                )
            )
            reused = RefreshTokenReused(
                "this refresh token was already used: the session is revoked",
                hint="sign in again",
            )
        else:
            user_id, session_id = row
            assert session_id is not None
            signed = await _rotate(ctx, uow, user_id, session_id, now)
            uow.audit(
                client.audit(
                    "auth.token.refreshed",
                    user_id=user_id,
                    resource="session",
                    resource_id=session_id,
                )
            )
    if reused is not None:
        raise reused
    return signed


async def _rotate(
    ctx: AuthContext, uow: UnitOfWork, user_id: uuid.UUID, session_id: uuid.UUID, now: dt.datetime
) -> SignIn:
    found = (
        await uow.session.execute(
            select(Session, User.role)
            .join(User, User.id == Session.user_id)
            .where(
                Session.id == session_id,
                Session.user_id == user_id,
                User.is_active.is_(True),
                User.deleted_at.is_(None),
            )
        )
    ).first()
    if found is None or found[0].revoked_at is not None or found[0].expires_at <= now:
        raise SessionRevoked("the refresh token's session was signed out or has expired")
    session, role = found
    session.expires_at = slid_expiry(ctx, session.created_at, now)
    session.last_seen_at = now
    uow.invalidate(session_key(user_id, session_id))
    return _tokens(ctx, uow, user_id, role, session_id, session.expires_at)


async def revoke_family(
    uow: UnitOfWork, user_id: uuid.UUID, session_id: uuid.UUID, *, now: dt.datetime
) -> bool:
    """Revoke a session and its refresh tokens; True if the session was active."""
    await uow.session.execute(
        update(Token)
        .where(Token.user_id == user_id, Token.family_id == session_id, Token.revoked_at.is_(None))
        .values(revoked_at=now, updated_at=now)
    )
    result = await uow.session.execute(
        update(Session)
        .where(Session.id == session_id, Session.user_id == user_id, Session.revoked_at.is_(None))
        .values(revoked_at=now, updated_at=now)
        .returning(Session.id)
    )
    uow.invalidate(session_key(user_id, session_id))
    return result.first() is not None


async def revoke_all_in(
    uow: UnitOfWork, user_id: uuid.UUID, *, now: dt.datetime, keep: uuid.UUID | None = None
) -> int:
    """Revoke every active session of ``user_id`` but ``keep``, with their refresh tokens;
    how many sessions were revoked."""
    sessions = update(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
    tokens = update(Token).where(
        Token.user_id == user_id, Token.kind == TokenKind.REFRESH, Token.revoked_at.is_(None)
    )
    if keep is not None:
        sessions = sessions.where(Session.id != keep)
        tokens = tokens.where(Token.family_id != keep)
    result = await uow.session.execute(
        sessions.values(revoked_at=now, updated_at=now).returning(Session.id)
    )
    revoked = list(result.scalars())
    await uow.session.execute(tokens.values(revoked_at=now, updated_at=now))
    uow.invalidate(*(session_key(user_id, s) for s in revoked))
    return len(revoked)


async def revoke(
    ctx: AuthContext, user_id: uuid.UUID, session_id: uuid.UUID, client: Client
) -> None:
    """Sign one of the user's own sessions out (nothing happens if it already was).

    Raises:
        SessionRevoked: the user has no such session.
    """
    now = ctx.now()
    async with ctx.for_user(user_id) as uow:
        owned = await uow.session.scalar(
            select(Session.id).where(Session.id == session_id, Session.user_id == user_id)
        )
        if owned is None:
            raise SessionRevoked("no such session")
        if await revoke_family(uow, user_id, session_id, now=now):
            uow.audit(
                client.audit(
                    "auth.session.revoked",
                    user_id=user_id,
                    resource="session",
                    resource_id=session_id,
                )
            )


async def revoke_all(ctx: AuthContext, user_id: uuid.UUID, client: Client) -> int:
    """Sign the user out everywhere; the number of sessions revoked."""
    async with ctx.for_user(user_id) as uow:
        count = await revoke_all_in(uow, user_id, now=ctx.now())
        uow.audit(client.audit("auth.session.revoked_all", user_id=user_id, sessions=count))
    return count


async def active_sessions(ctx: AuthContext, user_id: uuid.UUID) -> list[SessionView]:
    """The user's sessions that are neither revoked nor expired, newest first."""
    async with ctx.for_user(user_id) as uow:
        rows = await uow.session.scalars(
            select(Session)
            .where(
                Session.user_id == user_id,
                Session.revoked_at.is_(None),
                Session.expires_at > ctx.now(),
            )
            .order_by(Session.created_at.desc(), Session.id.desc())
        )
        return [SessionView.model_validate(row) for row in rows]
