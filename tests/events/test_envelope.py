"""The envelope of EVENTS.md: a UUIDv7 id, a dotted type, UTC time, a schema version."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pydantic import ValidationError

from azora.events import Envelope

WHEN = "2026-03-01T12:00:00+02:00"


def test_an_envelope_gets_a_time_ordered_id_and_utc_time() -> None:
    first = Envelope(type="system.alert", source="nexus", payload={}, occurred_at=WHEN)
    second = Envelope(type="system.alert", source="nexus", payload={}, occurred_at=WHEN)
    assert first.id.version == 7
    assert first.id < second.id
    assert first.occurred_at == dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    assert first.occurred_at.utcoffset() == dt.timedelta(0)
    assert (first.subject, first.correlation_id, first.version) == (None, None, 1)
    assert first.model_dump(mode="json")["occurred_at"] == "2026-03-01T10:00:00Z"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", uuid.uuid4()),
        ("type", "Finance.Wallet"),
        ("type", "finance"),
        ("source", ""),
        ("occurred_at", "2026-03-01T12:00:00"),
        ("version", 0),
        ("version", "1"),
        ("surprise", 1),
    ],
)
def test_a_malformed_envelope_is_refused(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "type": "system.alert",
        "source": "nexus",
        "payload": {},
        "occurred_at": WHEN,
        field: value,
    }
    with pytest.raises(ValidationError, match=field):
        Envelope.model_validate(fields)


def test_the_seed_shape_maps_onto_the_envelope() -> None:
    seed = {"type": "system.alert", "payload": {"x": 1}, "source": "nexus", "timestamp": WHEN}
    envelope = Envelope.from_seed(seed)
    assert envelope.type == "system.alert"
    assert envelope.payload == {"x": 1}
    assert envelope.occurred_at == dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    with pytest.raises(ValidationError, match="type"):
        Envelope.from_seed({"payload": {}, "source": "nexus", "timestamp": WHEN})
