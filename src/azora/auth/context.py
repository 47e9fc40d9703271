"""What every auth operation works with: databases, cache, configuration, hasher, keys.

Operations open their unit of work through :meth:`AuthContext.for_user` (the caller's
own rows: row-level security on PostgreSQL lets the transaction see that user's rows
only) or :meth:`AuthContext.as_service` (before anyone is signed in: registration,
sign-in, refresh, password reset). Queries filter by user id themselves as well, which
is the whole ownership check on SQLite.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

from azora.auth.access import AccessTokens
from azora.auth.config import AuthConfig
from azora.auth.crypto import SecretBox
from azora.auth.passwords import Passwords
from azora.cache import Cache
from azora.db.engines import Databases
from azora.db.outbox import AuditRecord
from azora.db.uow import UnitOfWork
from azora.errors import InvalidInput
from azora.types import ServiceName

_USER_AGENT_MAX = 512


@dataclass(frozen=True)
class Client:
    """Where a request came from, as the audit log records it."""

    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, ip: str | None, user_agent: str | None) -> Client:
        """A normalised client: a canonical IP address, a printable, bounded user agent.

        Raises:
            InvalidInput: ``ip`` is not an IPv4 or IPv6 address.
        """
        address = None
        if ip is not None and ip.strip():
            try:
                address = str(ipaddress.ip_address(ip.strip()))
            except ValueError:
                raise InvalidInput(f"not an IP address: {ip[:64]!r}") from None
        agent = None
        if user_agent is not None:
            agent = "".join(c for c in user_agent if c.isprintable())[:_USER_AGENT_MAX] or None
        return cls(address, agent)

    def audit(
        self,
        action: str,
        *,
        user_id: uuid.UUID | None,
        resource: str = "user",
        resource_id: object = None,
        **metadata: Any,
    ) -> AuditRecord:
        """An audit record of ``action`` by this client (``metadata`` holds no secret)."""
        if resource_id is None and resource == "user" and user_id is not None:
            resource_id = user_id
        return AuditRecord(
            action=action,
            resource=resource,
            resource_id=None if resource_id is None else str(resource_id),
            user_id=user_id,
            ip=self.ip,
            user_agent=self.user_agent,
            metadata=metadata,
        )


@dataclass
class AuthContext:
    """The collaborators of the auth operations (see the module docstring)."""

    databases: Databases
    cache: Cache | None
    config: AuthConfig
    passwords: Passwords
    access: AccessTokens = field(init=False)
    totp_box: SecretBox = field(init=False)

    def __post_init__(self) -> None:
        self.access = AccessTokens(
            self.config.jwt_secret,
            retired=self.config.jwt_retired_secrets,
            issuer=self.config.issuer,
        )
        self.totp_box = SecretBox(self.config.encryption_key, "totp-secret")

    def now(self) -> dt.datetime:
        """The current time by the configured clock."""
        return self.config.now()

    def for_user(self, user_id: uuid.UUID) -> UnitOfWork:
        """A unit of work acting for ``user_id`` (their own rows only)."""
        return UnitOfWork(self.databases, ServiceName.AUTH, cache=self.cache, user_id=user_id)

    def as_service(self) -> UnitOfWork:
        """A unit of work acting as the auth service (pre-authentication, cross-user)."""
        return UnitOfWork(self.databases, ServiceName.AUTH, cache=self.cache, as_service=True)
