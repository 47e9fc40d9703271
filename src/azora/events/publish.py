"""Publishing events that no database change caused (``system.alert``,
``system.health.check``).

Such an event still goes through an outbox, the nexus database's, so the relay delivers
it exactly like the events services emit in their own transactions: in order, at least
once, archived in history. Nothing here talks to a bus.
"""

from __future__ import annotations

from azora.db.engines import Databases
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.types import ServiceName


async def publish(databases: Databases, event: EventMessage) -> None:
    """Write ``event`` to the nexus database's outbox in a unit of work of its own.

    The event is checked against :data:`azora.events.CATALOG` exactly as
    ``UnitOfWork.emit`` checks it; the unit of work runs as the service (it may write
    any user's event) and commits once. When this returns, the event is durably queued
    for the relay (delivery to a bus is the relay's job).

    Raises:
        UnknownEventType: ``event.type`` has no schema (nothing is written).
        InvalidEventPayload: the payload does not match it (nothing is written).
        InvalidEventSubject: a user-scoped type without a subject, or a public one with
            a subject (nothing is written).
    """
    async with UnitOfWork(databases, ServiceName.NEXUS, as_service=True) as uow:
        uow.emit(event)
