"""The Redis Streams bus (``redis://…``).

**One stream for every type** (``azora:events``, trimmed with ``XADD MAXLEN ~``), the
event type in a field, rather than a stream per type. Patterns decide it: a consumer
of ``finance.>`` must see every finance event in the order they were published, and
one consumer group reads one stream; with a stream per type it would read several
streams with no order between them and would have to discover streams created after it
subscribed. On one stream each durable consumer is one consumer group (named after it)
that reads everything, hands on what matches its pattern and acknowledges the rest at
once. The price, every group reading every entry, is small at our volumes; NATS filters
on the server when the volume is large.

Publishing runs one script per envelope that adds it only if its id was not added within
``duplicate_window`` seconds (a ``SET NX EX`` marker: best effort, like JetStream's
window). A delivery not acknowledged within ``ack_wait`` is taken over by the next
subscriber of the group that asks (``XAUTOCLAIM``); ``nak(delay)`` rewinds the entry's
idle time so that happens after ``delay`` (at most ``ack_wait``: a longer delay is cut
to it). The delivery count of the pending entry (``XPENDING``) is the ``attempt``.
``key_prefix`` isolates one bus's keys from another's (tests use their own). A tap is a
task of its own reading the stream with ``XREAD`` from the entry that was last when the
tap opened, so it neither misses nor repeats what the stream holds, across reconnections
too (as long as the entries are not trimmed away meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import StreamIdT

from azora.errors import InvalidInput
from azora.events.bus import Delivery
from azora.events.buses.names import validate_consumer
from azora.events.buses.tap import QueueTap
from azora.events.envelope import Envelope
from azora.events.errors import BusUnavailable
from azora.events.patterns import matches, validate_pattern

log = logging.getLogger(__name__)

#: What a lost or refused connection looks like from redis-py.
_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

_ADD_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
    return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
                      'id', ARGV[3], 'type', ARGV[4], 'data', ARGV[5])
end
return false
"""

Entry = tuple[str, dict[str, str]]


