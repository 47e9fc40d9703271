"""Durable, idempotent event consumers: declare them, run them, and re-drive dead letters.

A consumer is a named reaction to the events matching a pattern, writing to one
service's database::

    @consumer("notifications-rewards", "finance.mining.reward", service=ServiceName.NOTIFICATIONS)
    async def notify_reward(uow: UnitOfWork, event: Envelope) -> None: ...

The name is the durable consumer name on the bus (letters, digits, ``_``, ``-``), the
pattern is a NATS-style subject pattern (``finance.*``, ``finance.>``).

**Once per event id.** :class:`ConsumerRunner` handles each delivery in a unit of work on
the consumer's service database, as the service. It first inserts ``(consumer, event
id)`` into that database's ``processed_events`` with ``ON CONFLICT DO NOTHING``; when the
row was already there the handler is skipped and the delivery acked. The primary key does
the deciding, never a read-then-write: a concurrent duplicate waits on the first one's
row lock and then finds it (PostgreSQL), or waits for the database write lock (SQLite).
The handler runs in the same transaction, so its effect and the processed row commit
together, and an exception rolls both back. Acks come after the commit (at least once).

**Operations that open their own unit of work** (the mint's, education's) run inside
the consumer's transaction through :func:`azora.db.joined.joined`: each service's
consumer module builds its service object with ``unit_of_work()`` returning the joined
unit of work, so the operation's writes, events and audit records, and the processed-events
row, are one transaction. The operations themselves do not change; the mint's consumers
also take the statement-by-statement path of a movement (PostgreSQL's ``mint_move``
function would commit on a connection of its own) and do not retry a conflict inside the
spent transaction: the runner retries the whole event instead.

**Failures.** A handler exception is logged and the delivery nak'd with exponential
backoff (``backoff_base`` doubling up to ``backoff_max`` seconds); the delivery's
``max_attempts``-th failure writes a dead letter (the envelope, the error's type and
message, truncated, and the attempts) to the service's database and acks the delivery,
so the consumer moves on. Other consumers, and other events, are never held up.
:func:`replay` handles dead letters again, in the same idempotent transaction that marks
them replayed; a failure keeps the letter with its new error (``azora events replay``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from azora.db.columns import utcnow
from azora.db.engines import Databases
from azora.db.infra import PROCESSED_EVENTS_TABLE
from azora.db.statements import core_execute
from azora.db.uow import UnitOfWork
from azora.errors import InvalidInput
from azora.events import dead_letters
from azora.events.bus import Bus, Delivery
from azora.events.buses.names import validate_consumer
from azora.events.dead_letters import DeadLetter, describe
from azora.events.envelope import Envelope
from azora.events.patterns import matches, validate_pattern
from azora.types import ServiceName

logger = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, Envelope], Awaitable[None]]


@dataclass(frozen=True)
class Consumer:
    """A durable consumer: its bus name, the pattern it takes, its database and handler."""

    name: str
    pattern: str
    service: ServiceName
    handler: Handler

    def takes(self, event_type: str) -> bool:
        """Whether events of ``event_type`` are this consumer's."""
        return matches(self.pattern, event_type)


def consumer(name: str, pattern: str, *, service: ServiceName) -> Callable[[Handler], Consumer]:
    """Declare ``handler`` as the durable consumer ``name`` of ``pattern`` on ``service``.

    The decorated function becomes a :class:`Consumer` (list it where the runner finds
    it); nothing is registered globally.

    Raises:
        InvalidInput: ``name`` cannot name a durable consumer, or ``pattern`` is malformed.
    """
    validate_consumer(name)
    validate_pattern(pattern)

    def declare(handler: Handler) -> Consumer:
        return Consumer(name, pattern, ServiceName(service), handler)

    return declare


class Outcome(StrEnum):
    """What became of one delivery."""

    HANDLED = "handled"  # the handler ran and committed
    DUPLICATE = "duplicate"  # already processed: skipped
    RETRYING = "retrying"  # the handler failed; nak'd for a later attempt
    DEAD_LETTERED = "dead_lettered"  # the last attempt failed; kept as a dead letter


