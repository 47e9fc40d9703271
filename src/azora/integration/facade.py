"""The integration facade (see the package docstring)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

from pydantic import TypeAdapter, ValidationError

from azora.auth.errors import WeakPassword
from azora.auth.models import Role
from azora.auth.policy import check_password
from azora.auth.schemas import NewUser, UserView
from azora.auth.users import UserService
from azora.cache import Cache, open_cache
from azora.db.engines import Databases
from azora.education.courses import EducationService
from azora.education.schemas import CourseView, EnrollmentView
from azora.errors import InvalidInput
from azora.mint.schemas import TransactionView, WalletView
from azora.mint.service import MintService
from azora.settings import Settings
from azora.types import Currency

logger = logging.getLogger(__name__)

_UUID = TypeAdapter(uuid.UUID)


def _id(value: uuid.UUID | str, what: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return _UUID.validate_python(value)
    except ValidationError:
        raise InvalidInput(f"{what} is not a valid id: {value!r}") from None


def _currency(value: Currency | str) -> Currency:
    try:
        return Currency(value)
    except ValueError:
        known = ", ".join(c.value for c in Currency)
        raise InvalidInput(f"unknown currency {value!r} (one of {known})") from None


def _readable(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "input"
    return f"{field}: {error['msg']}"


class Integration:
    """Users, courses, enrollments and wallets behind one typed facade.

    Construct it over open :class:`Databases` and a :class:`Cache`, or use
    :func:`open_integration`, which opens and closes both.
    """

    def __init__(self, databases: Databases, cache: Cache) -> None:
        self.cache = cache
        self.users = UserService(databases, cache=cache)
        self.education = EducationService(databases, cache=cache)
        self.mint = MintService(databases)

    # -- users ------------------------------------------------------------------------

    async def create_user(
        self, *, email: str, password: str, name: str, role: Role | str = Role.STUDENT
    ) -> UserView:
        """Register an account; a student also gets a student record and an AZR wallet.

        Emits ``system.user.registered``.

        Raises:
            InvalidInput: malformed email, a password the password policy refuses
                (:func:`azora.auth.policy.check_password`), an empty name, or a role
                that cannot register (admin, service).
            EmailTaken: the email is in use.
        """
        try:
            new = NewUser(email=email, password=password, name=name, role=role)
            check_password(new.password, email=new.email)
        except ValidationError as exc:
            raise InvalidInput(_readable(exc)) from None
        except WeakPassword as exc:
            raise InvalidInput(f"password: {exc.message}") from None
        user = await self.users.create_user(new)
        await self._on_registered(user)
        return user

    async def _on_registered(self, user: UserView) -> None:
        """The registration saga's reactions, idempotent (see the package docstring)."""
        payload = {"user_id": str(user.id), "email": user.email, "name": user.name,
                   "role": str(user.role)}  # fmt: skip
        try:
            await self.education.on_user_registered(payload)
            await self.mint.open_wallet(user.id, Currency.AZR)
        except Exception:
            # The account is committed and its event is in the outbox: the reactions
            # will run again from there. Reporting the registration as failed would
            # make the caller retry into EmailTaken.
            logger.exception("registration follow-ups failed for user %s", user.id)

    async def get_user(self, user_id: uuid.UUID | str) -> UserView:
        """The user, read from the database.

        Raises:
            InvalidInput: not an id.  UserNotFound: no such (undeleted) user.
        """
        return await self.users.get_user(_id(user_id, "user_id"))

    async def get_user_with_cache(self, user_id: uuid.UUID | str) -> UserView:
        """The user through the cache: as fresh as :meth:`get_user` after any write.

        Raises:
            InvalidInput: not an id.  UserNotFound: no such (undeleted) user.
        """
        return await self.users.get_user_cached(_id(user_id, "user_id"))

    async def rename_user(self, user_id: uuid.UUID | str, name: str) -> UserView:
        """Change the user's name (the cached view is forgotten once it committed).

        Raises:
            InvalidInput: not an id, or an empty/over-long name.  UserNotFound.
        """
        return await self.users.rename(_id(user_id, "user_id"), name)

    # -- education --------------------------------------------------------------------

    async def get_course(self, course_id: uuid.UUID | str) -> CourseView:
        """A published course with its modules (two queries, through the cache).

        Raises:
            InvalidInput: not an id.  CourseNotFound: no such published course.
        """
        return await self.education.get_course(_id(course_id, "course_id"))

    async def enroll_course(
        self, user_id: uuid.UUID | str, course_id: uuid.UUID | str
    ) -> EnrollmentView:
        """Enroll the user in a published course; emits ``education.course.enrolled``.

        Raises:
            InvalidInput, StudentNotFound, CourseNotFound, AlreadyEnrolled.
        """
        return await self.education.enroll(_id(user_id, "user_id"), _id(course_id, "course_id"))

    async def update_enrollment_progress(
        self, enrollment_id: uuid.UUID | str, progress: int, user_id: uuid.UUID | str
    ) -> EnrollmentView:
        """Set the progress (0-100) of the user's own enrollment; 100 completes it.

        Raises:
            InvalidInput: not an id.  InvalidProgress, EnrollmentNotFound,
            NotYourEnrollment.
        """
        return await self.education.update_progress(
            _id(enrollment_id, "enrollment_id"), progress, _id(user_id, "user_id")
        )

    # -- money --------------------------------------------------------------------------

    async def get_wallet(self, user_id: uuid.UUID | str, currency: Currency | str) -> WalletView:
        """The user's wallet, always read from the database (money is never cached).

        Raises:
            InvalidInput: not an id or an unknown currency.  WalletNotFound.
        """
        return await self.mint.get_wallet(_id(user_id, "user_id"), _currency(currency))

    async def update_balance(
        self,
        user_id: uuid.UUID | str,
        currency: Currency | str,
        amount: Decimal | int | str,
        *,
        reason: str,
        idempotency_key: str,
    ) -> TransactionView:
        """Credit the user's wallet from the reward pool, as a ledger reward.

        A balance is never written directly: this posts a balanced journal entry and
        emits ``finance.transaction.completed``; a retried ``idempotency_key`` returns
        the original transaction. Debits are transfers (:meth:`MintService.transfer`).

        Raises:
            InvalidInput: not an id, an unknown currency, or an empty reason/key.
            InvalidAmountError: not > 0, more than 8 decimals, or out of range.
            InsufficientFunds: the reward pool holds less.  WalletNotFound, WalletFrozen,
            IdempotencyConflict.
        """
        if not reason.strip() or not idempotency_key.strip():
            raise InvalidInput("a reason and an idempotency key are required")
        return await self.mint.reward(
            _id(user_id, "user_id"),
            _currency(currency),
            amount,
            reason,
            idempotency_key=idempotency_key,
        )


@contextlib.asynccontextmanager
async def open_integration(settings: Settings) -> AsyncIterator[Integration]:
    """The facade over the databases and the cache ``settings`` name; closes both after.

    Raises:
        ConfigurationError: malformed database or cache URLs.
    """
    cache = open_cache(settings)
    try:
        async with Databases(settings) as databases:
            yield Integration(databases, cache)
    finally:
        await cache.aclose()
