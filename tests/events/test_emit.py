"""``UnitOfWork.emit`` checks each event at the call: a bad one raises and is never written."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from azora.db.engines import Databases
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events import InvalidEventPayload, InvalidEventSubject, UnknownEventType
from azora.family.models import FamilyMember
from azora.types import ServiceName
from tests.events.outbox_rows import outbox_rows

USER = uuid.UUID("0190f0a2-0000-7000-8000-000000000002")
CONVERSATION = uuid.UUID("0190f0a2-0000-7000-8000-000000000010")
MEMBER = uuid.UUID("0190f0a2-0000-7000-8000-000000000011")


def _started(**payload: object) -> EventMessage:
    body = {"user_id": USER, "conversation_id": CONVERSATION, "member_id": MEMBER, **payload}
    return EventMessage("family.conversation.started", "family", body, subject=USER)


def _member(name: str) -> FamilyMember:
    return FamilyMember(name=name, role="tester", traits=[], background="b", relationships={})


async def _members(databases: Databases) -> int:
    async with databases.owner_engine(ServiceName.FAMILY).connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(FamilyMember)) or 0)


async def test_a_valid_event_is_written_with_its_normalised_payload(databases: Databases) -> None:
    event = _started()
    async with UnitOfWork(databases, ServiceName.FAMILY) as uow:
        uow.emit(event)
    [row] = await outbox_rows(databases, ServiceName.FAMILY)
    assert row["id"] == event.id
    assert row["type"] == "family.conversation.started"
    assert row["subject"] == USER
    assert row["payload"] == {
        "user_id": str(USER),
        "conversation_id": str(CONVERSATION),
        "member_id": str(MEMBER),
    }


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (
            EventMessage("family.conversation.exploded", "family", {}, subject=USER),
            UnknownEventType,
            "unknown event type 'family.conversation.exploded'",
        ),
        (_started(member_id="nobody"), InvalidEventPayload, "member_id: Input should be"),
        (_started(mood="sunny"), InvalidEventPayload, "mood: Extra inputs are not permitted"),
        (
            EventMessage("family.conversation.started", "family", _started().payload),
            InvalidEventSubject,
            "subject",
        ),
    ],
)
async def test_a_bad_event_raises_at_emit_and_rolls_the_change_back(
    databases: Databases, event: EventMessage, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        async with UnitOfWork(databases, ServiceName.FAMILY) as uow:
            uow.session.add(_member("Ada"))
            await uow.session.flush()
            uow.emit(event)
            pytest.fail("emit returned")  # pragma: no cover - emit must raise
    assert not uow.committed
    assert await outbox_rows(databases, ServiceName.FAMILY) == []
    assert await _members(databases) == 0


async def test_a_refused_event_is_not_collected(databases: Databases) -> None:
    """Caught at the call, a refused event leaves the transaction's other events intact."""
    async with UnitOfWork(databases, ServiceName.FAMILY) as uow:
        with pytest.raises(UnknownEventType):
            uow.emit(EventMessage("family.nothing.happened", "family", {}, subject=USER))
        uow.emit(_started())
    rows = await outbox_rows(databases, ServiceName.FAMILY)
    assert [row["type"] for row in rows] == ["family.conversation.started"]
