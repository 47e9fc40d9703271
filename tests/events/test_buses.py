"""The bus contract, run against the in-process bus, NATS JetStream and Redis Streams.

Each test gets a bus of its own: a fresh in-process bus, a JetStream stream and subject
prefix unique to the test (deleted afterwards), or a Redis key prefix unique to the test
(its keys deleted afterwards). Acknowledgement waits and polls are short so the suite
stays fast.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

import nats
import pytest
import redis.asyncio as aioredis

from azora.errors import ConfigurationError, InvalidInput
from azora.events import Envelope
from azora.events.bus import Bus, Delivery
from azora.events.buses import MemoryBus, NatsBus, RedisStreamsBus, open_bus
from azora.events.errors import BusUnavailable
from tests.servers import free_port

ACK_WAIT = 1.0
POLL = 0.1
WAIT = 5.0  # longest a test waits for a delivery that should come


def event(event_type: str = "finance.transaction.completed", n: int = 0) -> Envelope:
    return Envelope(
        type=event_type, source="mint", payload={"n": n}, occurred_at=dt.datetime.now(dt.UTC)
    )


async def _delete_stream(url: str, stream: str) -> None:
    client = await nats.connect(url)
    try:
        await client.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass  # the test never used the bus
    finally:
        await client.close()


async def _delete_keys(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "nats", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """A bus of this test alone, on each backend."""
    tag = uuid.uuid4().hex[:12]
    if request.param == "memory":
        memory = MemoryBus(ack_wait=ACK_WAIT)
        yield memory
        await memory.aclose()
    elif request.param == "nats":
        url: str = request.getfixturevalue("nats_url")
        stream = f"AZORA_TEST_{tag}"
        jetstream = NatsBus(
            url,
            stream=stream,
            subject_prefix=f"azoratest.{tag}",
            max_age=60,
            ack_wait=ACK_WAIT,
            fetch_timeout=POLL,
            batch=4,
            timeout=2.0,
        )
        try:
            yield jetstream
        finally:
            await jetstream.aclose()
            await _delete_stream(url, stream)
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"azoratest:{tag}:"
        streams = RedisStreamsBus(
            url, key_prefix=prefix, ack_wait=ACK_WAIT, block=POLL, batch=4, timeout=2.0
        )
        try:
            yield streams
        finally:
            await streams.aclose()
            await _delete_keys(url, prefix)


async def take(deliveries: AsyncIterator[Delivery], count: int) -> list[Delivery]:
    """The next ``count`` deliveries, failing after WAIT seconds without one."""
    return [await asyncio.wait_for(anext(deliveries), WAIT) for _ in range(count)]


async def nothing_more(deliveries: AsyncIterator[Delivery], within: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(deliveries), within)


def ids(items: Sequence[Envelope | Delivery]) -> list[uuid.UUID]:
    return [item.envelope.id if isinstance(item, Delivery) else item.id for item in items]


async def test_published_events_are_delivered_in_order(bus: Bus) -> None:
    published = [event(n=n) for n in range(6)]
    await bus.publish_many(published[:3])
    await bus.publish_many(published[3:])
    async with aclosing(bus.subscribe("ledger", "finance.>")) as deliveries:
        received = await take(deliveries, 6)
        for delivery in received:
            await delivery.ack()
    assert ids(received) == ids(published)
    assert [d.envelope for d in received] == published
    assert {d.attempt for d in received} == {1}


async def test_an_event_published_after_subscribing_is_delivered(bus: Bus) -> None:
    async with aclosing(bus.subscribe("ledger", "finance.>")) as deliveries:
        first = asyncio.ensure_future(anext(deliveries))
        await asyncio.sleep(0.2)
        later = event()
        await bus.publish_many([later])
        delivery = await asyncio.wait_for(first, WAIT)
        await delivery.ack()
    assert delivery.envelope == later


TYPES = [
    "finance.transaction.completed",
    "finance.stake.created",
    "education.course.completed",
    "finance.transaction.failed",
    "finance.alert",
    "notification.created",
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("finance.*", ["finance.alert"]),
        (
            "finance.>",
            [
                "finance.transaction.completed",
                "finance.stake.created",
                "finance.transaction.failed",
                "finance.alert",
            ],
        ),
        ("finance.transaction.*", ["finance.transaction.completed", "finance.transaction.failed"]),
        ("finance.stake.created", ["finance.stake.created"]),
        ("*.course.completed", ["education.course.completed"]),
    ],
)
async def test_a_pattern_selects_its_events_only(
    bus: Bus, pattern: str, expected: list[str]
) -> None:
    await bus.publish_many([event(event_type) for event_type in TYPES])
    async with aclosing(bus.subscribe("selective", pattern)) as deliveries:
        received = await take(deliveries, len(expected))
        for delivery in received:
            await delivery.ack()
        await nothing_more(deliveries)
    assert [d.envelope.type for d in received] == expected


async def test_subscribers_of_one_consumer_share_the_work_without_duplicates(bus: Bus) -> None:
    published = [event(n=n) for n in range(20)]
    await bus.publish_many(published)
    seen: list[list[uuid.UUID]] = [[], []]
    done = asyncio.Event()

    async def work(mine: list[uuid.UUID]) -> None:
        async with aclosing(bus.subscribe("workers", "finance.>")) as deliveries:
            async for delivery in deliveries:
                mine.append(delivery.envelope.id)
                await delivery.ack()
                if sum(map(len, seen)) >= len(published):
                    done.set()
                await asyncio.sleep(0.01)  # work takes time: the other subscriber gets a turn

    workers = [asyncio.create_task(work(mine)) for mine in seen]
    try:
        await asyncio.wait_for(done.wait(), WAIT)
        await asyncio.sleep(0.3)  # time for a duplicate to show up, if there were one
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    everything = seen[0] + seen[1]
    assert sorted(everything) == sorted(ids(published))
    assert all(seen), "both subscribers got a share"


async def test_a_nakd_delivery_comes_back_as_attempt_two(bus: Bus) -> None:
    published = event()
    await bus.publish_many([published])
    async with aclosing(bus.subscribe("retrying", "finance.>")) as deliveries:
        [first] = await take(deliveries, 1)
        started = time.monotonic()
        await first.nak(0.2)
        [second] = await take(deliveries, 1)
        waited = time.monotonic() - started
        await second.ack()
        await nothing_more(deliveries, within=ACK_WAIT + 0.5)
    assert (first.envelope, first.attempt) == (published, 1)
    assert second.envelope == published
    # 2, or more on NATS when a redelivery went to a pull that timed out on a loaded
    # machine (the broker counts it; the subscriber never saw it).
    assert second.attempt >= 2
    assert waited >= 0.15


async def test_an_unacked_delivery_goes_to_the_next_subscriber_of_the_name(bus: Bus) -> None:
    published = event()
    await bus.publish_many([published])
    async with aclosing(bus.subscribe("handover", "finance.>")) as deliveries:
        [abandoned] = await take(deliveries, 1)
    async with aclosing(bus.subscribe("handover", "finance.>")) as deliveries:
        [taken_over] = await take(deliveries, 1)
        await taken_over.ack()
    assert (abandoned.envelope, abandoned.attempt) == (published, 1)
    assert (taken_over.envelope, taken_over.attempt) == (published, 2)


async def test_an_unsettled_delivery_comes_back_after_the_ack_wait(bus: Bus) -> None:
    published = event()
    await bus.publish_many([published])
    async with aclosing(bus.subscribe("forgetful", "finance.>")) as deliveries:
        [forgotten] = await take(deliveries, 1)
        [again] = await take(deliveries, 1)
        await again.ack()
    assert (forgotten.attempt, again.attempt) == (1, 2)
    assert again.envelope == published


async def test_each_consumer_name_gets_every_event(bus: Bus) -> None:
    published = [event(n=n) for n in range(3)]
    await bus.publish_many(published)
    received = {}
    for name in ("notifications", "analytics"):
        async with aclosing(bus.subscribe(name, "finance.>")) as deliveries:
            received[name] = await take(deliveries, 3)
            for delivery in received[name]:
                await delivery.ack()
    assert ids(received["notifications"]) == ids(received["analytics"]) == ids(published)


async def test_an_acked_event_is_not_delivered_again_to_that_name(bus: Bus) -> None:
    await bus.publish_many([event()])
    async with aclosing(bus.subscribe("once", "finance.>")) as deliveries:
        [delivery] = await take(deliveries, 1)
        await delivery.ack()
    later = event(n=1)
    await bus.publish_many([later])
    async with aclosing(bus.subscribe("once", "finance.>")) as deliveries:
        [next_one] = await take(deliveries, 1)
        await next_one.ack()
        await nothing_more(deliveries)
    assert next_one.envelope == later


async def test_an_event_published_twice_is_delivered_once(bus: Bus) -> None:
    twice, other = event(), event(n=1)
    await bus.publish_many([twice])
    await bus.publish_many([twice, other])
    async with aclosing(bus.subscribe("dedupe", "finance.>")) as deliveries:
        received = await take(deliveries, 2)
        for delivery in received:
            await delivery.ack()
        await nothing_more(deliveries)
    assert ids(received) == [twice.id, other.id]


async def test_a_consumer_name_is_bound_to_one_pattern(bus: Bus) -> None:
    await bus.publish_many([event()])
    async with aclosing(bus.subscribe("bound", "finance.>")) as deliveries:
        [delivery] = await take(deliveries, 1)
        await delivery.ack()
    with pytest.raises(InvalidInput, match="already subscribes"):
        async with aclosing(bus.subscribe("bound", "education.>")) as deliveries:
            await asyncio.wait_for(anext(deliveries), WAIT)


@pytest.mark.parametrize("name", ["", "has.dot", "has space", "x" * 65, "wild*"])
async def test_a_malformed_consumer_name_is_refused(bus: Bus, name: str) -> None:
    with pytest.raises(InvalidInput):
        async with aclosing(bus.subscribe(name, "finance.>")) as deliveries:
            await asyncio.wait_for(anext(deliveries), WAIT)


@pytest.mark.parametrize("kind", ["nats", "redis"])
async def test_publishing_to_an_unreachable_broker_raises_bus_unavailable_quickly(
    kind: str,
) -> None:
    port = free_port()
    unreachable: Bus = (
        NatsBus(f"nats://127.0.0.1:{port}", timeout=1.0)
        if kind == "nats"
        else RedisStreamsBus(f"redis://127.0.0.1:{port}/0", timeout=1.0)
    )
    started = time.monotonic()
    try:
        with pytest.raises(BusUnavailable):
            await unreachable.publish_many([event()])
    finally:
        await unreachable.aclose()
    assert time.monotonic() - started < 2.0


async def test_a_closed_memory_bus_refuses_to_publish() -> None:
    closed = MemoryBus()
    await closed.aclose()
    with pytest.raises(BusUnavailable):
        await closed.publish_many([event()])


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", MemoryBus),
        ("nats://127.0.0.1:4222", NatsBus),
        ("redis://127.0.0.1:6379/0", RedisStreamsBus),
    ],
)
async def test_open_bus_picks_the_bus_by_url_scheme(url: str, kind: type) -> None:
    opened = open_bus(url)  # nothing connects until it is used
    try:
        assert isinstance(opened, kind)
    finally:
        await opened.aclose()


def test_open_bus_refuses_an_unknown_scheme() -> None:
    with pytest.raises(ConfigurationError, match="kafka"):
        open_bus("kafka://127.0.0.1:9092")


# -- taps: the live fan-out view the gateway reads -------------------------------------


async def tapped(tap: AsyncIterator[Envelope], count: int) -> list[Envelope]:
    """The next ``count`` envelopes of a tap, failing after WAIT seconds without one."""
    iterator = aiter(tap)
    return [await asyncio.wait_for(anext(iterator), WAIT) for _ in range(count)]


async def test_a_tap_sees_what_is_published_after_it_opened_and_nothing_before(bus: Bus) -> None:
    before = event(n=0)
    await bus.publish_many([before])
    tap = await bus.tap(">")
    try:
        after = [event(n=n) for n in range(1, 5)]
        await bus.publish_many(after[:2])
        await bus.publish_many(after[2:])
        received = await tapped(tap, 4)
    finally:
        await tap.aclose()
    assert received == after


async def test_every_tap_sees_every_event_and_only_its_pattern(bus: Bus) -> None:
    everything, finance = await bus.tap(">"), await bus.tap("finance.*.completed")
    try:
        published = [event(t, n) for n, t in enumerate(TYPES)]
        await bus.publish_many(published)
        assert await tapped(everything, len(TYPES)) == published
        wanted = [e for e in published if e.type == "finance.transaction.completed"]
        assert await tapped(finance, len(wanted)) == wanted
        # The subscribers of durable names are not affected by taps, nor the reverse.
        async with aclosing(bus.subscribe("ledger", ">")) as deliveries:
            received = await take(deliveries, len(published))
            for delivery in received:
                await delivery.ack()
        assert ids(received) == ids(published)
    finally:
        await everything.aclose()
        await finance.aclose()


async def test_a_closed_tap_ends_its_iteration(bus: Bus) -> None:
    tap = await bus.tap(">")
    reading = asyncio.ensure_future(tapped(tap, 1))
    await asyncio.sleep(0.1)
    await tap.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reading, WAIT)


async def test_a_tap_refuses_a_malformed_pattern(bus: Bus) -> None:
    with pytest.raises(InvalidInput):
        await bus.tap("finance..>")
