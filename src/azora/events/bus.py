"""The contract every event bus keeps (in-process, NATS JetStream, Redis Streams).

A bus carries :class:`~azora.events.envelope.Envelope` objects from the outbox relay to
durable, named consumers:

- :meth:`Bus.publish_many` returns only once the broker has stored every envelope
  (JetStream acknowledgement, ``XADD`` reply, in-process append); envelopes keep their
  order per subject. Publishing an id twice is harmless: brokers de-duplicate by event
  id where they can, and consumers are idempotent by id anyway.
- :meth:`Bus.subscribe` yields :class:`Delivery` objects for one durable consumer name
  and one subject pattern (``finance.*``, ``finance.>``, exact names; NATS semantics).
  Two subscriptions with the same consumer name share the work (each delivery goes to
  one of them); a delivery that is not acknowledged comes back (at least once).
- :meth:`Bus.tap` is the live, fan-out view the Socket.IO gateway needs: every tap sees
  every matching envelope stored after it was opened, in order per subject, with no
  acknowledgement and no history. Each gateway process opens one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from azora.events.envelope import Envelope


@dataclass(frozen=True)
class Delivery:
    """One envelope handed to a consumer; settle it with ``ack`` or ``nak``."""

    envelope: Envelope
    #: How many times this envelope has been delivered to this consumer (1 = first).
    attempt: int
    #: Done with it: it is not delivered to this consumer again.
    ack: Callable[[], Awaitable[None]]
    #: Not done: deliver it again after ``delay`` seconds.
    nak: Callable[[float], Awaitable[None]]


class Tap(Protocol):
    """A live view of the bus (see :meth:`Bus.tap`); iterate it, then close it."""

    def __aiter__(self) -> AsyncIterator[Envelope]:
        """The envelopes in the order the tap received them; ends when it is closed.

        Raises:
            BusUnavailable: the broker went away for good (the tap is closed).
        """
        ...

    async def aclose(self) -> None:
        """Stop receiving; iteration ends."""
        ...


class Bus(Protocol):
    """What the relay, the consumers and the gateway need of a broker."""

    async def publish_many(self, envelopes: Sequence[Envelope]) -> None:
        """Store ``envelopes`` durably, in order; returns once the broker has them all.

        Raises:
            BusUnavailable: the broker cannot be reached or refused them (none, some or
                all may be stored: the caller publishes them again).
        """
        ...

    def subscribe(self, consumer: str, pattern: str) -> AsyncIterator[Delivery]:
        """Deliveries of the envelopes matching ``pattern`` to the durable ``consumer``.

        An async generator: the consumer is created (or joined) when iteration starts. A
        new consumer name starts at the oldest event the broker keeps; a name is bound to
        the pattern it was first used with. A delivery not settled within the bus's ack
        wait comes back with ``attempt`` one higher; what a subscription took and did not
        settle goes to the next subscriber of the name when it is closed (use
        ``contextlib.aclosing``).

        Raises:
            InvalidInput: a malformed consumer name or pattern, or the name is bound to
                another pattern.
            BusUnavailable: the broker cannot be reached.
        """
        ...

    async def tap(self, pattern: str) -> Tap:
        """A live view of the envelopes matching ``pattern``, from the moment this returns.

        Once it has returned, every envelope the bus stores afterwards and that matches
        is delivered to the tap, in order per subject; earlier ones never are. A tap is
        not durable and needs no acknowledgement. An envelope may, rarely, come twice
        (published again outside the broker's de-duplication window): readers that must
        not repeat themselves keep the ids they have seen.

        Raises:
            InvalidPattern: a malformed pattern.
            BusUnavailable: the broker cannot be reached.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; pending subscriptions and taps end."""
        ...
