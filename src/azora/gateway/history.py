"""What a reconnecting client missed: the event history plus the hub's recent events.

A client reconnects with the id of the last event it saw. Event ids are UUIDv7, so the
id carries the time it was made; the catch-up is every event the client may see whose
id is later than that time minus ``slack``, from two places:

- the nexus database's history (``event_records``, archived by the relay), and
- the hub's recent events, which also hold the events already on the bus but not yet
  archived.

The slack covers events of other services that committed after the last one the client
saw although their ids are older (ids are made before commit). So a catch-up may repeat
a few events the client saw in its previous session, never within one session: it is at
least once across a reconnection, like every delivery of the platform (clients keep the
ids they have seen). When the client's last event is among the hub's recent events (a
quick reconnection to the same gateway) the catch-up is exact: the events routed after
it, nothing else.

Gaps: when the history no longer reaches back to the client's last event (it is not in
the history, and every event there is newer: it was pruned), or when more than ``limit``
events were missed, the client gets the newest ``limit`` of them and a gap signal, and
should reload what it shows.

An id from the future (later than now plus ``slack``, e.g. the largest UUIDv7) has
nothing after it: the catch-up is empty.

A catch-up shares the event loop with every other client: the history is read in pages
of :data:`PAGE` rows, and events are decoded :data:`SLICE` at a time, with a yield to the
loop between slices (as long as its ``pace`` asks, when given: see
:class:`~azora.gateway.admission.LoopShare`). It stops early (empty) once its connection
has left the hub.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import and_, or_, select

from azora.db.engines import Databases
from azora.db.scope import SERVICE, scoped_connection
from azora.events.catalog import CATALOG
from azora.events.envelope import Envelope
from azora.events.history import RECORDS, from_record
from azora.gateway.admission import UNPACED, LoopShare
from azora.gateway.hub import Connection, Hub, Kept, unkept
from azora.types import ServiceName

DEFAULT_SLACK = dt.timedelta(seconds=2)
#: History rows read at a time.
PAGE = 250
#: Events decoded between two yields to the event loop (a few milliseconds' work).
SLICE = 50


class Gap(StrEnum):
    """Why a catch-up is incomplete."""

    #: The history no longer holds the client's last event.
    EXPIRED = "expired"
    #: More events were missed than one catch-up sends; these are the newest.
    TRUNCATED = "truncated"


@dataclass(frozen=True)
class CatchUp:
    """The events to send a reconnecting client, oldest first, and the gap, if any."""

    events: list[Envelope]
    gap: Gap | None = None


def id_millis(event_id: uuid.UUID) -> int:
    """When a UUIDv7 was made, in milliseconds since the epoch (any 48-bit value)."""
    return event_id.int >> 80


def id_time(event_id: uuid.UUID) -> dt.datetime:
    """When a UUIDv7 was made (millisecond precision, UTC).

    Raises:
        ValueError: the time is past the year 9999 (see :func:`id_millis`).
    """
    return dt.datetime.fromtimestamp(id_millis(event_id) / 1000, dt.UTC)


def id_floor(moment: dt.datetime) -> uuid.UUID:
    """The smallest UUIDv7 made at ``moment``'s millisecond: ids at or after it sort above."""
    return _floor(int(moment.timestamp() * 1000))


def _floor(milliseconds: int) -> uuid.UUID:
    return uuid.UUID(int=(max(milliseconds, 0) << 80) | (0x7 << 76) | (0b10 << 62))


def public_types(patterns: Sequence[str]) -> list[str]:
    """The public event types (no subject) any of ``patterns`` matches."""
    names: set[str] = set()
    for pattern in patterns:
        names.update(n for n in CATALOG.matching(pattern) if not CATALOG.get(n).user_scoped)
    return sorted(names)


