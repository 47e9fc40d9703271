"""The events the auth service emits (EVENTS.md, ``system`` domain).

Payloads name the user and what happened, never a password, token, code or secret.
"""

from __future__ import annotations

import uuid

from azora.auth.schemas import UserView
from azora.db.outbox import EventMessage
from azora.types import ServiceName

USER_REGISTERED = "system.user.registered"
USER_LOGIN = "system.user.login"
USER_MFA_ENABLED = "system.user.mfa_enabled"


def registered_event(user: UserView) -> EventMessage:
    """``system.user.registered`` for ``user``."""
    return EventMessage(
        type=USER_REGISTERED,
        source=ServiceName.AUTH.value,
        subject=user.id,
        payload={
            "user_id": str(user.id),
            "email": user.email,
            "name": user.name,
            "role": str(user.role),
        },
    )


def login_event(user_id: uuid.UUID, session_id: uuid.UUID, method: str) -> EventMessage:
    """``system.user.login``: ``user_id`` signed in (``method``: password, identity)."""
    return EventMessage(
        type=USER_LOGIN,
        source=ServiceName.AUTH.value,
        subject=user_id,
        payload={"user_id": str(user_id), "session_id": str(session_id), "method": method},
    )


def mfa_enabled_event(user_id: uuid.UUID) -> EventMessage:
    """``system.user.mfa_enabled``: ``user_id`` confirmed a second factor."""
    return EventMessage(
        type=USER_MFA_ENABLED,
        source=ServiceName.AUTH.value,
        subject=user_id,
        payload={"user_id": str(user_id), "method": "totp"},
    )
