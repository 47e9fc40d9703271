"""The event history the relay keeps in the nexus database (``event_records``), as envelopes."""

from __future__ import annotations

from typing import Any

from azora.events.envelope import Envelope
from azora.nexus.models import EventRecord

#: The history table, for queries.
RECORDS = EventRecord.__table__


def from_record(row: Any) -> Envelope:
    """The envelope an ``event_records`` row keeps (any row with its columns).

    Raises:
        pydantic.ValidationError: the row does not hold a valid envelope.
    """
    return Envelope(
        id=row.event_id,
        type=row.type,
        source=row.source,
        subject=row.subject_user_id,
        payload=row.payload,
        occurred_at=row.occurred_at,
        correlation_id=row.correlation_id,
        version=row.version,
    )
