"""The outbox relay: moves committed ``outbox_events`` rows to the bus, in order per subject.

One round on one database (:meth:`Relay.run_once`) is one unit of work:

1. **Claim** the oldest unpublished rows (``ORDER BY created_at, id LIMIT batch``); on
   PostgreSQL ``FOR UPDATE SKIP LOCKED``, so several relay processes share the work. On
   SQLite the rows are read without a lock (a snapshot), published and archived, and
   only marking them takes the database's write lock, in a short transaction of its own:
   a writer committing to the outbox meanwhile waits for nothing but that. Two relays on
   one SQLite database (with a broker) may then both publish a row: delivery is at least
   once anyway (below), and each publishes a subject's rows in order.
2. **Keep only each subject's head** (PostgreSQL): a claimed row is dropped from this
   round when an *earlier* unpublished row of the same subject is not among the rows
   this transaction claimed (another relay holds it, or it failed and waits). Public
   events (no subject) count as one subject of their own. One query reads those
   *outsiders*: the unpublished rows before the newest claimed row, ``(created_at, id)``
   order, that this round did not claim (the partial index on unpublished rows serves
   it, so the cost follows the batch, not the backlog); the comparison per subject is
   then made in Python. An earlier row of a claimed row's subject is necessarily before
   the newest claimed row, so the outsiders hold every row the check is about.
3. **Publish** the kept rows with :meth:`~azora.events.bus.Bus.publish_many` while the
   row locks are held, **archive** them in the nexus database's ``event_records``
   (insert-or-skip by event id), then **mark** them published; the unit of work commits.
   The archive's insert runs while the bus stores the events, but its transaction
   commits only once ``publish_many`` has returned: the history never shows an event
   the bus does not have. (Nexus's own outbox archives after the publish, in the
   round's transaction.)

Why the order holds with several relays: the outsider query of step 2 is a statement of
its own after the claim, so it reads a snapshot taken after this transaction's locks
were granted. A row another relay still holds is unpublished in that snapshot, so it is
an outsider and every later claimed row of its subject is dropped here; a row that the
snapshot shows published was marked in a transaction that committed after its
``publish_many`` returned, so the bus already stores it. Either way no subject's later
event reaches the bus before an earlier one. "Earlier" is ``(created_at, id)``, the order
the writers' transactions wrote their rows; a row that commits late with an older
``created_at`` is published when it becomes visible (commit order).

Delivery is at least once: a crash after ``publish_many`` and before the commit leaves
the rows unpublished, so the next round publishes (and archives) them again; event ids
let brokers and consumers de-duplicate, and the archive skips ids it already has.
Archiving comes before marking because nexus is another database: a failure there
rolls the round back rather than losing history.

When the bus is unavailable (or the archive fails) the round rolls back; a separate short
transaction adds 1 to ``attempts`` and stores ``last_error`` on the claimed rows, and the
database backs off exponentially in this relay. Rows are never skipped: the same rows, in
the same order, come first again when the backoff ends. A row that does not make a valid
envelope (written by hand, or by a writer that skipped the checks) is never skipped
either: it is noted the same way and holds back its own subject until someone repairs it.

Waking up: :meth:`Relay.run` polls every database (every ``busy_interval`` while there
is work, backing off to ``idle_interval``) and, on PostgreSQL, also listens (``LISTEN``)
on ``azora_outbox`` with one connection of its own per database. Writers do not ``NOTIFY``
in their transactions (PostgreSQL would serialise their commits on one lock): after a
commit that wrote outbox rows they poke :class:`~azora.events.notify.OutboxNotifier`,
which notifies from another connection, throttled, with the service's name as payload.
A notify makes the relay run a round for that service at once instead of waiting for the
poll. A dropped listener connection is reopened after ``listen_retry`` seconds (polling
carries on meanwhile), and every (re)opened listener triggers one round for its services,
since commits announced while nobody listened were missed. On SQLite the relay polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    ColumnElement,
    Row,
    Uuid,
    all_,
    any_,
    bindparam,
    delete,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.columns import UTCDateTime, utcnow
from azora.db.engines import Databases, reading
from azora.db.infra import OUTBOX_TABLE
from azora.db.statements import core_execute, insert_or_skip
from azora.db.uow import UnitOfWork
from azora.errors import AzoraError
from azora.events.bus import Bus
from azora.events.envelope import Envelope
from azora.events.errors import BusUnavailable
from azora.events.notify import CHANNEL, connect_driver
from azora.nexus.models import EventRecord
from azora.types import ALL_SERVICES, ServiceName

logger = logging.getLogger(__name__)

_ENVELOPE_COLUMNS = (
    OUTBOX_TABLE.c.id,
    OUTBOX_TABLE.c.type,
    OUTBOX_TABLE.c.source,
    OUTBOX_TABLE.c.subject,
    OUTBOX_TABLE.c.payload,
    OUTBOX_TABLE.c.correlation_id,
    OUTBOX_TABLE.c.version,
    OUTBOX_TABLE.c.occurred_at,
)
_LAST_ERROR_CHARS = 200
_URL_CREDENTIALS = re.compile(r"://[^/@\s]*@")
_LISTENER_CHECK_S = 10.0


class ArchiveUnavailable(AzoraError):
    """The nexus database did not take the archive records; the round is retried."""

    code = "event_archive_unavailable"


@dataclass
class _Backoff:
    failures: int = 0
    until: dt.datetime | None = None


class Relay:
    """Publishes the outbox of each service database to ``bus`` (see the module docstring).

    ``clock`` gives the current UTC time (publish marks, backoff, retention). Backoff after
    a failed round starts at ``backoff_base`` seconds and doubles up to ``backoff_max``.
    ``listen=False`` keeps :meth:`run` from listening for notifies (it only polls);
    ``listen_retry`` is the first wait (seconds) before a lost listener is reopened,
    doubling up to ``backoff_max`` while it keeps failing.
    """

    def __init__(
        self,
        databases: Databases,
        bus: Bus,
        *,
        services: Sequence[ServiceName] = ALL_SERVICES,
        batch: int = 500,
        retention: dt.timedelta = dt.timedelta(days=7),
        clock: Callable[[], dt.datetime] = utcnow,
        busy_interval: float = 0.05,
        idle_interval: float = 1.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        prune_every: dt.timedelta = dt.timedelta(hours=1),
        listen: bool = True,
        listen_retry: float = 1.0,
    ) -> None:
        if batch < 1:
            raise ValueError("a relay batch holds at least one event")
        self._databases = databases
        self._bus = bus
        self.services = tuple(services)
        self._batch = batch
        self._retention = retention
        self._clock = clock
        self._busy_interval = busy_interval
        self._idle_interval = idle_interval
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._prune_every = prune_every
        self._backoffs: dict[ServiceName, _Backoff] = {}
        self._pruned_at: dict[ServiceName, dt.datetime] = {}
        self._listen = listen
        self._listen_retry = listen_retry
        self._woken: set[ServiceName] = set()
        self._wake: asyncio.Event | None = None
        #: The services whose database :meth:`run` is listening to right now.
        self.listening: set[ServiceName] = set()

    def backing_off(self, service: ServiceName) -> bool:
        """True while ``service``'s database waits out the backoff of a failed round."""
        backoff = self._backoffs.get(service)
        return backoff is not None and backoff.until is not None and self._clock() < backoff.until

    async def run_once(self, service: ServiceName) -> int:
        """Publish, archive and mark one batch of ``service``'s outbox; the count published.

        Returns 0 without touching the database while it backs off. On
        :class:`BusUnavailable` or :class:`ArchiveUnavailable` nothing is marked, the
        claimed rows get ``attempts + 1`` and ``last_error``, the database backs off and
        0 is returned. A row that does not make a valid envelope gets the same note and
        stays unpublished, holding back the later rows of its subject (only those).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: ``service``'s database failed.
        """
        if self.backing_off(service) or not await self._may_have_pending(service):
            return 0
        return await self._relay_batch(service)

    async def _relay_batch(self, service: ServiceName) -> int:
        """:meth:`run_once` after its checks."""
        if self._databases.engine(service).dialect.name != "postgresql":
            return await self._relay_batch_unlocked(service)
        claimed: list[Envelope] = []
        try:
            async with UnitOfWork(self._databases, service, as_service=True) as uow:
                claimed, malformed = await _claim(uow.session, self._batch)
                if claimed:
                    await self._publish_and_archive(service, uow.session, claimed)
                    await _mark(uow.session, [e.id for e in claimed], self._clock())
                for row_id, problem in malformed.items():
                    logger.error("outbox row %s on %s is malformed: %s", row_id, service, problem)
                    await _note_attempt(uow.session, [row_id], problem)
        except (BusUnavailable, ArchiveUnavailable) as exc:
            await self._record_failure(service, claimed, exc)
            return 0
        self._backoffs.pop(service, None)
        return len(claimed)

    async def _relay_batch_unlocked(self, service: ServiceName) -> int:
        """:meth:`run_once` on SQLite: the rows are read, published and archived without
        a lock, then marked in a short write transaction (see the module docstring)."""
        claimed: list[Envelope] = []
        try:
            async with AsyncSession(reading(self._databases.engine(service))) as session:
                claimed, malformed = await _claim(session, self._batch)
            if claimed and service is not ServiceName.NEXUS:
                await self._publish_and_archive(service, None, claimed)
            elif claimed:  # nexus archives its own events in the marking transaction
                await self._bus.publish_many(claimed)
            async with UnitOfWork(self._databases, service, as_service=True) as uow:
                if claimed and service is ServiceName.NEXUS:
                    await _insert_records(uow.session, [_record(e) for e in claimed])
                if claimed:
                    await _mark(uow.session, [e.id for e in claimed], self._clock())
                for row_id, problem in malformed.items():
                    logger.error("outbox row %s on %s is malformed: %s", row_id, service, problem)
                    await _note_attempt(uow.session, [row_id], problem)
        except (BusUnavailable, ArchiveUnavailable) as exc:
            await self._record_failure(service, claimed, exc)
            return 0
        self._backoffs.pop(service, None)
        return len(claimed)

    async def _may_have_pending(self, service: ServiceName) -> bool:
        """False when ``service``'s outbox has no unpublished row, asked without a lock.

        On SQLite a round's transaction takes the database's write lock before it reads,
        so rounds that find nothing (most of them, polling nine databases) would hold up
        that service's writers for nothing. PostgreSQL's rounds lock nothing they do
        not claim: always True there.
        """
        engine = self._databases.engine(service)
        if engine.dialect.name == "postgresql":
            return True
        async with reading(engine).connect() as connection:
            found = await connection.scalar(
                select(OUTBOX_TABLE.c.id).where(OUTBOX_TABLE.c.published_at.is_(None)).limit(1)
            )
        return found is not None

    async def prune(self, service: ServiceName) -> int:
        """Delete ``service``'s outbox rows published more than ``retention`` ago; how many.

        Unpublished rows are never deleted, however old.
        """
        cutoff = self._clock() - self._retention
        async with UnitOfWork(self._databases, service, as_service=True) as uow:
            result = await core_execute(
                uow.session,
                delete(OUTBOX_TABLE).where(
                    OUTBOX_TABLE.c.published_at.is_not(None), OUTBOX_TABLE.c.published_at < cutoff
                ),
            )
        self._pruned_at[service] = self._clock()
        return int(getattr(result, "rowcount", 0) or 0)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay every service's outbox until ``stop`` is set, pruning now and then.

        Polls every database and, on PostgreSQL, runs a round for a service as soon as a
        notify on ``azora_outbox`` names it (see the module docstring). A round that fails
        on its database is logged and that database backs off; the relay goes on with the
        others. A listener that fails only costs latency: polling goes on.
        """
        self._wake, self._woken = asyncio.Event(), set()
        listeners = [
            asyncio.create_task(self._listen_to(group), name=f"outbox-listener-{group[0]}")
            for group in self._listen_groups()
        ]
        try:
            await self._poll(stop, self._wake)
        finally:
            for listener in listeners:
                listener.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
            self.listening.clear()

    async def _poll(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        delay = self._busy_interval
        next_poll = time.monotonic()
        while not stop.is_set():
            polling = time.monotonic() >= next_poll
            woken, self._woken = self._woken, set()
            wake.clear()  # a notify from now on calls for another round
            services = self.services if polling else [s for s in self.services if s in woken]
            published, full = await self._round(services)
            if full:
                delay = 0.0
            elif published:
                delay = self._busy_interval
            elif polling:
                delay = min(self._idle_interval, max(delay, self._busy_interval) * 2)
            if polling or published:
                next_poll = time.monotonic() + delay
            await _first_of(stop, wake, seconds=max(0.0, next_poll - time.monotonic()))

    async def _round(self, services: Sequence[ServiceName]) -> tuple[int, bool]:
        """One round on each of ``services``: how many published, and whether a batch was full."""
        published, full = 0, False
        services = [s for s in services if not self.backing_off(s)]
        # Asked of every database at once: a round costs one wait, not one per database.
        pending = await asyncio.gather(
            *(self._may_have_pending(s) for s in services), return_exceptions=True
        )
        for service, maybe in zip(services, pending, strict=True):
            try:
                count = 0 if maybe is False else await self._relay_batch(service)
                await self._prune_if_due(service)
            except (SQLAlchemyError, OSError):
                logger.exception("outbox relay round failed on %s", service)
                self._back_off(service)
                continue
            published += count
            full = full or count >= self._batch
        return published, full

    def _listen_groups(self) -> list[list[ServiceName]]:
        """The relayed services on PostgreSQL, grouped by database (one listener each)."""
        if not self._listen:
            return []
        groups: dict[tuple[str | None, int | None, str | None], list[ServiceName]] = {}
        for service in self.services:
            try:
                target = self._databases.target(service)
            except AzoraError:
                continue  # its rounds report the problem
            if target.backend == "postgresql":
                url = target.url
                groups.setdefault((url.host, url.port, url.database), []).append(service)
        return list(groups.values())

    def _notified(self, services: Sequence[ServiceName]) -> None:
        self._woken.update(services)
        if self._wake is not None:
            self._wake.set()

    async def _listen_to(self, services: list[ServiceName]) -> None:
        """LISTEN on the database of ``services`` until cancelled, reopening when lost."""
        by_name = {service.value: service for service in services}

        def on_notify(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            service = by_name.get(payload)
            if service is not None:
                self._notified([service])

        retry = self._listen_retry
        while True:
            connection: Any = None
            try:
                connection = await connect_driver(
                    self._databases, services[0], "azora-relay-listener"
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, on_notify)
                self.listening.update(services)
                retry = self._listen_retry
                # Commits announced while nobody listened were missed: one round each.
                self._notified(services)
                while not connection.is_closed():
                    if await _first_of(lost, seconds=_LISTENER_CHECK_S):
                        break
                    # A half-open connection would never report its loss: ask it.
                    await asyncio.wait_for(connection.execute("SELECT 1"), _LISTENER_CHECK_S)
                logger.warning("the outbox listener on %s was lost; polling meanwhile", services)
            except Exception as exc:
                log = logger.warning if self.listening & set(services) else logger.debug
                log("outbox listener on %s failed (%r); polling meanwhile", services, exc)
            finally:
                self.listening.difference_update(services)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.terminate()
            await asyncio.sleep(retry)
            retry = min(self._backoff_max, retry * 2)

    async def _prune_if_due(self, service: ServiceName) -> None:
        last = self._pruned_at.get(service)
        if last is None or self._clock() - last >= self._prune_every:
            await self.prune(service)

    async def _publish_and_archive(
        self, service: ServiceName, session: AsyncSession | None, envelopes: Sequence[Envelope]
    ) -> None:
        """Publish ``envelopes``, then commit their archive records.

        The records are inserted in the nexus database while the bus stores the events,
        and committed once ``publish_many`` has returned: the history shows only what
        the bus has. On nexus's own outbox they are inserted after the publish, in the
        round's transaction (a second one would wait on its write lock).

        Raises:
            BusUnavailable: the bus refused (nothing is archived).
            ArchiveUnavailable: the nexus database did not take the records.
        """
        records = [_record(e) for e in envelopes]
        try:
            if service is ServiceName.NEXUS:
                assert session is not None, "nexus archives in the round's transaction"
                await self._bus.publish_many(envelopes)
                await _insert_records(session, records)
                return
            async with UnitOfWork(self._databases, ServiceName.NEXUS, as_service=True) as uow:
                # Both run to their end (no cancellation halfway), whichever fails.
                published, archived = await asyncio.gather(
                    self._bus.publish_many(envelopes),
                    _insert_records(uow.session, records),
                    return_exceptions=True,
                )
                for outcome in (published, archived):
                    if isinstance(outcome, BaseException):
                        raise outcome
        except SQLAlchemyError as exc:
            # The class name only: a database error's text may quote the payloads.
            raise ArchiveUnavailable(f"archive failed: {type(exc).__name__}") from exc

    async def _record_failure(
        self, service: ServiceName, claimed: Sequence[Envelope], exc: AzoraError
    ) -> None:
        backoff = self._back_off(service)
        logger.warning(
            "outbox relay on %s: %s (retry in %s)",
            service,
            exc.code,
            backoff.until - self._clock() if backoff.until else "0",
        )
        if not claimed:
            return
        async with UnitOfWork(self._databases, service, as_service=True) as uow:
            await _note_attempt(uow.session, [e.id for e in claimed], _short_error(exc))

    def _back_off(self, service: ServiceName) -> _Backoff:
        backoff = self._backoffs.setdefault(service, _Backoff())
        backoff.failures += 1
        seconds = min(self._backoff_max, self._backoff_base * 2 ** (backoff.failures - 1))
        backoff.until = self._clock() + dt.timedelta(seconds=seconds)
        return backoff


async def _first_of(*events: asyncio.Event, seconds: float) -> bool:
    """Wait until one of ``events`` is set, at most ``seconds``; whether one was."""
    if any(event.is_set() for event in events):
        return True
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


async def _claim(session: AsyncSession, batch: int) -> tuple[list[Envelope], dict[uuid.UUID, str]]:
    """Lock the oldest unpublished rows; the envelopes this round may publish, in order.

    Also returns the rows that do not make a valid envelope (id → what is wrong with
    them): such a row stays unpublished and holds back the later rows of its subject.
    """
    rows = list(
        await core_execute(
            session,
            select(*_ENVELOPE_COLUMNS, OUTBOX_TABLE.c.created_at)
            .where(OUTBOX_TABLE.c.published_at.is_(None))
            .order_by(OUTBOX_TABLE.c.created_at, OUTBOX_TABLE.c.id)
            .limit(batch)
            .with_for_update(skip_locked=True),
        )
    )
    if rows and session.get_bind().dialect.name == "postgresql":
        rows = _heads(rows, await _outsiders(session, rows))
    envelopes: list[Envelope] = []
    malformed: dict[uuid.UUID, str] = {}
    stuck: set[uuid.UUID | None] = set()
    for row in rows:
        if row.subject in stuck:
            continue
        try:
            envelopes.append(_envelope(row))
        except ValidationError as exc:
            stuck.add(row.subject)
            # Field names only: the values may be private.
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            malformed[row.id] = f"invalid_envelope: {fields}"[:_LAST_ERROR_CHARS]
    return envelopes, malformed


async def _outsiders(session: AsyncSession, claimed: list[Row[Any]]) -> list[Row[Any]]:
    """The unpublished rows before the newest of ``claimed`` that are not among them.

    Normally few: rows another relay holds, or rows committed late with an older
    ``created_at``. The partial index on unpublished ``(created_at, id)`` serves the
    range, so the cost grows with the batch and the outsiders, not with the backlog.
    """
    newest = claimed[-1]
    result = await core_execute(
        session,
        select(OUTBOX_TABLE.c.id, OUTBOX_TABLE.c.subject, OUTBOX_TABLE.c.created_at).where(
            OUTBOX_TABLE.c.published_at.is_(None),
            tuple_(OUTBOX_TABLE.c.created_at, OUTBOX_TABLE.c.id)
            < tuple_(literal(newest.created_at, UTCDateTime()), literal(newest.id, Uuid())),
            OUTBOX_TABLE.c.id != all_(_id_array([row.id for row in claimed])),
        ),
    )
    return list(result)


def _heads(claimed: list[Row[Any]], outsiders: list[Row[Any]]) -> list[Row[Any]]:
    """``claimed`` without the rows that an outsider of their subject precedes.

    Public events (subject ``None``) count as one subject. An outsider precedes a claimed
    row when its ``(created_at, id)`` is smaller (Python orders UUIDs as PostgreSQL does).
    """
    if not outsiders:
        return claimed
    first: dict[uuid.UUID | None, tuple[dt.datetime, uuid.UUID]] = {}
    for row in outsiders:
        key = (row.created_at, row.id)
        if row.subject not in first or key < first[row.subject]:
            first[row.subject] = key
    return [
        row
        for row in claimed
        if row.subject not in first or (row.created_at, row.id) < first[row.subject]
    ]


async def _mark(session: AsyncSession, ids: list[uuid.UUID], now: dt.datetime) -> None:
    await core_execute(
        session, update(OUTBOX_TABLE).where(_among(session, ids)).values(published_at=now)
    )


async def _note_attempt(session: AsyncSession, ids: list[uuid.UUID], error: str) -> None:
    await core_execute(
        session,
        update(OUTBOX_TABLE)
        .where(_among(session, ids))
        .values(attempts=OUTBOX_TABLE.c.attempts + 1, last_error=error),
    )


def _id_array(ids: list[uuid.UUID]) -> Any:
    """``ids`` as one PostgreSQL ``uuid[]`` parameter (not one parameter per id)."""
    return bindparam("ids", ids, type_=ARRAY(Uuid()))


def _among(session: AsyncSession, ids: list[uuid.UUID]) -> ColumnElement[bool]:
    """The outbox rows whose id is one of ``ids`` (one array parameter on PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return OUTBOX_TABLE.c.id == any_(_id_array(ids))
    return OUTBOX_TABLE.c.id.in_(ids)


async def _insert_records(session: AsyncSession, records: list[dict[str, Any]]) -> None:
    await core_execute(session, insert_or_skip(session, EventRecord, ["event_id"]), records)


def _envelope(row: Row[Any]) -> Envelope:
    return Envelope(
        id=row.id,
        type=row.type,
        source=row.source,
        subject=row.subject,
        payload=row.payload,
        occurred_at=row.occurred_at,
        correlation_id=row.correlation_id,
        version=row.version,
    )


def _record(envelope: Envelope) -> dict[str, Any]:
    return {
        "event_id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "subject_user_id": envelope.subject,
        "payload": envelope.payload,
        "occurred_at": envelope.occurred_at,
        "correlation_id": envelope.correlation_id,
        "version": envelope.version,
    }


def _short_error(exc: AzoraError) -> str:
    """``exc`` as a short line for ``last_error``, with any URL credentials removed."""
    text = _URL_CREDENTIALS.sub("://***@", f"{exc.code}: {exc}")
    return text[:_LAST_ERROR_CHARS]
