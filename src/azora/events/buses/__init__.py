"""The event buses, chosen by ``AZORA_EVENTS_URL``: in-process, NATS JetStream, Redis Streams.

Each keeps the contract of :class:`azora.events.bus.Bus`; one test suite
(``tests/events/test_buses.py``) runs against all three.

Why plain nats-py and redis-py rather than FastStream: the bus *is* the part where
delivery guarantees live, so it needs explicit control of what a framework decides for
us: when a message is acknowledged or nak'd (and with which delay), the de-duplication
id of every publish, and how the stream, its retention and the durable consumers are
set up. FastStream would add a layer of handlers, routing and serialisation between us
and those decisions, and we would still reach under it for them. The two clients are
what it builds on anyway; fewer layers, fewer surprises.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from azora.errors import ConfigurationError
from azora.events.bus import Bus, Delivery
from azora.events.buses.jetstream import NatsBus
from azora.events.buses.memory import MemoryBus
from azora.events.buses.names import validate_consumer
from azora.events.buses.redis_streams import RedisStreamsBus

__all__ = [
    "Bus",
    "Delivery",
    "MemoryBus",
    "NatsBus",
    "RedisStreamsBus",
    "open_bus",
    "validate_consumer",
]


def open_bus(url: str) -> Bus:
    """The bus ``url`` names, with default settings; nothing connects until it is used.

    ``memory://`` is an in-process bus (per process: only for the embedded mode and
    tests), ``nats://host:4222`` NATS JetStream, ``redis://host:6379/0`` (or
    ``rediss://``) Redis Streams.

    Raises:
        ConfigurationError: the scheme is none of these.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryBus()
    if scheme in {"nats", "tls"}:
        return NatsBus(url)
    if scheme in {"redis", "rediss", "unix"}:
        return RedisStreamsBus(url)
    raise ConfigurationError(
        f"unknown event bus URL scheme {scheme!r} in AZORA_EVENTS_URL",
        hint="use memory://, nats://host:4222 or redis://host:6379/0",
    )
