"""Time-ordered identifiers (UUIDv7): sortable by creation time, unique without coordination."""

from __future__ import annotations

import uuid

from uuid_utils import compat


def new_id() -> uuid.UUID:
    """A fresh UUIDv7; later calls in one process sort after earlier ones."""
    return compat.uuid7()
