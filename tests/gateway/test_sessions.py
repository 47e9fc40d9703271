"""A connection lives as long as its token and session: expired or revoked ones are ended,
and a fresher token of the same user keeps a connection open."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable

from azora.auth.config import AuthConfig
from azora.auth.passwords import Passwords
from azora.auth.service import AuthService
from azora.cache import Cache
from azora.db.engines import Databases
from azora.events.buses import MemoryBus
from azora.gateway.server import Gateway
from tests.gateway.conftest import FAST, Recorder, User, serving

Connect = Callable[..., Awaitable[Recorder]]
NewUser = Callable[[], Awaitable[User]]
PASSWORD = "a long enough passphrase"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def test_a_revoked_session_ends_its_connections_only(
    databases: Databases, auth: AuthService, connect: Connect, new_user: NewUser
) -> None:
    gateway = Gateway(databases, MemoryBus(), auth, databases.settings)
    ama, kofi = await new_user(), await new_user()
    async with serving(gateway) as url:
        ama_socket = await connect(url, {"token": ama.token})
        kofi_socket = await connect(url, {"token": kofi.token})
        assert await gateway.reverify() == 0
        await auth.revoke_all_sessions(ama.id)
        assert await gateway.reverify() == 1
        await ama_socket.wait_for(lambda: bool(ama_socket.named("session_ended")))
        assert ama_socket.named("session_ended")[0]["reason"] == "session_revoked"
        assert [c.user_id for c in gateway.hub.connections.values()] == [kofi.id]
        assert kofi_socket.client.connected


async def test_an_expired_token_ends_the_connection_unless_a_fresher_one_was_sent(
    databases: Databases, cache: Cache, connect: Connect
) -> None:
    clock = Clock()
    config = AuthConfig.from_settings(databases.settings, clock=clock)
    auth = AuthService(databases, cache=cache, config=config, passwords=Passwords(FAST))
    gateway = Gateway(databases, MemoryBus(), auth, databases.settings)
    emails = [f"gw-{uuid.uuid4().hex[:10]}@example.org" for _ in range(3)]
    for email in emails:
        await auth.register(email, PASSWORD, "Esi Owusu")
    signed = [await auth.login(email, PASSWORD, "127.0.0.1", "pytest") for email in emails]
    async with serving(gateway) as url:
        stale, kept, other = [await connect(url, {"token": s.access_token}) for s in signed]
        clock.now += config.access_token_ttl - dt.timedelta(seconds=5)
        fresher = await auth.login(emails[1], PASSWORD, "127.0.0.1", "pytest")
        answer = await kept.client.call("authenticate", {"token": fresher.access_token})
        assert answer["ok"] is True
        # Another user's token never moves a connection to that user.
        refused = await other.client.call("authenticate", {"token": fresher.access_token})
        assert refused["error"]["code"] == "forbidden"
        clock.now += dt.timedelta(seconds=10)  # the first tokens have expired
        assert await gateway.reverify() == 2
        await stale.wait_for(lambda: bool(stale.named("session_ended")))
        assert stale.named("session_ended")[0]["reason"] == "token_expired"
        assert [c.user_id for c in gateway.hub.connections.values()] == [signed[1].user_id]
