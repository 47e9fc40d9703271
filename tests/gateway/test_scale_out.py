"""Several gateway processes behind one NATS JetStream bus each serve their own clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest

from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.events.buses import NatsBus
from azora.gateway.server import Gateway
from tests.gateway.conftest import Recorder, User, envelope, serving

Connect = Callable[..., Awaitable[Recorder]]
NewUser = Callable[[], Awaitable[User]]


@pytest.fixture
async def buses(nats_url: str) -> AsyncIterator[Callable[[], NatsBus]]:
    """Makes NatsBus objects (one per "process") on one stream of this test's own."""
    tag = uuid.uuid4().hex[:12]
    made: list[NatsBus] = []

    def make() -> NatsBus:
        bus = NatsBus(
            nats_url, stream=f"AZORA_GW_{tag}", subject_prefix=f"azoragw.{tag}", max_age=60
        )
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.aclose()
    client = await nats.connect(nats_url)
    try:
        await client.jetstream().delete_stream(f"AZORA_GW_{tag}")
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await client.close()


async def test_each_gateway_delivers_to_its_own_clients(
    databases: Databases,
    auth: AuthService,
    buses: Callable[[], NatsBus],
    connect: Connect,
    new_user: NewUser,
) -> None:
    ama, kofi = await new_user(), await new_user()
    publisher = buses()
    settings = databases.settings
    async with (
        serving(Gateway(databases, buses(), auth, settings)) as first,
        serving(Gateway(databases, buses(), auth, settings)) as second,
    ):
        on_first = await connect(first, {"token": ama.token, "subscribe": ["system.>"]})
        on_second = await connect(second, {"token": kofi.token, "subscribe": ["system.>"]})
        ama_again = await connect(second, {"token": ama.token})  # Ama on both
        events = [envelope(ama.id), envelope(kofi.id), envelope(None), envelope(ama.id)]
        await publisher.publish_many(events)
        await on_first.wait_for(lambda: len(on_first.envelopes()) == 3)
        await on_second.wait_for(lambda: len(on_second.envelopes()) == 2)
        await ama_again.wait_for(lambda: len(ama_again.envelopes()) == 2)
    assert on_first.ids() == [str(e.id) for e in (events[0], events[2], events[3])]
    assert on_second.ids() == [str(e.id) for e in (events[1], events[2])]
    assert ama_again.ids() == [str(e.id) for e in (events[0], events[3])]