@dataclass(frozen=True)
class ReplayResult:
    """One dead letter after a replay: ``error`` is ``None`` when it was handled."""

    letter: DeadLetter
    error: str | None

    @property
    def ok(self) -> bool:
        """True when the event is now processed (the letter is marked replayed)."""
        return self.error is None


class ConsumerRunner:
    """Runs ``consumers`` on ``bus`` against the service databases (see the module docstring).

    Raises:
        ValueError: two consumers share a name, or the limits are not positive.
    """

    def __init__(
        self,
        databases: Databases,
        bus: Bus,
        consumers: Sequence[Consumer],
        *,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        names = [c.name for c in consumers]
        if len(set(names)) != len(names):
            raise ValueError("two consumers share a name")
        if max_attempts < 1 or backoff_base < 0 or backoff_max < backoff_base:
            raise ValueError("max_attempts ≥ 1 and 0 ≤ backoff_base ≤ backoff_max")
        self._databases = databases
        self._bus = bus
        self.consumers = {c.name: c for c in consumers}
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._clock = clock

    def get(self, name: str) -> Consumer:
        """The consumer called ``name``.

        Raises:
            InvalidInput: no consumer of that name.
        """
        return find(list(self.consumers.values()), name)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every consumer until ``stop`` is set; a consumer that fails is logged,
        and restarted after ``backoff_max`` seconds, without stopping the others."""
        async with asyncio.TaskGroup() as group:
            for item in self.consumers.values():
                group.create_task(self._supervise(item, stop))

    async def _supervise(self, item: Consumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_consumer(item, stop)
            except Exception:
                logger.exception("consumer %s stopped; restarting", item.name)
                await _wait(stop, self._backoff_max)

    async def run_consumer(self, item: Consumer, stop: asyncio.Event) -> None:
        """Take ``item``'s deliveries from the bus and settle each until ``stop`` is set.

        Raises:
            BusUnavailable: the broker cannot be reached.
            sqlalchemy.exc.SQLAlchemyError: the database failed while settling (the
                delivery was not acked and comes back).
        """
        stopping = asyncio.ensure_future(stop.wait())
        deliveries = self._bus.subscribe(item.name, item.pattern)
        taking: asyncio.Future[Delivery] | None = None
        try:
            while not stop.is_set():
                taking = asyncio.ensure_future(anext(deliveries))
                await asyncio.wait({taking, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not taking.done():
                    taking.cancel()
                    await asyncio.gather(taking, return_exceptions=True)
                    return
                try:
                    delivery = taking.result()
                except StopAsyncIteration:
                    return
                await self.settle(item, delivery)
        finally:
            stopping.cancel()
            if taking is not None and not taking.done():
                # Cancelled from outside (Ctrl-C) while waiting: the generator can only
                # be closed once the pending read has ended.
                taking.cancel()
                await asyncio.gather(taking, return_exceptions=True)
            await _close(deliveries)

    async def settle(self, item: Consumer, delivery: Delivery) -> Outcome:
        """Handle one delivery for ``item``, then ack it, nak it, or dead-letter and ack it.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the dead letter could not be written (the
                delivery is nak'd first, so it comes back).
        """
        try:
            handled = await self.process(item, delivery.envelope)
        except Exception as exc:
            if delivery.attempt < self._max_attempts:
                delay = min(self._backoff_max, self._backoff_base * 2 ** (delivery.attempt - 1))
                logger.warning(
                    "consumer %s failed on event %s (attempt %d, retry in %.2fs): %s",
                    item.name,
                    delivery.envelope.id,
                    delivery.attempt,
                    delay,
                    describe(exc),
                )
                await delivery.nak(delay)
                return Outcome.RETRYING
            logger.exception(
                "consumer %s gave up on event %s after %d attempts",
                item.name,
                delivery.envelope.id,
                delivery.attempt,
            )
            try:
                await self._dead_letter(item, delivery.envelope, exc, delivery.attempt)
            except Exception:
                await delivery.nak(self._backoff_max)
                raise
            await delivery.ack()
            return Outcome.DEAD_LETTERED
        await delivery.ack()
        return Outcome.HANDLED if handled else Outcome.DUPLICATE

    async def process(
        self, item: Consumer, envelope: Envelope, *, letter: uuid.UUID | None = None
    ) -> bool:
        """:func:`process` on this runner's databases and clock."""
        return await process(self._databases, item, envelope, letter=letter, now=self._clock())

    async def dead_letters(
        self,
        service: ServiceName,
        *,
        consumer_name: str | None = None,
        event_id: uuid.UUID | None = None,
        pending_only: bool = True,
    ) -> list[DeadLetter]:
        """:func:`azora.events.dead_letters.dead_letters` on this runner's databases."""
        return await dead_letters.dead_letters(
            self._databases,
            service,
            consumer=consumer_name,
            event_id=event_id,
            pending_only=pending_only,
        )

    async def replay(
        self,
        service: ServiceName,
        *,
        consumer_name: str | None = None,
        event_id: uuid.UUID | None = None,
    ) -> list[ReplayResult]:
        """:func:`replay` of this runner's consumers.

        Raises:
            InvalidInput: ``consumer_name`` is not a consumer of this runner.
        """
        return await replay(
            self._databases,
            list(self.consumers.values()),
            service,
            consumer_name=consumer_name,
            event_id=event_id,
            clock=self._clock,
        )

    async def _dead_letter(
        self, item: Consumer, envelope: Envelope, exc: BaseException, attempts: int
    ) -> None:
        await dead_letters.store(
            self._databases,
            item.service,
            item.name,
            envelope,
            describe(exc),
            attempts,
            self._clock(),
        )


def find(consumers: Sequence[Consumer], name: str) -> Consumer:
    """The consumer of ``consumers`` called ``name``.

    Raises:
        InvalidInput: none is.
    """
    for item in consumers:
        if item.name == name:
            return item
    known = ", ".join(sorted(c.name for c in consumers)) or "none"
    raise InvalidInput(f"unknown consumer {name!r}", hint=f"known consumers: {known}")


async def process(
    databases: Databases,
    item: Consumer,
    envelope: Envelope,
    *,
    letter: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Run ``item``'s handler on ``envelope`` once per event id; False if it already ran.

    One unit of work on ``item``'s database as the service: the processed-events row,
    the handler's writes and, for a replay, dead letter ``letter`` marked replayed
    commit together (a letter whose event was already processed is just marked).

    Raises:
        Exception: whatever the handler raised (nothing of it is written).
    """
    now = now or utcnow()
    async with UnitOfWork(databases, item.service, as_service=True) as uow:
        claimed = await core_execute(
            uow.session,
            dead_letters.insert_or_skip(
                uow.session, PROCESSED_EVENTS_TABLE, ("consumer", "event_id")
            ).values(consumer=item.name, event_id=envelope.id, processed_at=now),
        )
        first = getattr(claimed, "rowcount", 0) == 1
        if first:
            await item.handler(uow, envelope)
        if letter is not None:
            await dead_letters.mark_replayed(uow, letter, now)
    return first


async def replay(
    databases: Databases,
    consumers: Sequence[Consumer],
    service: ServiceName,
    *,
    consumer_name: str | None = None,
    event_id: uuid.UUID | None = None,
    clock: Callable[[], dt.datetime] = utcnow,
) -> list[ReplayResult]:
    """Handle ``service``'s unreplayed dead letters again (of one consumer and/or event
    when given), each with :func:`process`, which marks it replayed in the same transaction.

    A failure keeps the letter, with the new error and one more attempt; it is reported
    in the result, not raised. So is a letter of a consumer not in ``consumers``.

    Raises:
        InvalidInput: ``consumer_name`` is not in ``consumers``.
    """
    if consumer_name is not None:
        find(consumers, consumer_name)
    results = []
    letters = await dead_letters.dead_letters(
        databases, service, consumer=consumer_name, event_id=event_id
    )
    for letter in letters:
        try:
            item = find(consumers, letter.consumer)
            event = Envelope.model_validate(letter.envelope)
            await process(databases, item, event, letter=letter.id, now=clock())
        except Exception as exc:
            error = describe(exc)
            await dead_letters.note_failure(databases, letter, error, clock())
            results.append(ReplayResult(letter, error))
        else:
            results.append(ReplayResult(letter, None))
    return results


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return  # the time passed without a stop


async def _close(deliveries: AsyncIterator[Delivery]) -> None:
    """Close a subscription (an async generator), handing back what it did not settle."""
    close = getattr(deliveries, "aclose", None)
    if close is not None:
        await close()
