"""``publish`` writes an event no change caused to the nexus outbox, checked like any other."""

from __future__ import annotations

import uuid

import pytest

from azora.db.engines import Databases
from azora.db.outbox import EventMessage
from azora.events import InvalidEventPayload, InvalidEventSubject, UnknownEventType
from azora.events.publish import publish
from azora.types import ServiceName
from tests.events.outbox_rows import outbox_rows

CORRELATION = uuid.UUID("0190f0a2-0000-7000-8000-0000000000aa")


async def test_publish_writes_one_validated_row_in_the_nexus_outbox(databases: Databases) -> None:
    alert = EventMessage(
        "system.alert",
        "nexus",
        {"severity": "warning", "message": "relay lagging", "details": {"lag_s": 12}},
        correlation_id=CORRELATION,
    )
    await publish(databases, alert)
    [row] = await outbox_rows(databases, ServiceName.NEXUS)
    assert (row["id"], row["type"], row["source"]) == (alert.id, "system.alert", "nexus")
    assert (row["subject"], row["correlation_id"], row["version"]) == (None, CORRELATION, 1)
    assert row["payload"] == {
        "severity": "warning",
        "message": "relay lagging",
        "component": None,
        "details": {"lag_s": 12},
    }
    assert row["occurred_at"] is not None
    assert await outbox_rows(databases, ServiceName.AUTH) == []


async def test_a_health_check_is_published_too(databases: Databases) -> None:
    check = {"component": "mint", "status": "degraded", "latency_ms": 250}
    await publish(databases, EventMessage("system.health.check", "nexus", check))
    [row] = await outbox_rows(databases, ServiceName.NEXUS)
    assert row["payload"] == {**check, "detail": None}


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (EventMessage("system.alarm", "nexus", {"message": "x"}), UnknownEventType),
        (EventMessage("system.alert", "nexus", {"severity": "loud", "message": "x"}),
         InvalidEventPayload),
        (EventMessage("system.alert", "nexus", {"severity": "info", "message": "x"},
                      subject=CORRELATION), InvalidEventSubject),
    ],
)  # fmt: skip
async def test_publish_refuses_a_bad_event_and_writes_nothing(
    databases: Databases, event: EventMessage, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await publish(databases, event)
    assert await outbox_rows(databases, ServiceName.NEXUS) == []
