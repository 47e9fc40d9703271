"""Signing in: with email and password, or through a linked external identity.

A sign-in runs in three steps so that the slow password check holds no transaction:

1. read the account, its MFA switch and the recent failures (one short transaction);
   refuse at once while the email or the address is locked out (:mod:`azora.auth.lockout`);
2. check the password with Argon2id, in a worker thread. An unknown email is checked
   against a dummy hash, so it costs the same time and gets the same answer
   (:class:`~azora.auth.errors.InvalidCredentials`) as a wrong password;
3. one transaction records the outcome: the attempt, the lockout counters, the audit
   rows, and on success the session, its tokens, the ``system.user.login`` event and a
   transparent re-hash when the stored hash uses outdated Argon2 parameters.

With two-factor sign-in on, a right password without a code raises
:class:`~azora.auth.errors.MFARequired` and issues nothing; a wrong code counts as a
failed attempt.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import Select, select, update

from azora.auth import lockout, mfa
from azora.auth.context import AuthContext, Client
from azora.auth.errors import (
    AuthError,
    IdentityNotLinked,
    InvalidCredentials,
    MFARequired,
    TooManyAttempts,
)
from azora.auth.events import login_event
from azora.auth.models import MFASettings, OAuthAccount, Role, User
from azora.auth.schemas import SignIn, provider_name, provider_subject
from azora.auth.sessions import open_session
from azora.db.uow import UnitOfWork
from azora.errors import InvalidInput

#: Longer input cannot be anyone's password (the policy stops at 128 characters) and is
#: cut so that a huge body cannot buy a long hash computation.
_PASSWORD_INPUT_MAX = 1024
_EMAIL_MAX = 320


#: The columns sign-in reads (``MFASettings.enabled`` is None without an MFA row).
_AccountQuery = Select[uuid.UUID, str, Role, bool, str, dt.datetime | None, bool]


@dataclass(frozen=True)
class Account:
    """What sign-in needs to know about an account."""

    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    password_hash: str
    locked_until: dt.datetime | None
    mfa_enabled: bool


def _accounts() -> _AccountQuery:
    return (
        select(
            User.id,
            User.email,
            User.role,
            User.is_active,
            User.password_hash,
            User.locked_until,
            MFASettings.enabled,
        )
        .outerjoin(MFASettings, MFASettings.user_id == User.id)
        .where(User.deleted_at.is_(None))
    )


async def _one(uow: UnitOfWork, query: _AccountQuery) -> Account | None:
    row = (await uow.session.execute(query)).first()
    if row is None:
        return None
    user_id, email, role, active, password_hash, locked, mfa_on = row
    return Account(user_id, email, role, active, password_hash, locked, bool(mfa_on))


def normalise_email(email: str) -> str:
    """The form emails are stored and compared in: trimmed, lower-case."""
    return email.strip().lower()[:_EMAIL_MAX]


async def login(
    ctx: AuthContext, email: str, password: str, client: Client, factor: mfa.SecondFactor
) -> SignIn:
    """Sign in with email and password (and the second factor when it is on).

    Raises:
        TooManyAttempts: the email or the address is locked out (nothing is checked).
        InvalidCredentials: unknown email, wrong password, inactive account, or a wrong
            second factor (the failure is recorded and counts towards a lockout).
        MFARequired: the password is right but the account needs its second factor.
    """
    address = normalise_email(email)
    now = ctx.now()
    policy = ctx.config.lockout
    async with ctx.as_service() as uow:
        account = await _one(uow, _accounts().where(User.email == address))
        stats = await lockout.recent_failures(
            uow.session, address, client.ip, since=now - policy.window
        )
        blocked = _blocked(ctx, uow, account, stats, client, now)
    if blocked is not None:
        raise blocked
    password = password[:_PASSWORD_INPUT_MAX]
    if account is None:
        await ctx.passwords.verify_dummy(password)
        reason: str | None = "unknown_email"
    elif not await ctx.passwords.verify(account.password_hash, password):
        reason = "bad_password"
    else:
        reason = None if account.is_active else "inactive"
    new_hash = None
    if reason is None and account is not None and ctx.passwords.needs_rehash(account.password_hash):
        new_hash = await ctx.passwords.hash(password)
    return await _finish(
        ctx,
        address,
        account,
        stats,
        client,
        factor,
        reason=reason,
        method="password",
        new_hash=new_hash,
    )


async def login_with_identity(
    ctx: AuthContext, provider: str, subject: str, client: Client, factor: mfa.SecondFactor
) -> SignIn:
    """Sign in through a linked external identity: the same tokens as a password sign-in.

    The provider has already authenticated the person (no provider is called here).

    Raises:
        InvalidInput: a malformed provider or subject.
        IdentityNotLinked: no account has that identity.
        TooManyAttempts: the account or the address is locked out.
        InvalidCredentials: inactive account, or a wrong second factor.
        MFARequired: the account needs its second factor.
    """
    try:
        provider, subject = provider_name(provider), provider_subject(subject)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    now = ctx.now()
    policy = ctx.config.lockout
    async with ctx.as_service() as uow:
        account = await _one(
            uow,
            _accounts()
            .join(OAuthAccount, OAuthAccount.user_id == User.id)
            .where(OAuthAccount.provider == provider, OAuthAccount.provider_subject == subject),
        )
        if account is None:
            uow.audit(
                client.audit(
                    "auth.identity.login_failed",
                    user_id=None,
                    resource="identity",
                    resource_id=provider,
                    reason="not_linked",
                )
            )
            refused: AuthError | None = IdentityNotLinked(
                f"no account is linked to this {provider} identity"
            )
        else:
            stats = await lockout.recent_failures(
                uow.session, account.email, client.ip, since=now - policy.window
            )
            refused = _blocked(ctx, uow, account, stats, client, now)
    if refused is not None:
        raise refused
    assert account is not None
    reason = None if account.is_active else "inactive"
    return await _finish(
        ctx,
        account.email,
        account,
        stats,
        client,
        factor,
        reason=reason,
        method=f"identity:{provider}",
    )


def _blocked(
    ctx: AuthContext,
    uow: UnitOfWork,
    account: Account | None,
    stats: lockout.AttemptStats,
    client: Client,
    now: dt.datetime,
) -> TooManyAttempts | None:
    until = lockout.locked_until(
        ctx.config.lockout,
        stats,
        account_locked_until=account.locked_until if account else None,
        now=now,
    )
    if until is None:
        return None
    wait = lockout.retry_after(until, now)
    uow.audit(
        client.audit(
            "auth.login.blocked", user_id=account.id if account else None, retry_after_s=wait
        )
    )
    return TooManyAttempts(wait)


async def _finish(
    ctx: AuthContext,
    email: str,
    account: Account | None,
    stats: lockout.AttemptStats,
    client: Client,
    factor: mfa.SecondFactor,
    *,
    reason: str | None,
    method: str,
    new_hash: str | None = None,
) -> SignIn:
    """Step 3 (see the module docstring): record the outcome; raise after committing it."""
    failure: AuthError | None = None
    signed: SignIn | None = None
    async with ctx.as_service() as uow:
        second_factor = None
        if reason is None and account is not None and account.mfa_enabled:
            if not factor.given:
                uow.audit(
                    client.audit("auth.login.mfa_required", user_id=account.id, method=method)
                )
                failure = MFARequired()
            else:
                settings = await mfa.locked_settings(uow.session, account.id)
                left = mfa.accept(ctx, settings, factor) if settings and settings.enabled else None
                if left is None:
                    reason = "bad_second_factor"
                else:
                    second_factor = factor.method
                    if factor.recovery_code:
                        uow.audit(
                            client.audit(
                                "auth.mfa.recovery_code_used", user_id=account.id, remaining=left
                            )
                        )
        if failure is None and (reason is not None or account is None):
            await _record_failure(ctx, uow, email, account, stats, client, reason, method)
            failure = (
                InvalidCredentials("the one-time or recovery code is not valid")
                if reason == "bad_second_factor"
                else InvalidCredentials()
            )
        elif failure is None and account is not None:
            signed = await _record_success(
                ctx, uow, email, account, client, method, second_factor, new_hash
            )
    if failure is not None:
        raise failure
    assert signed is not None
    return signed


async def _record_failure(
    ctx: AuthContext,
    uow: UnitOfWork,
    email: str,
    account: Account | None,
    stats: lockout.AttemptStats,
    client: Client,
    reason: str | None,
    method: str,
) -> None:
    now, policy = ctx.now(), ctx.config.lockout
    user_id = account.id if account else None
    lockout.record(uow.session, email, user_id, client.ip, succeeded=False, now=now)
    failures = stats.email_failures + 1
    if account is not None:
        lock = policy.delay(failures, policy.account_threshold)
        values: dict[str, object] = {"failed_login_count": failures}
        if lock:
            values["locked_until"] = now + lock
        await uow.session.execute(update(User).where(User.id == account.id).values(**values))
        if lock:
            uow.audit(
                client.audit(
                    "auth.account.locked",
                    user_id=account.id,
                    failures=failures,
                    locked_s=int(lock.total_seconds()),
                )
            )
    if client.ip is not None:
        block = policy.delay(stats.ip_failures + 1, policy.ip_threshold)
        if block:
            uow.audit(
                client.audit(
                    "auth.ip.blocked",
                    user_id=None,
                    resource="ip",
                    resource_id=client.ip,
                    failures=stats.ip_failures + 1,
                    blocked_s=int(block.total_seconds()),
                )
            )
    uow.audit(client.audit("auth.login.failed", user_id=user_id, reason=reason, method=method))


async def _record_success(
    ctx: AuthContext,
    uow: UnitOfWork,
    email: str,
    account: Account,
    client: Client,
    method: str,
    second_factor: str | None,
    new_hash: str | None,
) -> SignIn:
    now = ctx.now()
    lockout.record(uow.session, email, account.id, client.ip, succeeded=True, now=now)
    values: dict[str, object] = {
        "failed_login_count": 0,
        "locked_until": None,
        "last_login_at": now,
    }
    if new_hash is not None:
        values["password_hash"] = new_hash
        uow.audit(client.audit("auth.password.rehashed", user_id=account.id))
    await uow.session.execute(update(User).where(User.id == account.id).values(**values))
    signed = open_session(ctx, uow, account.id, account.role, client)
    uow.emit(login_event(account.id, signed.session_id, method.partition(":")[0]))
    uow.audit(
        client.audit(
            "auth.login.succeeded",
            user_id=account.id,
            method=method,
            session_id=str(signed.session_id),
            second_factor=second_factor,
        )
    )
    return signed
