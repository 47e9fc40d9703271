"""Notifications' reactions to other services' events (the sagas of EVENTS.md).

- ``system.user.registered``: a welcome notification.
- ``finance.mining.reward``: a notification of the reward earned.

Each writes one :class:`~azora.notifications.models.Notification` and announces it with
``notification.created``, in the consumer's transaction (see :mod:`azora.events.consumers`).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events.catalog import MiningReward, UserRegistered
from azora.events.consumers import Consumer, consumer
from azora.events.envelope import Envelope
from azora.notifications.models import Notification, NotificationKind
from azora.types import ServiceName

NOTIFICATION_CREATED = "notification.created"


def readable(amount: str) -> str:
    """An exact amount without trailing zeros (``"10.00000000"`` → ``"10"``)."""
    return f"{Decimal(amount).normalize():f}"


async def notify(
    uow: UnitOfWork,
    user_id: uuid.UUID,
    kind: NotificationKind,
    title: str,
    message: str,
    data: dict[str, Any],
    *,
    correlation_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Write a notification for ``user_id`` in ``uow`` and announce it; returns its id."""
    notification = Notification(user_id=user_id, kind=kind, title=title, message=message, data=data)
    uow.session.add(notification)
    await uow.session.flush()
    uow.emit(
        EventMessage(
            type=NOTIFICATION_CREATED,
            source=ServiceName.NOTIFICATIONS.value,
            subject=user_id,
            correlation_id=correlation_id,
            payload={
                "user_id": str(user_id),
                "notification_id": str(notification.id),
                "kind": str(kind),
                "title": title,
            },
        )
    )
    return notification.id


@consumer("notifications-welcome", "system.user.registered", service=ServiceName.NOTIFICATIONS)
async def welcome(uow: UnitOfWork, event: Envelope) -> None:
    """Welcome a newly registered user."""
    payload = UserRegistered.model_validate(event.payload)
    await notify(
        uow,
        payload.user_id,
        NotificationKind.INFO,
        "Welcome to Azora",
        f"Hello {payload.name}, your account is ready.",
        {"event_id": str(event.id)},
        correlation_id=event.correlation_id,
    )


@consumer("notifications-rewards", "finance.mining.reward", service=ServiceName.NOTIFICATIONS)
async def reward_earned(uow: UnitOfWork, event: Envelope) -> None:
    """Tell a learner about the Proof-of-Knowledge reward they earned."""
    reward = MiningReward.model_validate(event.payload)
    await notify(
        uow,
        reward.user_id,
        NotificationKind.SUCCESS,
        f"You earned {readable(reward.amount)} {reward.currency}",
        f"Proof-of-Knowledge reward for {reward.activity.replace('_', ' ')}.",
        {
            "event_id": str(event.id),
            "transaction_id": str(reward.transaction_id),
            "amount": reward.amount,
            "currency": str(reward.currency),
        },
        correlation_id=event.correlation_id,
    )


#: Notifications' consumers, for :mod:`azora.sagas`.
CONSUMERS: tuple[Consumer, ...] = (welcome, reward_earned)
