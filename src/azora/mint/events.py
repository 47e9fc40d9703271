"""The ``finance.*`` events the ledger emits (EVENTS.md), built from what it wrote."""

from __future__ import annotations

import uuid
from typing import Any

from azora.db.outbox import EventMessage

SOURCE = "mint"

WALLET_CREATED = "finance.wallet.created"
TRANSACTION_COMPLETED = "finance.transaction.completed"
STAKE_CREATED = "finance.stake.created"
STAKE_RELEASED = "finance.stake.released"
MINING_REWARD = "finance.mining.reward"
UBI_DISTRIBUTED = "finance.ubi.distributed"


def finance_event(
    type_: str, payload: dict[str, Any], subject: uuid.UUID | None = None
) -> EventMessage:
    """An event from the mint about ``subject`` (``None`` for a public event)."""
    return EventMessage(type=type_, source=SOURCE, payload=payload, subject=subject)
