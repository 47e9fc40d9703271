"""Multi-factor authentication: TOTP (RFC 6238) with one-time recovery codes.

* Enrolment stores a new secret, encrypted at rest (:mod:`azora.auth.crypto`), and
  returns its provisioning URI; the first valid code confirms it and returns ten
  recovery codes, shown once and stored as hashes.
* A code is accepted for the current 30-second step or one step either side (clock
  drift), and never twice: the step of the last accepted code is stored, and a code of
  that step or an earlier one is refused.
* A recovery code is accepted once: its hash leaves the stored list when used.

Checks that decide a write re-read the MFA row inside the writing transaction
(``FOR UPDATE`` on PostgreSQL; SQLite transactions are serialised), so two concurrent
uses of one code cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

import pyotp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from azora.auth.context import AuthContext, Client
from azora.auth.errors import (
    InvalidMFACode,
    MFAAlreadyEnabled,
    MFAEnrolmentMissing,
    MFANotEnabled,
    UserNotFound,
)
from azora.auth.events import mfa_enabled_event
from azora.auth.models import MFASettings, User
from azora.auth.schemas import MFAEnrolment

ISSUER = "Azora"
STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols: 5 bits each
_RECOVERY_GROUPS, _RECOVERY_GROUP = 4, 4  # 16 symbols = 80 bits
_TOTP_CODE = re.compile(r"^\d{6}$")


def current_step(now: dt.datetime) -> int:
    """The TOTP time step ``now`` falls in."""
    return int(now.timestamp()) // STEP_SECONDS


def totp_code(secret: str, step: int) -> str:
    """The code of ``secret`` for ``step`` (for tests and authenticator-like clients)."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).generate_otp(step)


def matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The step within the drift window whose code is ``code``, or None."""
    code = code.replace(" ", "")
    if not _TOTP_CODE.match(code):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = current_step(now)
    matched = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Compare every candidate (constant time, no early exit).
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched


def new_recovery_codes() -> list[str]:
    """Ten fresh recovery codes such as ``K7QX-M2PA-ZC4R-9HTW`` (80 random bits each)."""
    return [
        "-".join(
            "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_GROUP))
            for _ in range(_RECOVERY_GROUPS)
        )
        for _ in range(RECOVERY_CODES)
    ]


def recovery_code_hash(user_id: uuid.UUID, code: str) -> str:
    """What is stored for a recovery code (salted by the user id; spaces and dashes and
    case do not matter)."""
    normalised = re.sub(r"[\s-]", "", code).upper()
    return hashlib.sha256(f"{user_id}:{normalised}".encode()).hexdigest()


@dataclass(frozen=True)
class SecondFactor:
    """A second factor as presented: a TOTP code or a recovery code."""

    totp: str | None = None
    recovery_code: str | None = None

    @property
    def given(self) -> bool:
        """True when a code of either kind was presented."""
        return bool(self.totp or self.recovery_code)

    @property
    def method(self) -> str:
        """``totp`` or ``recovery_code`` (for the audit log)."""
        return "totp" if self.totp else "recovery_code"


async def locked_settings(session: AsyncSession, user_id: uuid.UUID) -> MFASettings | None:
    """The user's MFA row with its secret columns, locked for this transaction."""
    result = await session.scalars(
        select(MFASettings)
        .options(undefer(MFASettings.totp_secret), undefer(MFASettings.recovery_code_hashes))
        .where(MFASettings.user_id == user_id)
        .with_for_update()
    )
    return result.first()


def accept(ctx: AuthContext, settings: MFASettings, factor: SecondFactor) -> int | None:
    """Apply ``factor`` to ``settings`` if it is valid: record the TOTP step, or strike
    the recovery code off. The number of recovery codes left, or None if refused."""
    now = ctx.now()
    if factor.totp:
        if settings.totp_secret is None:
            return None
        secret = ctx.totp_box.decrypt(settings.totp_secret, owner=settings.user_id)
        step = matching_step(secret, factor.totp, now)
        if step is None or (
            settings.last_used_step is not None and step <= settings.last_used_step
        ):
            return None
        settings.last_used_step = step
        return len(settings.recovery_code_hashes)
    if factor.recovery_code:
        digest = recovery_code_hash(settings.user_id, factor.recovery_code)
        stored = list(settings.recovery_code_hashes)
        matches = [hmac.compare_digest(digest, candidate) for candidate in stored]
        if not any(matches):
            return None
        del stored[matches.index(True)]
        settings.recovery_code_hashes = stored  # a new list, so the change is tracked
        return len(stored)
    return None


