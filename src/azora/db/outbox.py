"""Events and audit records a unit of work collects and writes with its own transaction.

An event exists if and only if the change that caused it committed: the unit of work
inserts what was emitted into its database's ``outbox_events`` just before it commits
(delivery to a bus is the event-bus relay's job). Audit records go to ``audit_logs``
the same way.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.columns import utcnow
from azora.db.ids import new_id
from azora.db.infra import AUDIT_TABLE, OUTBOX_TABLE
from azora.db.statements import core_execute
from azora.events.catalog import CATALOG


@dataclass(frozen=True)
class EventMessage:
    """A domain event as emitted: ``type`` is ``<domain>.<entity>.<verb>`` (EVENTS.md)."""

    type: str
    source: str
    payload: dict[str, Any]
    subject: uuid.UUID | None = None
    correlation_id: uuid.UUID | None = None
    version: int = 1
    id: uuid.UUID = field(default_factory=new_id)


@dataclass(frozen=True)
class AuditRecord:
    """One sensitive operation: who did what to which resource."""

    action: str
    resource: str
    resource_id: str | None = None
    user_id: uuid.UUID | None = None
    ip: str | None = None
    user_agent: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


async def write_outbox(session: AsyncSession, events: list[EventMessage]) -> None:
    """Insert ``events`` into the session's ``outbox_events`` (one statement)."""
    if not events:
        return
    now = utcnow()
    await core_execute(
        session,
        insert(OUTBOX_TABLE),
        [
            {
                "id": e.id,
                "type": e.type,
                "source": e.source,
                "subject": e.subject,
                "payload": e.payload,
                "correlation_id": e.correlation_id,
                "version": e.version,
                "occurred_at": now,
                "attempts": 0,
                "created_at": now,
            }
            for e in events
        ],
    )


async def write_audit(session: AsyncSession, records: list[AuditRecord]) -> None:
    """Insert ``records`` into the session's ``audit_logs`` (one statement)."""
    if not records:
        return
    now = utcnow()
    await core_execute(
        session,
        insert(AUDIT_TABLE),
        [
            {
                "id": new_id(),
                "user_id": r.user_id,
                "action": r.action,
                "resource": r.resource,
                "resource_id": r.resource_id,
                "ip": r.ip,
                "user_agent": r.user_agent,
                "metadata": r.metadata,
                "created_at": now,
            }
            for r in records
        ],
    )


def events_json(events: list[EventMessage]) -> str:
    """``events`` as the JSON array of outbox rows a server-side function inserts.

    Keys are the ``outbox_events`` columns the emitter decides (``id``, ``type``,
    ``source``, ``subject``, ``payload``, ``correlation_id``, ``version``); the function
    stamps ``occurred_at`` and ``created_at`` with its transaction's time. Each event is
    checked against its schema first, as ``UnitOfWork.emit`` does.

    Raises:
        UnknownEventType, InvalidEventPayload, InvalidEventSubject: an event does not
            match :data:`azora.events.CATALOG`.
    """
    return json.dumps(
        [
            {
                "id": str(e.id),
                "type": e.type,
                "source": e.source,
                "subject": str(e.subject) if e.subject else None,
                "payload": CATALOG.validate_event(
                    e.type, e.payload, subject=e.subject, version=e.version
                ),
                "correlation_id": str(e.correlation_id) if e.correlation_id else None,
                "version": e.version,
            }
            for e in events
        ],
        default=str,
    )


def audit_json(records: list[AuditRecord]) -> str:
    """``records`` as the JSON array of audit rows a server-side function inserts."""
    return json.dumps(
        [
            {
                "id": str(new_id()),
                "user_id": str(r.user_id) if r.user_id else None,
                "action": r.action,
                "resource": r.resource,
                "resource_id": r.resource_id,
                "ip": r.ip,
                "user_agent": r.user_agent,
                "metadata": r.metadata,
            }
            for r in records
        ],
        default=str,
    )
