"""User accounts: registration, look-up (straight from the database or through the cache)
and profile changes.

Every change is one unit of work on the auth database: it writes an audit record, emits
its ``system.*`` event into the outbox and names the cache keys it makes stale, which are
forgotten once it committed. Reads through the cache use user-scoped keys, so one user's
entry can never answer another user's look-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from azora.auth.errors import EmailTaken, UserNotFound
from azora.auth.events import USER_REGISTERED as USER_REGISTERED
from azora.auth.events import registered_event as registered_event
from azora.auth.models import User, UserProfile
from azora.auth.passwords import hash_password
from azora.auth.schemas import NewUser, UserView
from azora.cache import Cache, CacheKey, KeySpace
from azora.db.engines import Databases
from azora.db.outbox import AuditRecord
from azora.db.reads import RowQuery
from azora.db.uow import UnitOfWork
from azora.errors import InvalidInput
from azora.types import ServiceName

USERS = KeySpace("auth.user", version=1)
#: How long a cached user lives without a write. Writes invalidate it at once, so the
#: TTL only bounds memory and any change made outside these operations.
USER_TTL_SECONDS = 3600.0

#: The columns of a ``UserView``.
VIEW_COLUMNS = (
    User.id,
    User.email,
    User.name,
    User.role,
    User.is_email_verified,
    User.is_active,
    User.created_at,
)

_USER_BY_ID = RowQuery(
    select(*VIEW_COLUMNS).where(User.id == bindparam("user_id"), User.deleted_at.is_(None))
)


def user_key(user_id: uuid.UUID) -> CacheKey:
    """The cache key of one user's view (scoped to that user)."""
    return USERS.user_key(user_id)


class UserService:
    """Accounts on the auth database (see the module docstring)."""

    def __init__(self, databases: Databases, *, cache: Cache | None = None) -> None:
        self._databases = databases
        self._cache = cache

    def unit_of_work(self) -> UnitOfWork:
        """A unit of work on the auth database, as the service, that invalidates through
        this cache (account records are written before and around authentication)."""
        return UnitOfWork(self._databases, ServiceName.AUTH, cache=self._cache, as_service=True)

    async def create_user(self, new: NewUser) -> UserView:
        """Register an account (with its profile) and announce ``system.user.registered``.

        The password is hashed but not checked against the password policy; public
        registration goes through ``AuthService.register``, which checks it.

        Raises:
            EmailTaken: the email address is in use (nothing is written).
        """
        # Argon2 takes tens of milliseconds of CPU: keep it off the event loop.
        password_hash = await asyncio.to_thread(hash_password, new.password)
        unit = UnitOfWork(self._databases, ServiceName.AUTH, cache=self._cache, as_service=True)
        async with taking_email(new.email), unit as uow:
            view = await insert_user(uow, new, password_hash)
        return view

    async def get_user(self, user_id: uuid.UUID) -> UserView:
        """The user, read from the database.

        Raises:
            UserNotFound: no such user, or the account was deleted.
        """
        view = await self._load(user_id)
        if view is None:
            raise UserNotFound(f"no user {user_id}")
        return view

    async def get_user_cached(self, user_id: uuid.UUID) -> UserView:
        """The user through the cache (never older than the last committed change).

        Raises:
            UserNotFound: no such user, or the account was deleted.
        """
        if self._cache is None:
            return await self.get_user(user_id)
        view: UserView | None = await self._cache.get_or_load(
            user_key(user_id), lambda: self._load(user_id), ttl=USER_TTL_SECONDS, schema=UserView
        )
        if view is None:
            raise UserNotFound(f"no user {user_id}")
        return view

    async def rename(self, user_id: uuid.UUID, name: str) -> UserView:
        """Change the user's display name.

        Raises:
            UserNotFound: no such user (nothing is written).
            InvalidInput: an empty or over-long name.
        """
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidInput("a name has 1 to 200 characters")
        async with UnitOfWork(
            self._databases, ServiceName.AUTH, cache=self._cache, user_id=user_id
        ) as uow:
            result = await uow.session.execute(
                update(User)
                .where(User.id == user_id, User.deleted_at.is_(None))
                .values(name=name)
                .returning(*VIEW_COLUMNS)
            )
            row = result.first()
            if row is None:
                raise UserNotFound(f"no user {user_id}")
            uow.audit(AuditRecord("auth.user.rename", "user", str(user_id), user_id))
            uow.invalidate(user_key(user_id))
        return UserView.model_validate(row._mapping)

    async def _load(self, user_id: uuid.UUID) -> UserView | None:
        row = await _USER_BY_ID.fetch(self._databases, ServiceName.AUTH, user_id=user_id)
        return None if row is None else UserView.model_validate(row)


async def insert_user(
    uow: UnitOfWork,
    new: NewUser,
    password_hash: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> UserView:
    """Add the account and its profile in ``uow``; audit it and emit ``system.user.registered``.

    Raises:
        EmailTaken: the email address is in use (the caller's unit of work rolls back).
    """
    taken = await uow.session.scalar(select(User.id).where(User.email == new.email))
    if taken is not None:
        raise EmailTaken(f"{new.email} is already registered")
    user = User(email=new.email, name=new.name, role=new.role, password_hash=password_hash)
    uow.session.add(user)
    uow.session.add(UserProfile(user_id=user.id, display_name=new.name.split()[0]))
    await uow.session.flush()
    view = UserView.model_validate(user)
    uow.audit(
        AuditRecord(
            "auth.user.register", "user", str(user.id), user.id, ip=ip, user_agent=user_agent
        )
    )
    uow.emit(registered_event(view))
    return view


@contextlib.asynccontextmanager
async def taking_email(email: str) -> AsyncIterator[None]:
    """Turn the unique-email violation of a concurrent registration into EmailTaken."""
    try:
        yield
    except IntegrityError as exc:  # a concurrent registration won the unique index
        if "email" in str(exc.orig).lower():
            raise EmailTaken(f"{email} is already registered") from None
        raise
