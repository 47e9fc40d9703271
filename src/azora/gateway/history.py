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
"""

from __future__ import annotations

import datetime as dt
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
from azora.gateway.hub import Connection, Hub
from azora.types import ServiceName

DEFAULT_SLACK = dt.timedelta(seconds=2)


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


def id_time(event_id: uuid.UUID) -> dt.datetime:
    """When a UUIDv7 was made (millisecond precision, UTC)."""
    return dt.datetime.fromtimestamp((event_id.int >> 80) / 1000, dt.UTC)


def id_floor(moment: dt.datetime) -> uuid.UUID:
    """The smallest UUIDv7 made at ``moment``'s millisecond: ids at or after it sort above."""
    milliseconds = max(int(moment.timestamp() * 1000), 0)
    return uuid.UUID(int=(milliseconds << 80) | (0x7 << 76) | (0b10 << 62))


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
) -> CatchUp:
    """What ``connection`` missed since the event ``after`` (see the module docstring).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the nexus database failed.
    """
    recent = hub.recent_for(connection, after)
    if recent is not None:
        return _bounded(recent, None, limit)
    bound = id_floor(id_time(after) - slack)
    who = RECORDS.c.subject_user_id == connection.user_id
    types = public_types(sorted(connection.patterns))
    if types:
        who = or_(who, and_(RECORDS.c.subject_user_id.is_(None), RECORDS.c.type.in_(types)))
    query = (
        select(RECORDS)
        .where(RECORDS.c.event_id > bound, who)
        .order_by(RECORDS.c.event_id.desc())
        .limit(limit + 1)
    )
    async with scoped_connection(databases.engine(ServiceName.NEXUS), SERVICE) as db:
        rows = list(await db.execute(query))
        oldest = await db.scalar(select(RECORDS.c.event_id).order_by(RECORDS.c.event_id).limit(1))
        kept = await db.scalar(select(RECORDS.c.event_id).where(RECORDS.c.event_id == after))
    found = {row.event_id: from_record(row) for row in rows}
    for envelope in hub.recent_wanted(connection):
        if envelope.id > bound:
            found.setdefault(envelope.id, envelope)
    found.pop(after, None)
    # The client's last event is gone and everything left is newer: pruned away.
    gap = Gap.EXPIRED if kept is None and oldest is not None and oldest > after else None
    if len(rows) > limit:
        gap = Gap.TRUNCATED
    return _bounded([found[key] for key in sorted(found)], gap, limit)


def _bounded(events: list[Envelope], gap: Gap | None, limit: int) -> CatchUp:
    if len(events) > limit:
        return CatchUp(events[-limit:], Gap.TRUNCATED)
    return CatchUp(events, gap)