def _honour_cancellation() -> None:
    """Raise CancelledError if this task was cancelled and the cancellation got lost.

    redis-py 8.1 sometimes swallows the cancellation of a blocking read (a few in a
    hundred in our tests); without this a cancelled subscriber would read on forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class RedisStreamsBus:
    """A :class:`~azora.events.bus.Bus` over Redis Streams and consumer groups.

    ``max_len`` is the approximate number of entries the stream keeps (its history);
    ``duplicate_window`` is in seconds; ``ack_wait`` is how long a delivery may stay
    unsettled before another subscriber takes it over; ``block`` bounds one read (and so
    how soon a closed bus ends a subscription); ``batch`` is how many entries one read
    may bring; ``timeout`` bounds connecting and each command.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "azora:",
        max_len: int = 1_000_000,
        duplicate_window: float = 120.0,
        ack_wait: float = 30.0,
        block: float = 1.0,
        batch: int = 16,
        timeout: float = 5.0,
    ) -> None:
        self.stream = f"{key_prefix}events"
        self._seen_prefix = f"{key_prefix}events:seen:"
        self._patterns = f"{key_prefix}events:consumers"
        self._max_len = max_len
        self._window = max(int(duplicate_window), 1)
        self._ack_wait_ms = int(ack_wait * 1000)
        self._block_ms = max(int(block * 1000), 1)
        self._batch = batch
        # Nothing connects here; a blocked read must not count as a timeout.
        self._client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=timeout,
            socket_timeout=timeout + block,
            retry=Retry(NoBackoff(), 0),
        )
        self._add_once = self._client.register_script(_ADD_ONCE)
        self._taps: set[QueueTap] = set()
        self._closed = False

    async def publish_many(self, envelopes: Sequence[Envelope]) -> None:
        """Append the envelopes not published within the window, in order, in one round trip.

        Raises:
            BusUnavailable: Redis cannot be reached or failed the commands.
        """
        if self._closed:
            raise BusUnavailable("the Redis event bus is closed")
        if not envelopes:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for envelope in envelopes:
                    await self._add_once(
                        keys=[self.stream, f"{self._seen_prefix}{envelope.id}"],
                        args=[
                            self._max_len,
                            self._window,
                            str(envelope.id),
                            envelope.type,
                            envelope.model_dump_json(),
                        ],
                        client=pipe,
                    )
                await pipe.execute()
        except (*_FAILURES, redis.exceptions.ResponseError) as exc:
            raise BusUnavailable(f"publishing to Redis stream {self.stream} failed: {exc}") from exc

    async def subscribe(self, consumer: str, pattern: str) -> AsyncIterator[Delivery]:
        """Deliveries for the consumer group ``consumer`` (created on first use).

        A new group starts at the oldest entry the stream keeps. Entries this
        subscription took and did not settle are handed back when it ends, so another
        subscriber of the name gets them at once.

        Raises:
            InvalidInput: a malformed name or pattern, or ``consumer`` already exists
                with another pattern.
            BusUnavailable: Redis cannot be reached.
        """
        validate_consumer(consumer)
        validate_pattern(pattern)
        me = f"{consumer}-{uuid.uuid4().hex[:12]}"
        held: dict[str, int] = {}  # entry id -> attempt handed out and not yet settled
        try:
            await self._ensure_group(consumer, pattern)
            while not self._closed:
                _honour_cancellation()
                for entry_id, attempt, envelope in await self._next(consumer, me, pattern):
                    if self._closed:
                        return
                    held[entry_id] = attempt
                    yield self._delivery(consumer, me, entry_id, attempt, envelope, held)
        except _FAILURES as exc:
            if not self._closed:
                raise BusUnavailable(f"reading Redis stream {self.stream} failed: {exc}") from exc
        finally:
            if not self._closed:
                await self._release(consumer, me, list(held))

    async def tap(self, pattern: str) -> QueueTap:
        """A live view of the entries matching ``pattern`` added from now on.

        A lost connection is retried every second; the tap resumes after the last entry
        it saw.

        Raises:
            InvalidPattern: a malformed pattern.
            BusUnavailable: Redis cannot be reached.
        """
        validate_pattern(pattern)
        if self._closed:
            raise BusUnavailable("the Redis event bus is closed")
        try:
            info: dict[str, Any] = await self._client.xinfo_stream(self.stream)
            last = str(info["last-generated-id"])
        except redis.exceptions.ResponseError:
            last = "0-0"  # no stream yet: everything added will be new
        except _FAILURES as exc:
            raise BusUnavailable(f"tapping Redis stream {self.stream} failed: {exc}") from exc
        reader: asyncio.Task[None] | None = None

        async def stop() -> None:
            self._taps.discard(tap)
            if reader is not None:
                reader.cancel()

        tap = QueueTap(stop)
        reader = asyncio.create_task(self._read_tap(tap, pattern, last))
        self._taps.add(tap)
        return tap

    async def _read_tap(self, tap: QueueTap, pattern: str, last: str) -> None:
        while not self._closed and not tap.closed:
            try:
                read: Any = await self._client.xread(
                    {self.stream: last}, count=256, block=self._block_ms
                )
            except _FAILURES as exc:
                if self._closed:
                    return
                log.warning("Redis tap lost its connection (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            _honour_cancellation()
            for _, entries in read:
                for entry_id, fields in entries:
                    last = entry_id
                    if fields and matches(pattern, fields["type"]):
                        tap.put(Envelope.model_validate_json(fields["data"]))

    async def _ensure_group(self, consumer: str, pattern: str) -> None:
        await self._client.hsetnx(self._patterns, consumer, pattern)
        bound = await self._client.hget(self._patterns, consumer)
        if bound != pattern:
            raise InvalidInput(
                f"consumer {consumer!r} already subscribes to {bound!r}",
                hint="a consumer name is bound to one pattern; use another name",
            )
        try:
            await self._client.xgroup_create(self.stream, consumer, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            # The group exists: it keeps its place in the stream.

    async def _next(self, consumer: str, me: str, pattern: str) -> list[tuple[str, int, Envelope]]:
        """Entries due again (taken over from their holder) first, then new ones."""
        claimed: list[Any] = await self._client.xautoclaim(
            self.stream, consumer, me, self._ack_wait_ms, start_id="0-0", count=self._batch
        )
        entries: list[Entry] = [entry for entry in claimed[1] if entry[1]]
        if entries:
            attempts = await self._attempts(consumer, me, entries)
        else:
            read: Any = await self._client.xreadgroup(
                consumer, me, {self.stream: ">"}, count=self._batch, block=self._block_ms
            )
            entries = [entry for _, stream_entries in read for entry in stream_entries]
            attempts = dict.fromkeys((entry_id for entry_id, _ in entries), 1)
        wanted: list[tuple[str, int, Envelope]] = []
        unwanted: list[str] = []
        for entry_id, fields in entries:
            if matches(pattern, fields["type"]):
                envelope = Envelope.model_validate_json(fields["data"])
                wanted.append((entry_id, attempts.get(entry_id, 1), envelope))
            else:
                unwanted.append(entry_id)
        if unwanted:
            await self._client.xack(self.stream, consumer, *unwanted)
        return wanted

    async def _attempts(self, consumer: str, me: str, entries: list[Entry]) -> dict[str, int]:
        ids = [entry_id for entry_id, _ in entries]
        pending: list[dict[str, Any]] = await self._client.xpending_range(
            self.stream,
            consumer,
            min=min(ids),
            max=max(ids),
            count=len(ids) * 2,
            consumername=me,
        )
        return {row["message_id"]: int(row["times_delivered"]) for row in pending}

    def _delivery(
        self,
        consumer: str,
        me: str,
        entry_id: str,
        attempt: int,
        envelope: Envelope,
        held: dict[str, int],
    ) -> Delivery:
        async def ack() -> None:
            held.pop(entry_id, None)
            try:
                await self._client.xack(self.stream, consumer, entry_id)
            except _FAILURES as exc:
                raise BusUnavailable(f"acknowledging on Redis failed: {exc}") from exc

        async def nak(delay: float) -> None:
            held.pop(entry_id, None)
            # Claimable once idle for ack_wait: start it at ack_wait - delay.
            idle = max(self._ack_wait_ms - int(delay * 1000), 0)
            try:
                await self._client.xclaim(
                    self.stream, consumer, me, 0, [entry_id], idle=idle, justid=True
                )
            except _FAILURES as exc:
                raise BusUnavailable(f"handing back a Redis delivery failed: {exc}") from exc

        return Delivery(envelope, attempt, ack, nak)

    async def _release(self, consumer: str, me: str, entry_ids: list[str]) -> None:
        """Make ``entry_ids`` claimable now, and forget idle members with nothing pending."""
        try:
            if entry_ids:
                ids: list[StreamIdT] = list(entry_ids)
                await self._client.xclaim(
                    self.stream, consumer, me, 0, ids, idle=self._ack_wait_ms, justid=True
                )
            # A member with nothing pending holds no state; a live one is re-created by
            # its next read.
            for member in await self._client.xinfo_consumers(self.stream, consumer):
                if int(member["pending"]) == 0:
                    await self._client.xgroup_delconsumer(self.stream, consumer, member["name"])
        except _FAILURES as exc:
            # Entries left with this member are taken over after ack_wait anyway.
            log.info("could not hand back Redis deliveries: %s", exc)

    async def aclose(self) -> None:
        """Close the connections; subscriptions end at their next read, taps at once."""
        self._closed = True
        for tap in list(self._taps):
            await tap.aclose()
        await self._client.aclose()
