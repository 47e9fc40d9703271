"""The migrated schema holds every table of the spec, and its constraints are the database's own.

Constraints are checked with raw SQL, past the models and their validation: whatever a
future code path or an operator's console does, the database refuses bad data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, Uuid, bindparam, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import TextClause

from azora.catalog import SERVICES
from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.seeding import run_seeds
from azora.types import ServiceName
from tests.spec import spec_entities, table_of

INFRASTRUCTURE_TABLES = {"outbox_events", "audit_logs"}


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


@pytest.mark.parametrize("service", list(ServiceName))
async def test_every_spec_entity_is_a_table_of_its_service(
    databases: Databases, service: ServiceName
) -> None:
    entities = [e for e in spec_entities() if e.service is service]
    assert entities, f"the spec has no entities for azora_{service}"
    expected = {table_of(service, e.name) for e in entities} | INFRASTRUCTURE_TABLES
    async with databases.owner_engine(service).connect() as connection:
        live = await connection.run_sync(_table_names)
    assert sorted(expected - live) == []


@dataclass(frozen=True)
class Violation:
    """Raw SQL that breaks one rule; the database must refuse it and keep ``table`` as it was.

    Every ``:<name>_id`` placeholder is bound to a fresh id, so an inserted copy never
    collides on its primary key and only the rule under test is at stake.
    """

    service: ServiceName
    table: str
    statements: tuple[str, ...]
    #: what the refusal names on SQLite | on PostgreSQL (the rule, not just any error).
    refused_by: str


def _copy_user(email: str) -> str:
    columns = "email, password_hash, name, role, is_email_verified, is_active,"
    columns += " failed_login_count, created_at, updated_at"
    return (
        f"INSERT INTO users (id, {columns}) SELECT :new_id, {columns}"
        f" FROM users WHERE email = '{email}'"
    )


def _mining_record(proof: str) -> str:
    return (
        "INSERT INTO mining_records (id, user_id, wallet_id, activity, proof_ref,"
        " tokens_earned, status, created_at, updated_at)"
        f" SELECT :new_id, user_id, id, 'module_completed', '{proof}', 0, 'pending',"
        " created_at, updated_at FROM wallets WHERE kind = 'user' LIMIT 1"
    )


_FAMILY_COLUMNS = (
    "name, role, traits, background, relationships, temperature, mood, avatar_url,"
    " created_at, updated_at"
)

VIOLATIONS = {
    "duplicate-user-email": Violation(
        ServiceName.AUTH,
        "users",
        (_copy_user("student@azora.world"),),
        r"users\.email|uq_users_email",
    ),
    "unknown-user-role": Violation(
        ServiceName.AUTH,
        "users",
        ("UPDATE users SET role = 'wizard' WHERE email = 'student@azora.world'",),
        r"ck_users_role",
    ),
    "negative-user-wallet-balance": Violation(
        ServiceName.MINT,
        "wallets",
        ("UPDATE wallets SET balance = -1 WHERE kind = 'user'",),
        r"ck_wallets_user_non_negative",
    ),
    "second-reward-for-the-same-proof": Violation(
        ServiceName.MINT,
        "mining_records",
        (_mining_record("module:1"), _mining_record("module:1")),
        r"mining_records\.activity, mining_records\.proof_ref"
        r"|uq_mining_records_activity_proof_ref",
    ),
    "enrollment-progress-above-100": Violation(
        ServiceName.EDUCATION,
        "enrollments",
        ("UPDATE enrollments SET progress = 150",),
        r"ck_enrollments_progress_range",
    ),
    "more-steps-completed-than-exist": Violation(
        ServiceName.SAPIENS,
        "learning_paths",
        ("UPDATE learning_paths SET completed_steps = total_steps + 1",),
        r"ck_learning_paths_completed_steps_range",
    ),
    "duplicate-family-member-name": Violation(
        ServiceName.FAMILY,
        "family_members",
        (
            f"INSERT INTO family_members (id, {_FAMILY_COLUMNS}) SELECT :new_id,"
            f" {_FAMILY_COLUMNS} FROM family_members WHERE name = 'Sankofa'",
        ),
        r"family_members\.name|uq_family_members_name",
    ),
    "unknown-notification-kind": Violation(
        ServiceName.NOTIFICATIONS,
        "notifications",
        ("UPDATE notifications SET kind = 'bogus'",),
        r"ck_notifications_kind",
    ),
    "unknown-health-status": Violation(
        ServiceName.HEALTH,
        "health_checks",
        (
            "INSERT INTO health_checks (id, target, status, checked_at, created_at, updated_at)"
            " VALUES (:new_id, 'database', 'sideways',"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        ),
        r"ck_health_checks_status",
    ),
    "module-of-a-missing-course": Violation(
        ServiceName.EDUCATION,
        "modules",
        (
            "INSERT INTO modules (id, course_id, title, position, created_at, updated_at)"
            " SELECT :new_id, :missing_course_id, title, 99, created_at, updated_at"
            " FROM modules LIMIT 1",
        ),
        r"FOREIGN KEY constraint failed|fk_modules_course_id_courses",
    ),
}


def _statement(sql: str) -> TextClause:
    ids = [
        bindparam(name, new_id(), type_=Uuid())
        for name in dict.fromkeys(re.findall(r":(\w+_id)\b", sql))
    ]
    return text(sql).bindparams(*ids)


async def _snapshot(
    databases: Databases, service: ServiceName, table: str
) -> list[tuple[Any, ...]]:
    async with databases.owner_engine(service).connect() as connection:
        result = await connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))
        return [tuple(row) for row in result]


async def _execute_in_one_transaction(databases: Databases, violation: Violation) -> None:
    async with databases.owner_engine(violation.service).begin() as connection:
        for sql in violation.statements:
            await connection.execute(_statement(sql))


@pytest.fixture
async def seeded(databases: Databases) -> Databases:
    """The migrated databases holding the development seed."""
    plan = [(spec.migrations, spec.seed_development) for spec in SERVICES.values()]
    await run_seeds(databases, plan, production=False)
    return databases


@pytest.mark.parametrize("violation", VIOLATIONS.values(), ids=VIOLATIONS.keys())
async def test_the_database_refuses_data_that_breaks_a_rule(
    seeded: Databases, violation: Violation
) -> None:
    before = await _snapshot(seeded, violation.service, violation.table)
    with pytest.raises(IntegrityError, match=violation.refused_by):
        await _execute_in_one_transaction(seeded, violation)
    assert await _snapshot(seeded, violation.service, violation.table) == before
