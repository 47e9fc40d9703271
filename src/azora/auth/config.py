"""What the auth service is configured with: lifetimes, lockout policy, keys and a clock.

Built from :class:`~azora.settings.Settings` by :meth:`AuthConfig.from_settings`; tests
build one directly (short lifetimes, their own clock) instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from azora.db.columns import utcnow
from azora.settings import Settings

#: Where the service reads the time: a callable returning an aware UTC datetime.
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class LockoutPolicy:
    """Progressive lockout (see :mod:`azora.auth.lockout`)."""

    account_threshold: int = 5
    ip_threshold: int = 100
    window: dt.timedelta = dt.timedelta(hours=1)
    base: dt.timedelta = dt.timedelta(seconds=30)
    maximum: dt.timedelta = dt.timedelta(hours=1)

    def delay(self, failures: int, threshold: int) -> dt.timedelta:
        """How long ``failures`` consecutive failures lock out (zero below ``threshold``).

        ``base`` at the threshold, doubling with each further failure, at most ``maximum``.
        """
        if failures < threshold:
            return dt.timedelta(0)
        doublings = min(failures - threshold, 32)
        return min(self.base * (1 << doublings), self.maximum)


@dataclass(frozen=True)
class AuthConfig:
    """Everything the auth service needs to know besides its databases and cache."""

    jwt_secret: str = field(repr=False)
    encryption_key: str = field(repr=False)
    jwt_retired_secrets: tuple[str, ...] = field(default=(), repr=False)
    access_token_ttl: dt.timedelta = dt.timedelta(minutes=15)
    session_idle_ttl: dt.timedelta = dt.timedelta(days=7)
    session_max_age: dt.timedelta = dt.timedelta(days=30)
    email_verification_ttl: dt.timedelta = dt.timedelta(days=2)
    password_reset_ttl: dt.timedelta = dt.timedelta(minutes=30)
    lockout: LockoutPolicy = LockoutPolicy()
    #: How long a session's state stays in the cache without a change (changes
    #: invalidate it at once; this only bounds memory).
    session_cache_ttl: dt.timedelta = dt.timedelta(hours=1)
    #: A session's ``last_seen_at`` is written at most this often (sliding expiry).
    touch_interval: dt.timedelta = dt.timedelta(minutes=1)
    issuer: str = "azora"
    clock: Clock = utcnow

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utcnow) -> AuthConfig:
        """The configuration ``settings`` describe (``AZORA_JWT_*``, ``AZORA_AUTH_*``)."""
        seconds = dt.timedelta
        return cls(
            jwt_secret=settings.jwt_secret_value(),
            encryption_key=settings.encryption_key_value(),
            jwt_retired_secrets=settings.jwt_retired_secret_values(),
            access_token_ttl=seconds(seconds=settings.auth_access_token_ttl_s),
            session_idle_ttl=seconds(seconds=settings.auth_session_idle_ttl_s),
            session_max_age=seconds(seconds=settings.auth_session_max_age_s),
            email_verification_ttl=seconds(seconds=settings.auth_email_verification_ttl_s),
            password_reset_ttl=seconds(seconds=settings.auth_password_reset_ttl_s),
            lockout=LockoutPolicy(
                account_threshold=settings.auth_lockout_threshold,
                ip_threshold=settings.auth_ip_lockout_threshold,
                window=seconds(seconds=settings.auth_lockout_window_s),
                base=seconds(seconds=settings.auth_lockout_base_s),
                maximum=seconds(seconds=settings.auth_lockout_max_s),
            ),
            clock=clock,
        )

    def now(self) -> dt.datetime:
        """The current time by this configuration's clock."""
        return self.clock()
