"""Progressive lockout, per account (email) and per IP address.

Every sign-in attempt is a ``login_attempts`` row. Before a password is checked:

* **per email**: the failures for that email since its last success, within the
  window, lock it once they reach ``account_threshold``: for ``base`` after the last
  failure, doubling with each further failure, at most ``maximum``. The rule is the same
  whether or not an account has the email, so a lockout does not reveal which emails
  are registered. For an existing account the count and the lock are mirrored into
  ``users.failed_login_count`` and ``users.locked_until`` (an operator may also set
  ``locked_until`` by hand).
* **per IP**: failures from the address within the window block it the same way from
  ``ip_threshold`` on (set higher: a school shares one address).

Attempts refused because of a lock are audited but not counted, so waiting out a lock
always gives the owner a fresh chance.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass

from sqlalchemy import false, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from azora.auth.config import LockoutPolicy
from azora.auth.models import LoginAttempt


@dataclass(frozen=True)
class AttemptStats:
    """Recent failures of one email and of one address."""

    email_failures: int
    email_last_failure: dt.datetime | None
    ip_failures: int
    ip_last_failure: dt.datetime | None


async def recent_failures(
    session: AsyncSession, email: str, ip: str | None, *, since: dt.datetime
) -> AttemptStats:
    """Failures of ``email`` (since its last success) and of ``ip`` after ``since``."""
    last_success = (
        select(func.max(LoginAttempt.created_at))
        .where(LoginAttempt.email == email, LoginAttempt.succeeded == true())
        .scalar_subquery()
    )
    email_row = (
        await session.execute(
            select(func.count(), func.max(LoginAttempt.created_at)).where(
                LoginAttempt.email == email,
                LoginAttempt.succeeded == false(),
                LoginAttempt.created_at > func.coalesce(last_success, since),
                LoginAttempt.created_at > since,
            )
        )
    ).one()
    ip_count, ip_last = 0, None
    if ip is not None:
        ip_row = (
            await session.execute(
                select(func.count(), func.max(LoginAttempt.created_at)).where(
                    LoginAttempt.ip == ip,
                    LoginAttempt.succeeded == false(),
                    LoginAttempt.created_at > since,
                )
            )
        ).one()
        ip_count, ip_last = int(ip_row[0]), ip_row[1]
    return AttemptStats(int(email_row[0]), email_row[1], ip_count, ip_last)


def locked_until(
    policy: LockoutPolicy,
    stats: AttemptStats,
    *,
    account_locked_until: dt.datetime | None,
    now: dt.datetime,
) -> dt.datetime | None:
    """When sign-in for this email from this address opens again, or None if it is open."""
    candidates = [account_locked_until]
    if stats.email_last_failure is not None:
        delay = policy.delay(stats.email_failures, policy.account_threshold)
        candidates.append(stats.email_last_failure + delay if delay else None)
    if stats.ip_last_failure is not None:
        delay = policy.delay(stats.ip_failures, policy.ip_threshold)
        candidates.append(stats.ip_last_failure + delay if delay else None)
    latest = max((c for c in candidates if c is not None), default=None)
    return latest if latest is not None and latest > now else None


def retry_after(until: dt.datetime, now: dt.datetime) -> int:
    """Whole seconds until ``until`` (at least 1)."""
    return max(1, math.ceil((until - now).total_seconds()))


def record(
    session: AsyncSession,
    email: str,
    user_id: uuid.UUID | None,
    ip: str | None,
    *,
    succeeded: bool,
    now: dt.datetime,
) -> None:
    """Add the attempt's row."""
    session.add(
        LoginAttempt(email=email, user_id=user_id, ip=ip, succeeded=succeeded, created_at=now)
    )