async def begin_enrolment(ctx: AuthContext, user_id: uuid.UUID, client: Client) -> MFAEnrolment:
    """Start (or restart) TOTP enrolment: a new secret, stored encrypted, not yet enabled.

    Raises:
        UserNotFound: no such user.
        MFAAlreadyEnabled: a confirmed second factor exists (disable it first).
    """
    async with ctx.for_user(user_id) as uow:
        email = await uow.session.scalar(
            select(User.email).where(User.id == user_id, User.deleted_at.is_(None))
        )
        if email is None:
            raise UserNotFound(f"no user {user_id}")
        settings = await locked_settings(uow.session, user_id)
        if settings is not None and settings.enabled:
            raise MFAAlreadyEnabled("two-factor sign-in is already on", hint="disable it first")
        secret = pyotp.random_base32(length=32)
        sealed = ctx.totp_box.encrypt(secret, owner=user_id)
        if settings is None:
            uow.session.add(
                MFASettings(
                    user_id=user_id, totp_secret=sealed, enabled=False, recovery_code_hashes=[]
                )
            )
        else:
            settings.totp_secret, settings.last_used_step = sealed, None
        uow.audit(client.audit("auth.mfa.enrolment_started", user_id=user_id))
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=email, issuer_name=ISSUER)
    return MFAEnrolment(provisioning_uri=uri, secret=secret)


async def confirm(ctx: AuthContext, user_id: uuid.UUID, code: str, client: Client) -> list[str]:
    """Turn two-factor sign-in on with a first code; the recovery codes (shown once).

    Raises:
        MFAEnrolmentMissing: no enrolment was started.
        MFAAlreadyEnabled: it is on already.
        InvalidMFACode: the code is wrong or outside the drift window (nothing written).
    """
    async with ctx.for_user(user_id) as uow:
        settings = await locked_settings(uow.session, user_id)
        if settings is None or settings.totp_secret is None:
            raise MFAEnrolmentMissing("start the enrolment first")
        if settings.enabled:
            raise MFAAlreadyEnabled("two-factor sign-in is already on")
        if accept(ctx, settings, SecondFactor(totp=code)) is None:
            raise InvalidMFACode()
        codes = new_recovery_codes()
        settings.enabled, settings.enabled_at = True, ctx.now()
        settings.recovery_code_hashes = [recovery_code_hash(user_id, c) for c in codes]
        uow.emit(mfa_enabled_event(user_id))
        uow.audit(client.audit("auth.mfa.enabled", user_id=user_id, method="totp"))
    return codes


async def disable(ctx: AuthContext, user_id: uuid.UUID, code: str, client: Client) -> None:
    """Turn two-factor sign-in off; needs a current TOTP code or a recovery code.

    Raises:
        MFANotEnabled: it is not on.
        InvalidMFACode: the code is wrong or used (nothing written).
    """
    factor = (
        SecondFactor(totp=code)
        if _TOTP_CODE.match(code.replace(" ", ""))
        else SecondFactor(recovery_code=code)
    )
    async with ctx.for_user(user_id) as uow:
        settings = await locked_settings(uow.session, user_id)
        if settings is None or not settings.enabled:
            raise MFANotEnabled("two-factor sign-in is not on")
        if accept(ctx, settings, factor) is None:
            raise InvalidMFACode()
        settings.enabled, settings.enabled_at = False, None
        settings.totp_secret, settings.last_used_step = None, None
        settings.recovery_code_hashes = []
        uow.audit(client.audit("auth.mfa.disabled", user_id=user_id, method=factor.method))
