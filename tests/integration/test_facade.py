"""Each facade operation: its effect, its events, and the domain error for bad input.

Runs on SQLite with the in-process cache and on PostgreSQL with the real Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from azora.auth.errors import EmailTaken, UserNotFound
from azora.auth.models import User
from azora.auth.users import user_key
from azora.db.engines import Databases
from azora.education.errors import (
    AlreadyEnrolled,
    CourseNotFound,
    EnrollmentNotFound,
    InvalidProgress,
    NotYourEnrollment,
    StudentNotFound,
)
from azora.education.models import EnrollmentStatus, Student
from azora.errors import InvalidAmountError, InvalidInput
from azora.integration import Integration
from azora.mint.errors import InsufficientFunds, WalletNotFound
from azora.types import Currency, ServiceName

from .conftest import PASSWORD, count, fund_reward_pool, new_course, new_student, outbox

AUTH, EDUCATION, MINT = ServiceName.AUTH, ServiceName.EDUCATION, ServiceName.MINT


# -- users ------------------------------------------------------------------------------


async def test_registering_a_student_announces_it_and_runs_the_saga(
    azora: Integration, databases: Databases
) -> None:
    user = await azora.create_user(email=" Ama@Example.ORG ", password=PASSWORD, name="Ama Mensah")

    assert user.email == "ama@example.org"
    assert "password" not in user.model_dump_json()
    assert "argon2" not in user.model_dump_json()
    assert await azora.get_user(user.id) == user
    [registered] = await outbox(databases, AUTH, "system.user.registered")
    assert registered["user_id"] == str(user.id)
    assert registered["role"] == "student"
    assert "password" not in str(registered)
    async with databases.owner_engine(EDUCATION).connect() as connection:
        student = (await connection.execute(select(Student.user_id, Student.first_name))).one()
    assert tuple(student) == (user.id, "Ama")
    wallet = await azora.get_wallet(user.id, "AZR")
    assert wallet.balance == Decimal("0")


async def test_an_educator_gets_no_student_record(azora: Integration, databases: Databases) -> None:
    user = await azora.create_user(
        email="teach@example.org", password=PASSWORD, name="Sipho", role="educator"
    )
    assert await count(databases, EDUCATION, Student) == 0
    with pytest.raises(StudentNotFound):
        await azora.enroll_course(user.id, await new_course(databases))


@pytest.mark.parametrize(
    ("email", "password", "name", "role", "field"),
    [
        ("not-an-email", PASSWORD, "Ama", "student", "email"),
        ("a@example.org", "short", "Ama", "student", "password"),
        ("a@example.org", "eleven char", "Ama", "student", "password"),
        ("a@example.org", "password1234", "Ama", "student", "password"),
        ("a@example.org", "A@Example.org", "Ama", "student", "password"),
        ("a@example.org", PASSWORD, "  ", "student", "name"),
        ("a@example.org", PASSWORD, "Ama", "admin", "role"),
        ("a@example.org", PASSWORD, "Ama", "wizard", "role"),
    ],
)
async def test_bad_registrations_are_refused_and_write_nothing(
    azora: Integration,
    databases: Databases,
    email: str,
    password: str,
    name: str,
    role: str,
    field: str,
) -> None:
    with pytest.raises(InvalidInput, match=f"^{field}"):
        await azora.create_user(email=email, password=password, name=name, role=role)
    assert await count(databases, AUTH, User) == 0
    assert await outbox(databases, AUTH, "system.user.registered") == []


async def test_an_email_registers_once_whatever_its_case(
    azora: Integration, databases: Databases
) -> None:
    await azora.create_user(email="ama@example.org", password=PASSWORD, name="Ama")
    with pytest.raises(EmailTaken):
        await azora.create_user(email="AMA@example.org", password=PASSWORD, name="Ama 2")
    assert await count(databases, AUTH, User) == 1
    assert len(await outbox(databases, AUTH, "system.user.registered")) == 1


async def test_unknown_and_malformed_user_ids(azora: Integration) -> None:
    for read in (azora.get_user, azora.get_user_with_cache):
        with pytest.raises(UserNotFound):
            await read(uuid.uuid4())
        with pytest.raises(InvalidInput, match="user_id"):
            await read("not-an-id")


async def test_the_cached_user_is_fresh_after_every_write(azora: Integration) -> None:
    user_id = await new_student(azora)
    first = await azora.get_user_with_cache(user_id)
    assert await azora.get_user_with_cache(user_id) == first  # served by the cache
    hits = azora.cache.metrics.hits
    assert hits >= 1

    renamed = await azora.rename_user(user_id, "Ama Owusu")
    cached = await azora.get_user_with_cache(user_id)
    assert cached.name == "Ama Owusu" == renamed.name
    assert cached == await azora.get_user(user_id)
    with pytest.raises(InvalidInput):
        await azora.rename_user(user_id, "")
    with pytest.raises(UserNotFound):
        await azora.rename_user(uuid.uuid4(), "Nobody")


async def test_user_entries_are_scoped_to_their_user(azora: Integration) -> None:
    a, b = await new_student(azora, "Ama A"), await new_student(azora, "Kofi B")
    assert (await azora.get_user_with_cache(a)).name == "Ama A"
    assert (await azora.get_user_with_cache(b)).name == "Kofi B"
    assert (await azora.get_user_with_cache(a)).name == "Ama A"
    key_a, key_b = str(user_key(a)), str(user_key(b))
    assert key_a != key_b
    assert f":user:{a}" in key_a
    assert str(b) not in key_a


async def test_the_registration_reaction_creates_one_student_however_often_delivered(
    azora: Integration, databases: Databases
) -> None:
    payload = {
        "user_id": str(uuid.uuid4()),
        "email": "k@example.org",
        "name": "Kofi",
        "role": "student",
    }
    ids = await asyncio.gather(*(azora.education.on_user_registered(payload) for _ in range(3)))
    assert await azora.education.on_user_registered(payload) == ids[0]
    assert len(set(ids)) == 1
    assert await count(databases, EDUCATION, Student) == 1
    assert await azora.education.on_user_registered({**payload, "role": "educator"}) is None


# -- courses ----------------------------------------------------------------------------


async def test_a_course_comes_with_its_modules_in_two_queries_then_from_the_cache(
    azora: Integration, databases: Databases
) -> None:
    course_id = await new_course(databases, modules=5)
    statements: list[str] = []

    def record(conn: Connection, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = databases.engine(EDUCATION).sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        course = await azora.get_course(str(course_id))
        assert [m.position for m in course.modules] == [1, 2, 3, 4, 5]
        assert [m.title for m in course.modules] == ["M1", "M2", "M3", "M4", "M5"]
        assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2
        statements.clear()
        assert await azora.get_course(course_id) == course
        assert statements == []  # the second read never touched the database
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_missing_unpublished_and_malformed_courses(
    azora: Integration, databases: Databases
) -> None:
    draft = await new_course(databases, published=False)
    for course_id in (uuid.uuid4(), draft):
        with pytest.raises(CourseNotFound):
            await azora.get_course(course_id)
    with pytest.raises(InvalidInput, match="course_id"):
        await azora.get_course("42")


# -- enrollments ------------------------------------------------------------------------


async def test_enrolling_announces_it_once(azora: Integration, databases: Databases) -> None:
    user_id, course_id = await new_student(azora), await new_course(databases)
    enrollment = await azora.enroll_course(user_id, course_id)

    assert (enrollment.user_id, enrollment.course_id) == (user_id, course_id)
    assert (enrollment.status, enrollment.progress) == (EnrollmentStatus.ACTIVE, 0)
    with pytest.raises(AlreadyEnrolled):
        await azora.enroll_course(user_id, course_id)
    with pytest.raises(CourseNotFound):
        await azora.enroll_course(user_id, uuid.uuid4())
    with pytest.raises(CourseNotFound):
        await azora.enroll_course(user_id, await new_course(databases, published=False))
    with pytest.raises(StudentNotFound):
        await azora.enroll_course(uuid.uuid4(), course_id)
    with pytest.raises(InvalidInput):
        await azora.enroll_course("me", course_id)
    [enrolled] = await outbox(databases, EDUCATION, "education.course.enrolled")
    assert enrolled == {
        "user_id": str(user_id),
        "enrollment_id": str(enrollment.id),
        "course_id": str(course_id),
    }


async def test_progress_completes_the_course_once(azora: Integration, databases: Databases) -> None:
    user_id, course_id = await new_student(azora), await new_course(databases)
    enrollment = await azora.enroll_course(user_id, course_id)

    halfway = await azora.update_enrollment_progress(enrollment.id, 50, user_id)
    assert (halfway.progress, halfway.status) == (50, EnrollmentStatus.ACTIVE)
    done = await azora.update_enrollment_progress(enrollment.id, 100, user_id)
    assert (done.progress, done.status) == (100, EnrollmentStatus.COMPLETED)
    assert done.completed_at is not None
    again = await azora.update_enrollment_progress(str(enrollment.id), 100, str(user_id))
    assert again.completed_at == done.completed_at

    completed = await outbox(databases, EDUCATION, "education.course.completed")
    assert completed == [
        {"user_id": str(user_id), "enrollment_id": str(enrollment.id), "course_id": str(course_id)}
    ]
    updates = await outbox(databases, EDUCATION, "education.enrollment.progress_updated")
    assert [u["progress"] for u in updates] == [50, 100]
    with pytest.raises(InvalidProgress, match="stays completed"):
        await azora.update_enrollment_progress(enrollment.id, 40, user_id)


@pytest.mark.parametrize("progress", [101, -1, True, 50.5, "50"])
async def test_progress_out_of_range_is_refused(
    azora: Integration, databases: Databases, progress: object
) -> None:
    user_id = await new_student(azora)
    enrollment = await azora.enroll_course(user_id, await new_course(databases))
    with pytest.raises(InvalidProgress):
        await azora.update_enrollment_progress(enrollment.id, progress, user_id)  # type: ignore[arg-type]
    assert await outbox(databases, EDUCATION, "education.enrollment.progress_updated") == []


async def test_only_the_owner_moves_an_enrollment(azora: Integration, databases: Databases) -> None:
    owner, other = await new_student(azora), await new_student(azora)
    enrollment = await azora.enroll_course(owner, await new_course(databases))
    with pytest.raises(NotYourEnrollment):
        await azora.update_enrollment_progress(enrollment.id, 80, other)
    with pytest.raises(EnrollmentNotFound):
        await azora.update_enrollment_progress(uuid.uuid4(), 80, owner)
    assert (await azora.update_enrollment_progress(enrollment.id, 10, owner)).progress == 10


# -- money ------------------------------------------------------------------------------


async def test_update_balance_is_an_idempotent_ledger_credit(
    azora: Integration, databases: Databases
) -> None:
    user_id = await new_student(azora)
    await fund_reward_pool(azora)

    credit = await azora.update_balance(
        user_id, "AZR", "10.5", reason="quiz bonus", idempotency_key="k1"
    )
    replay = await azora.update_balance(
        user_id, "AZR", "10.5", reason="quiz bonus", idempotency_key="k1"
    )
    assert replay.replayed
    assert replay.id == credit.id
    wallet = await azora.get_wallet(user_id, Currency.AZR)
    assert (wallet.balance, wallet.earned) == (Decimal("10.5"), Decimal("10.5"))
    completed = await outbox(databases, MINT, "finance.transaction.completed")
    assert [e["transaction_id"] for e in completed].count(str(credit.id)) == 1


@pytest.mark.parametrize("amount", ["-5", "0", "0.000000001", "1e30"])
async def test_bad_amounts_are_refused(azora: Integration, amount: str) -> None:
    user_id = await new_student(azora)
    await fund_reward_pool(azora)
    with pytest.raises(InvalidAmountError):
        await azora.update_balance(user_id, "AZR", amount, reason="r", idempotency_key="k")
    assert (await azora.get_wallet(user_id, "AZR")).balance == 0


async def test_wallet_errors(azora: Integration) -> None:
    user_id = await new_student(azora)
    with pytest.raises(InvalidInput, match="unknown currency 'XYZ'"):
        await azora.get_wallet(user_id, "XYZ")
    with pytest.raises(InvalidInput, match="unknown currency"):
        await azora.update_balance(user_id, "XYZ", "1", reason="r", idempotency_key="k")
    with pytest.raises(WalletNotFound):
        await azora.get_wallet(user_id, "USD")
    with pytest.raises(InsufficientFunds):  # the reward pool is empty
        await azora.update_balance(user_id, "AZR", "1", reason="r", idempotency_key="k")
    with pytest.raises(InvalidInput):
        await azora.update_balance(user_id, "AZR", "1", reason=" ", idempotency_key="k")
