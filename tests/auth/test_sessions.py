"""Sessions: refresh rotation and reuse detection, revocation, listing, sliding expiry,
and the access-token check through the cache."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from azora.auth.errors import (
    InvalidToken,
    RefreshTokenReused,
    SessionRevoked,
    TokenExpired,
)
from azora.auth.models import Session, Token, TokenKind
from azora.auth.opaque import token_hash
from azora.auth.schemas import SignIn
from azora.auth.service import AuthService
from azora.cache import Cache
from azora.db.engines import Databases
from azora.types import ServiceName

from .conftest import AGENT, IP, PASSWORD, FakeClock, audit_rows, register


async def _signed_in(auth: AuthService) -> SignIn:
    registration = await register(auth)
    return await auth.login(registration.user.email, PASSWORD, IP, AGENT)


async def _tokens(databases: Databases, family: object) -> list[dict[str, object]]:
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        rows = await connection.execute(
            select(Token.token_hash, Token.used_at, Token.revoked_at)
            .where(Token.family_id == family, Token.kind == TokenKind.REFRESH)
            .order_by(Token.created_at, Token.id)
        )
        return [dict(row._mapping) for row in rows]


async def test_a_refresh_rotates_the_refresh_token(auth: AuthService, databases: Databases) -> None:
    signed = await _signed_in(auth)

    renewed = await auth.refresh(signed.refresh_token, ip=IP, user_agent=AGENT)

    assert renewed.session_id == signed.session_id
    assert renewed.refresh_token != signed.refresh_token
    assert renewed.access_token != signed.access_token
    assert renewed.session_token is None  # the session's own token is handed out once
    assert (await auth.verify_access_token(renewed.access_token)).session_id == signed.session_id
    old, new = await _tokens(databases, signed.session_id)
    assert old["token_hash"] == token_hash(signed.refresh_token)
    assert old["used_at"] is not None
    assert new["token_hash"] == token_hash(renewed.refresh_token)
    assert new["used_at"] is None
    again = await auth.refresh(renewed.refresh_token)
    assert again.refresh_token not in {signed.refresh_token, renewed.refresh_token}
    assert len(await audit_rows(databases, "auth.token.refreshed")) == 2


async def test_reusing_a_rotated_refresh_token_revokes_the_family_and_the_session(
    auth: AuthService, databases: Databases
) -> None:
    signed = await _signed_in(auth)
    renewed = await auth.refresh(signed.refresh_token)  # the client's legitimate use

    with pytest.raises(RefreshTokenReused):
        await auth.refresh(signed.refresh_token, ip="198.51.100.66", user_agent="thief")

    with pytest.raises(InvalidToken):  # the newest token of the family is dead too
        await auth.refresh(renewed.refresh_token)
    with pytest.raises(SessionRevoked):  # and the session, at once
        await auth.verify_access_token(renewed.access_token)
    assert all(t["revoked_at"] is not None for t in await _tokens(databases, signed.session_id))
    [audit] = await audit_rows(databases, "auth.refresh.reuse_detected")
    assert (audit["resource_id"], audit["ip"], audit["user_agent"]) == (
        str(signed.session_id),
        "198.51.100.66",
        "thief",
    )


async def test_unknown_and_expired_refresh_tokens_are_refused(
    auth: AuthService, clock: FakeClock
) -> None:
    signed = await _signed_in(auth)
    with pytest.raises(InvalidToken, match="not valid"):
        await auth.refresh("made-up")
    clock.advance(seconds=auth.config.session_idle_ttl.total_seconds() + 1)
    with pytest.raises(TokenExpired):
        await auth.refresh(signed.refresh_token)


async def test_an_expired_access_token_is_refused(auth: AuthService, clock: FakeClock) -> None:
    signed = await _signed_in(auth)
    clock.advance(seconds=auth.config.access_token_ttl.total_seconds())
    with pytest.raises(TokenExpired):
        await auth.verify_access_token(signed.access_token)
    renewed = await auth.refresh(signed.refresh_token)
    await auth.verify_access_token(renewed.access_token)


async def test_use_slides_the_session_expiry_up_to_its_maximum_age(
    auth: AuthService, clock: FakeClock
) -> None:
    signed = await _signed_in(auth)
    idle, max_age = auth.config.session_idle_ttl, auth.config.session_max_age
    token, started = signed.refresh_token, clock.now
    while clock.now + idle < started + max_age:
        clock.advance(seconds=idle.total_seconds() - 60)  # used just before it idles out
        renewed = await auth.refresh(token)
        token = renewed.refresh_token
        assert renewed.refresh_expires_at == min(clock.now + idle, started + max_age)
    clock.advance(seconds=(started + max_age - clock.now).total_seconds())
    with pytest.raises(InvalidToken):
        await auth.refresh(token)


async def test_a_revoked_session_is_refused_at_once_through_the_cache(
    auth: AuthService, databases: Databases, cache: Cache
) -> None:
    signed = await _signed_in(auth)
    await auth.verify_access_token(signed.access_token)  # the session's state is cached now
    statements: list[str] = []
    engine = databases.engine(ServiceName.AUTH).sync_engine

    def count(_conn: Connection, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            await auth.verify_access_token(signed.access_token)
        assert statements == []  # cache hits: no database at all
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert cache.metrics.hits >= 5

    await auth.revoke_session(signed.user_id, signed.session_id, ip=IP, user_agent=AGENT)

    with pytest.raises(SessionRevoked):
        await auth.verify_access_token(signed.access_token)
    with pytest.raises(InvalidToken):
        await auth.refresh(signed.refresh_token)
    assert len(await audit_rows(databases, "auth.session.revoked")) == 1


async def test_without_a_cache_the_check_reads_the_database(
    auth: AuthService, databases: Databases
) -> None:
    signed = await _signed_in(auth)
    uncached = AuthService(databases, config=auth.config)
    assert (await uncached.verify_access_token(signed.access_token)).user_id == signed.user_id
    await uncached.revoke_session(signed.user_id, signed.session_id)
    with pytest.raises(SessionRevoked):
        await uncached.verify_access_token(signed.access_token)


async def test_logging_out_everywhere_revokes_every_session(
    auth: AuthService, databases: Databases
) -> None:
    registration = await register(auth)
    email = registration.user.email
    first = await auth.login(email, PASSWORD, IP, "phone")
    second = await auth.login(email, PASSWORD, "198.51.100.1", "laptop")
    listed = await auth.list_sessions(registration.user.id)
    assert [s.id for s in listed] == [second.session_id, first.session_id]
    assert {(s.ip, s.user_agent) for s in listed} == {(IP, "phone"), ("198.51.100.1", "laptop")}
    for signed in (first, second):
        await auth.verify_access_token(signed.access_token)  # cached

    assert await auth.revoke_all_sessions(registration.user.id, ip=IP) == 2

    assert await auth.list_sessions(registration.user.id) == []
    for signed in (first, second):
        with pytest.raises(SessionRevoked):
            await auth.verify_access_token(signed.access_token)
        with pytest.raises(InvalidToken):
            await auth.refresh(signed.refresh_token)
    [audit] = await audit_rows(databases, "auth.session.revoked_all")
    assert audit["metadata"] == {"sessions": 2}


async def test_a_user_cannot_list_or_revoke_another_users_sessions(auth: AuthService) -> None:
    mine, theirs = await _signed_in(auth), await _signed_in(auth)
    assert [s.id for s in await auth.list_sessions(mine.user_id)] == [mine.session_id]
    with pytest.raises(SessionRevoked, match="no such session"):
        await auth.revoke_session(mine.user_id, theirs.session_id)
    await auth.verify_access_token(theirs.access_token)  # untouched


async def test_the_session_token_authenticates_and_slides(
    auth: AuthService, databases: Databases, clock: FakeClock
) -> None:
    signed = await _signed_in(auth)
    assert signed.session_token is not None
    clock.advance(minutes=5)

    principal = await auth.authenticate_session(signed.session_token)

    assert (principal.user_id, principal.session_id) == (signed.user_id, signed.session_id)
    assert principal.expires_at == clock.now + auth.config.session_idle_ttl
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        row = (
            await connection.execute(
                select(Session.last_seen_at, Session.token_hash).where(
                    Session.id == signed.session_id
                )
            )
        ).one()
    assert row.last_seen_at == clock.now
    assert row.token_hash == token_hash(signed.session_token)
    await auth.revoke_all_sessions(signed.user_id)
    with pytest.raises(SessionRevoked):
        await auth.authenticate_session(signed.session_token)
    with pytest.raises(InvalidToken):
        await auth.authenticate_session("made-up")