async def catch_up(
    databases: Databases,
    hub: Hub,
    connection: Connection,
    after: uuid.UUID,
    *,
    limit: int,
    slack: dt.timedelta = DEFAULT_SLACK,
    pace: LoopShare | None = None,
) -> CatchUp:
    """What ``connection`` missed since the event ``after`` (see the module docstring).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the nexus database failed.
    """
    slack_ms = int(slack.total_seconds() * 1000)
    if id_millis(after) > time.time_ns() // 1_000_000 + slack_ms:
        return CatchUp([])
    recent = hub.recent_for(connection, after)
    if recent is not None:
        gap = Gap.TRUNCATED if len(recent) > limit else None
        return CatchUp(await _unkept(recent[-limit:], connection, pace), gap)
    bound = _floor(id_millis(after) - slack_ms).int
    history = await _history(databases, connection, after, bound, limit, pace)
    found = history.events
    # The recent events not archived yet; only those among the newest ``limit`` are decoded.
    unarchived = {
        entry[0]: entry
        for entry in hub.recent_wanted(connection)
        if entry[0] > bound and entry[0] not in found
    }
    for missed in (found, unarchived):
        missed.pop(after.int, None)
    total = len(found) + len(unarchived)
    newest = sorted(found.keys() | unarchived.keys())[-limit:]
    chosen = [key for key in newest if key in unarchived]
    decoded = await _unkept([unarchived[key] for key in chosen], connection, pace)
    if not connection.active:
        return CatchUp([])
    found.update(zip(chosen, decoded, strict=True))
    gap = Gap.TRUNCATED if history.more or total > limit else history.gap
    return CatchUp([found[key] for key in newest], gap)


@dataclass
class _History:
    #: What the history holds after the bound, newest ``limit + 1`` at most, by id (int).
    events: dict[int, Envelope]
    #: It holds more than ``limit``.
    more: bool
    gap: Gap | None


async def _history(
    databases: Databases,
    connection: Connection,
    after: uuid.UUID,
    bound: int,
    limit: int,
    pace: LoopShare | None,
) -> _History:
    """The newest ``limit + 1`` events of the history ``connection`` wants with ids above
    ``bound``, read :data:`PAGE` rows at a time (fewer once the connection has left)."""
    who = RECORDS.c.subject_user_id == connection.user_id
    types = public_types(sorted(connection.patterns))
    if types:
        who = or_(who, and_(RECORDS.c.subject_user_id.is_(None), RECORDS.c.type.in_(types)))
    query = select(RECORDS).where(RECORDS.c.event_id > uuid.UUID(int=bound), who)
    pace = pace or UNPACED
    found: dict[int, Envelope] = {}
    async with scoped_connection(databases.engine(ServiceName.NEXUS), SERVICE) as db:
        oldest = await db.scalar(select(RECORDS.c.event_id).order_by(RECORDS.c.event_id).limit(1))
        kept = await db.scalar(select(RECORDS.c.event_id).where(RECORDS.c.event_id == after))
        page = query
        while connection.active and len(found) <= limit:
            size = min(PAGE, limit + 1 - len(found))
            result = await db.execute(page.order_by(RECORDS.c.event_id.desc()).limit(size))
            started = pace.start()  # the rows are made and decoded on the event loop
            rows = list(result)
            for start in range(0, len(rows), SLICE):
                found.update(
                    (row.event_id.int, from_record(row)) for row in rows[start : start + SLICE]
                )
                started = await pace.pause(started)
            if len(rows) < size:
                break
            page = query.where(RECORDS.c.event_id < rows[-1].event_id)
    # The client's last event is gone and everything left is newer: pruned away.
    expired = kept is None and oldest is not None and oldest > after
    return _History(found, len(found) > limit, Gap.EXPIRED if expired else None)


async def _unkept(
    kept: Sequence[Kept], connection: Connection, pace: LoopShare | None
) -> list[Envelope]:
    """Decode ``kept``, :data:`SLICE` at a time with a pause between (empty once the
    connection has left)."""
    pace = pace or UNPACED
    started = pace.start()
    envelopes: list[Envelope] = []
    for start in range(0, len(kept), SLICE):
        if not connection.active:
            return []
        envelopes.extend(unkept(entry) for entry in kept[start : start + SLICE])
        started = await pace.pause(started)
    return envelopes
