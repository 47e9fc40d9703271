"""The NATS JetStream bus (``nats://…``).

One stream (``AZORA_EVENTS`` by default) on file storage holds every event under
``azora.events.<type>`` for ``max_age`` seconds (limits retention, so history can be
replayed whatever the consumers have acknowledged). Opening the bus creates the stream or
brings its configuration up to date. Publishing sends each envelope with
``Nats-Msg-Id`` = its event id, so JetStream drops a copy published again within
``duplicate_window``, and waits for every PubAck. A consumer name is a durable pull
consumer filtered on ``azora.events.<pattern>`` with explicit acks; ``num_delivered``
becomes the delivery's ``attempt``. A tap is an ordered push consumer (ephemeral, no
acknowledgements, delivering new messages only): the client library recreates it from the
last stream sequence it saw after a gap or a reconnection, so a tap neither misses nor
repeats what the stream stored, and JetStream's de-duplication applies to it too.

The connection is made on first use, not when the object is built, and nats-py keeps
reconnecting after a drop; while the server is away publishing raises BusUnavailable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from azora.errors import InvalidInput
from azora.events.bus import Delivery
from azora.events.buses.names import validate_consumer
from azora.events.buses.tap import QueueTap
from azora.events.envelope import Envelope
from azora.events.errors import BusUnavailable
from azora.events.patterns import validate_pattern

log = logging.getLogger(__name__)

#: What a lost or refused connection looks like from nats-py.
_FAILURES = (nats.errors.Error, OSError, TimeoutError)


#: How many stream sequences a subscription remembers to drop stale copies of a delivery.
_REMEMBERED = 10_000


def _first_copy(handed: OrderedDict[int, int], message: Msg) -> bool:
    """False for a copy of a delivery this subscription already handed out.

    A pull that timed out on the client can still be answered by the server; its
    messages then arrive with a later pull, possibly after the same delivery came back
    (nak'd or past its ack wait). Such a stale copy carries a delivery count not above
    one already handed out, and is dropped: the delivery it belongs to was settled or
    is in flight.
    """
    sequence, attempt = message.metadata.sequence.stream, message.metadata.num_delivered
    if handed.get(sequence, 0) >= attempt:
        return False
    handed[sequence] = attempt
    handed.move_to_end(sequence)
    if len(handed) > _REMEMBERED:
        handed.popitem(last=False)
    return True


async def _log_error(error: Exception) -> None:
    # nats-py reports every failed (re)connection attempt here; it keeps retrying.
    log.warning("NATS connection error: %s", error)


class NatsBus:
    """A :class:`~azora.events.bus.Bus` over NATS JetStream.

    ``stream`` and ``subject_prefix`` name the stream and its subjects (tests use their
    own so they can delete them); ``max_age`` and ``duplicate_window`` are in seconds;
    ``ack_wait`` is how long a delivery may stay unsettled before it is redelivered;
    ``fetch_timeout`` bounds one pull (and so how soon a closed bus ends a subscription);
    ``batch`` is how many messages one pull may bring; ``timeout`` bounds connecting and
    each publish.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "AZORA_EVENTS",
        subject_prefix: str = "azora.events",
        max_age: float = 7 * 86_400,
        duplicate_window: float = 120.0,
        ack_wait: float = 30.0,
        fetch_timeout: float = 1.0,
        batch: int = 16,
        timeout: float = 5.0,
    ) -> None:
        self._url = url
        self._stream = stream
        self._prefix = subject_prefix
        self._max_age = max_age
        self._duplicate_window = min(duplicate_window, max_age)  # JetStream insists
        self._ack_wait = ack_wait
        self._fetch_timeout = fetch_timeout
        self._batch = batch
        self._timeout = timeout
        self._client: Client | None = None
        self._context: JetStreamContext | None = None
        self._lock = asyncio.Lock()
        self._taps: set[QueueTap] = set()
        self._closed = False

    def subject(self, event_type: str) -> str:
        """The NATS subject an event type (or pattern) is published (or filtered) under."""
        return f"{self._prefix}.{event_type}"

    async def _jetstream(self) -> JetStreamContext:
        """The JetStream context, connecting and setting up the stream on first use.

        Raises:
            BusUnavailable: the server cannot be reached within ``timeout``, or refused
                the stream configuration.
        """
        async with self._lock:
            if self._closed:
                raise BusUnavailable("the NATS event bus is closed")
            if self._context is not None and self._client and not self._client.is_closed:
                return self._context
            try:
                # nats-py retries an unreachable server forever; the deadline is ours.
                client = await asyncio.wait_for(
                    nats.connect(
                        self._url,
                        connect_timeout=self._timeout,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=1,
                        error_cb=_log_error,
                    ),
                    self._timeout,
                )
            except _FAILURES as exc:
                raise BusUnavailable(f"NATS at {self._url} is unreachable: {exc}") from exc
            context = client.jetstream(timeout=self._timeout)
            try:
                await self._ensure_stream(context)
            except _FAILURES as exc:
                await client.close()
                raise BusUnavailable(f"NATS refused stream {self._stream}: {exc}") from exc
            self._client, self._context = client, context
            return context

    async def _ensure_stream(self, context: JetStreamContext) -> None:
        config = StreamConfig(
            name=self._stream,
            subjects=[f"{self._prefix}.>"],
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            max_age=self._max_age,
            duplicate_window=self._duplicate_window,
        )
        try:
            await context.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            await context.add_stream(config)
        else:
            await context.update_stream(config)

    async def publish_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish in order and wait for every PubAck (duplicates are acknowledged too).

        Raises:
            BusUnavailable: no connection, a timeout, or JetStream refused a message.
        """
        if not envelopes:
            return
        context = await self._jetstream()
        acks: list[asyncio.Future[PubAck]] = []
        try:
            for envelope in envelopes:
                # One connection writes them in call order; the acks come back as they may.
                ack = await context.publish_async(
                    self.subject(envelope.type),
                    envelope.model_dump_json().encode(),
                    stream=self._stream,
                    headers={"Nats-Msg-Id": str(envelope.id)},
                )
                acks.append(ack)
            await asyncio.wait_for(asyncio.gather(*acks), self._timeout)
        except _FAILURES as exc:
            for ack in acks:
                ack.cancel()
            raise BusUnavailable(f"publishing to NATS stream {self._stream} failed: {exc}") from exc

    async def subscribe(self, consumer: str, pattern: str) -> AsyncIterator[Delivery]:
        """Deliveries from the durable pull consumer ``consumer`` (created on first use).

        A new consumer starts at the oldest event the stream keeps. Messages this
        subscription fetched but did not settle are nak'd when it ends, so another
        subscriber of the name gets them at once.

        Raises:
            InvalidInput: a malformed name or pattern, or ``consumer`` already exists
                with another pattern.
            BusUnavailable: the server cannot be reached when subscribing or drops for good.
        """
        validate_consumer(consumer)
        filter_subject = self.subject(validate_pattern(pattern))
        context = await self._jetstream()
        try:
            await self._ensure_consumer(context, consumer, filter_subject)
            subscription = await context.pull_subscribe_bind(durable=consumer, stream=self._stream)
        except _FAILURES as exc:
            raise BusUnavailable(f"subscribing {consumer} on NATS failed: {exc}") from exc
        held: dict[int, Msg] = {}  # stream sequence -> fetched, not yet settled
        handed: OrderedDict[int, int] = OrderedDict()  # stream sequence -> attempt handed out
        try:
            while not self._closed:
                try:
                    messages = await subscription.fetch(self._batch, timeout=self._fetch_timeout)
                except (nats.errors.TimeoutError, TimeoutError):
                    # Nothing new (or a reconnection in progress). nats-py raises its own
                    # TimeoutError or, from inside fetch, the built-in one.
                    continue
                except nats.errors.ConnectionClosedError as exc:
                    if self._closed:
                        return
                    raise BusUnavailable(f"the NATS connection closed: {exc}") from exc
                fresh = [m for m in messages if _first_copy(handed, m)]
                for message in fresh:
                    held[message.metadata.sequence.stream] = message
                for message in fresh:
                    if self._closed:
                        return
                    yield self._delivery(message, held)
        finally:
            await self._release(held.values())
            if not self._closed:
                await subscription.unsubscribe()

    async def tap(self, pattern: str) -> QueueTap:
        """A live view of the envelopes matching ``pattern`` stored from now on.

        Raises:
            InvalidPattern: a malformed pattern.
            BusUnavailable: the server cannot be reached.
        """
        filter_subject = self.subject(validate_pattern(pattern))
        context = await self._jetstream()

        async def stop() -> None:
            self._taps.discard(tap)
            if not self._closed:
                try:
                    await subscription.unsubscribe()
                except _FAILURES as exc:
                    log.info("could not end a NATS tap: %s", exc)

        tap = QueueTap(stop)

        async def receive(message: Msg) -> None:
            try:
                tap.put(Envelope.model_validate_json(message.data))
            except ValueError:
                log.error("a message on %s is not an event envelope", message.subject)

        try:
            subscription = await context.subscribe(
                filter_subject,
                stream=self._stream,
                cb=receive,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
                idle_heartbeat=5.0,
            )
        except _FAILURES as exc:
            raise BusUnavailable(f"tapping NATS stream {self._stream} failed: {exc}") from exc
        self._taps.add(tap)
        return tap

    async def _ensure_consumer(
        self, context: JetStreamContext, consumer: str, filter_subject: str
    ) -> None:
        try:
            info = await context.consumer_info(self._stream, consumer)
        except nats.js.errors.NotFoundError:
            await context.add_consumer(
                self._stream,
                ConsumerConfig(
                    name=consumer,
                    durable_name=consumer,
                    filter_subject=filter_subject,
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=self._ack_wait,
                    max_deliver=-1,
                ),
            )
            return
        if info.config.filter_subject != filter_subject:
            raise InvalidInput(
                f"consumer {consumer!r} already subscribes to {info.config.filter_subject!r}",
                hint="a consumer name is bound to one pattern; use another name",
            )

    def _delivery(self, message: Msg, held: dict[int, Msg]) -> Delivery:
        sequence = message.metadata.sequence.stream

        async def ack() -> None:
            held.pop(sequence, None)
            await self._settle(message.ack())

        async def nak(delay: float) -> None:
            held.pop(sequence, None)
            await self._settle(message.nak(delay=delay if delay > 0 else None))

        envelope = Envelope.model_validate_json(message.data)
        return Delivery(envelope, message.metadata.num_delivered, ack, nak)

    async def _settle(self, settling: Awaitable[None]) -> None:
        try:
            await settling
        except _FAILURES as exc:
            raise BusUnavailable(f"settling a NATS delivery failed: {exc}") from exc

    async def _release(self, messages: Iterable[Msg]) -> None:
        for message in list(messages):
            try:
                await message.nak()
            except _FAILURES as exc:
                # The server redelivers it after ack_wait anyway.
                log.info("could not hand back a NATS delivery: %s", exc)

    async def aclose(self) -> None:
        """Close the connection; subscriptions end at their next pull, taps at once."""
        self._closed = True
        for tap in self._taps:
            tap.end()
        self._taps.clear()
        async with self._lock:
            client, self._client, self._context = self._client, None, None
        if client is not None and not client.is_closed:
            await client.close()
