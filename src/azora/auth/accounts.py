"""Accounts: registration, email verification, password reset and change.

Passwords are checked against the policy (:mod:`azora.auth.policy`) and hashed before
any transaction opens; tokens are single-use and stored as hashes
(:mod:`azora.auth.onetime`). A password reset or change signs the account out
everywhere.
"""

from __future__ import annotations

import uuid

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from azora.auth import onetime, sessions
from azora.auth.context import AuthContext, Client
from azora.auth.errors import InvalidCredentials, UserNotFound
from azora.auth.login import normalise_email
from azora.auth.models import Role, TokenKind, User
from azora.auth.policy import check_password
from azora.auth.schemas import NewUser, Registration, UserView
from azora.auth.users import VIEW_COLUMNS, insert_user, taking_email, user_key
from azora.errors import InvalidInput


def _readable(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "input"
    return f"{field}: {error['msg']}"


async def register(
    ctx: AuthContext, email: str, password: str, name: str, role: Role | str, client: Client
) -> Registration:
    """Create an account and its email verification token.

    Emits ``system.user.registered``; audits the registration.

    Raises:
        WeakPassword: the password breaks the policy.
        InvalidInput: malformed email, empty name, or a role that cannot register.
        EmailTaken: the email is in use (case does not matter).
    Nothing is written when any of these is raised.
    """
    check_password(password, email=normalise_email(email))
    try:
        new = NewUser(email=email, password=password, name=name, role=role)
    except ValidationError as exc:
        raise InvalidInput(_readable(exc)) from None
    password_hash = await ctx.passwords.hash(password)
    now = ctx.now()
    async with taking_email(new.email), ctx.as_service() as uow:
        user = await insert_user(
            uow, new, password_hash, ip=client.ip, user_agent=client.user_agent
        )
        token = onetime.issue(
            uow.session,
            user.id,
            TokenKind.EMAIL_VERIFICATION,
            now=now,
            expires_at=now + ctx.config.email_verification_ttl,
        )
        uow.audit(client.audit("auth.email.verification_issued", user_id=user.id))
    return Registration(user=user, verification_token=token)


async def issue_email_verification(
    ctx: AuthContext, user_id: uuid.UUID, client: Client
) -> str | None:
    """A new verification token for an unverified account (older ones are withdrawn);
    None when the address is verified already.

    Raises:
        UserNotFound: no such user.
    """
    now = ctx.now()
    async with ctx.as_service() as uow:
        verified = await uow.session.scalar(
            select(User.is_email_verified).where(User.id == user_id, User.deleted_at.is_(None))
        )
        if verified is None:
            raise UserNotFound(f"no user {user_id}")
        if verified:
            return None
        await onetime.withdraw(uow.session, user_id, TokenKind.EMAIL_VERIFICATION, now=now)
        token = onetime.issue(
            uow.session,
            user_id,
            TokenKind.EMAIL_VERIFICATION,
            now=now,
            expires_at=now + ctx.config.email_verification_ttl,
        )
        uow.audit(client.audit("auth.email.verification_issued", user_id=user_id))
    return token


async def verify_email(ctx: AuthContext, token: str, client: Client) -> UserView:
    """Mark the token's account as having a verified email; the account.

    Raises:
        TokenExpired: the token's time is up.
        InvalidToken: unknown, used or withdrawn token.
    """
    async with ctx.as_service() as uow:
        user_id = await onetime.consume(
            uow.session, token, TokenKind.EMAIL_VERIFICATION, now=ctx.now()
        )
        row = (
            await uow.session.execute(
                update(User)
                .where(User.id == user_id)
                .values(is_email_verified=True)
                .returning(*VIEW_COLUMNS)
            )
        ).one()
        uow.audit(client.audit("auth.email.verified", user_id=user_id))
        uow.invalidate(user_key(user_id))
    return UserView.model_validate(row._mapping)


async def request_password_reset(ctx: AuthContext, email: str, client: Client) -> str | None:
    """A password reset token for the account with ``email`` (to send to that address),
    or None when there is no such active account. Earlier reset tokens are withdrawn.

    The caller answers the same way in both cases, so the answer reveals nothing.
    """
    address = normalise_email(email)
    now = ctx.now()
    async with ctx.as_service() as uow:
        user_id = await uow.session.scalar(
            select(User.id).where(
                User.email == address, User.deleted_at.is_(None), User.is_active.is_(True)
            )
        )
        uow.audit(
            client.audit(
                "auth.password.reset_requested", user_id=user_id, known=user_id is not None
            )
        )
        if user_id is None:
            return None
        await onetime.withdraw(uow.session, user_id, TokenKind.PASSWORD_RESET, now=now)
        token = onetime.issue(
            uow.session,
            user_id,
            TokenKind.PASSWORD_RESET,
            now=now,
            expires_at=now + ctx.config.password_reset_ttl,
        )
    return token


async def reset_password(ctx: AuthContext, token: str, new_password: str, client: Client) -> int:
    """Set a new password with a reset token; sign the account out everywhere.

    Returns the number of sessions revoked. Also lifts a lockout of the account.

    Raises:
        TokenExpired: the token's time is up.
        InvalidToken: unknown, used or withdrawn token.
        WeakPassword: the new password breaks the policy.
    Nothing is written when any of these is raised.
    """
    async with ctx.as_service() as uow:
        found = await onetime.lookup(uow.session, token, TokenKind.PASSWORD_RESET)
        record = onetime.usable(found, TokenKind.PASSWORD_RESET, now=ctx.now())
        email = await uow.session.scalar(select(User.email).where(User.id == record.user_id))
    if email is None:
        raise UserNotFound("the account of this reset token no longer exists")
    check_password(new_password, email=email)
    password_hash = await ctx.passwords.hash(new_password)
    async with ctx.as_service() as uow:
        now = ctx.now()
        user_id = await onetime.consume(uow.session, token, TokenKind.PASSWORD_RESET, now=now)
        await _set_password(uow.session, user_id, password_hash)
        revoked = await sessions.revoke_all_in(uow, user_id, now=now)
        uow.audit(client.audit("auth.password.reset", user_id=user_id, sessions_revoked=revoked))
    return revoked


async def change_password(
    ctx: AuthContext,
    user_id: uuid.UUID,
    current_password: str,
    new_password: str,
    client: Client,
    *,
    keep_session: uuid.UUID | None = None,
) -> int:
    """Change one's own password (the current one is required); sign out every other
    session (``keep_session`` stays). Returns the number of sessions revoked.

    Raises:
        UserNotFound: no such user.
        InvalidCredentials: the current password is wrong.
        WeakPassword: the new password breaks the policy.
    Nothing is written when any of these is raised.
    """
    async with ctx.for_user(user_id) as uow:
        row = (
            await uow.session.execute(
                select(User.email, User.password_hash).where(
                    User.id == user_id, User.deleted_at.is_(None)
                )
            )
        ).first()
    if row is None:
        raise UserNotFound(f"no user {user_id}")
    email, stored = row
    if not await ctx.passwords.verify(stored, current_password[:1024]):
        raise InvalidCredentials("the current password is not correct")
    check_password(new_password, email=email)
    password_hash = await ctx.passwords.hash(new_password)
    async with ctx.for_user(user_id) as uow:
        now = ctx.now()
        await _set_password(uow.session, user_id, password_hash)
        revoked = await sessions.revoke_all_in(uow, user_id, now=now, keep=keep_session)
        uow.audit(client.audit("auth.password.changed", user_id=user_id, sessions_revoked=revoked))
    return revoked


async def set_password(ctx: AuthContext, email: str, new_password: str, client: Client) -> int:
    """Set the password of the account with ``email`` as an operator (no current password
    or token needed); sign the account out everywhere and lift its lockout. Returns the
    number of sessions revoked.

    Raises:
        UserNotFound: no active account has this email.
        WeakPassword: the new password breaks the policy.
    Nothing is written when either is raised.
    """
    address = normalise_email(email)
    check_password(new_password, email=address)
    password_hash = await ctx.passwords.hash(new_password)
    async with ctx.as_service() as uow:
        user_id = await uow.session.scalar(
            select(User.id).where(User.email == address, User.deleted_at.is_(None))
        )
        if user_id is None:
            raise UserNotFound(f"no account has the email {address}")
        await _set_password(uow.session, user_id, password_hash)
        revoked = await sessions.revoke_all_in(uow, user_id, now=ctx.now())
        uow.audit(client.audit("auth.password.set", user_id=user_id, sessions_revoked=revoked))
    return revoked


async def _set_password(session: AsyncSession, user_id: uuid.UUID, password_hash: str) -> None:
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(password_hash=password_hash, failed_login_count=0, locked_until=None)
    )
