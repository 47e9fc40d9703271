"""Which service databases keep ids of which others' rows: the one table of them.

Services refer to each other's rows by id only (each database is separate, so there is
no foreign key to keep them consistent): every other database keeps the user ids of
auth, the marketplace keeps the mint transactions that hold its escrow, the nexus keeps
the courses and jobs it recommends. Resetting a database leaves such rows pointing at
rows that no longer exist; ``azora db reset`` reads this table to name them first and,
with ``--cascade``, to reset those databases too. ``tests/test_references.py`` fails
for an id column of another database that is missing here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from azora.types import ServiceName


@dataclass(frozen=True)
class Reference:
    """``service``'s ``table.column`` holds ids of ``target``'s ``target_table`` rows.

    ``where`` (SQL over the referring row) narrows it to the rows that do refer, when
    the same column also holds other ids (a system wallet's owner is no user).
    """

    service: ServiceName
    table: str
    column: str
    target: ServiceName
    target_table: str
    where: str | None = None

    def describe(self) -> str:
        """``table.column`` (and the condition), for messages."""
        where = f" where {self.where}" if self.where else ""
        return f"{self.table}.{self.column}{where}"


def _user(service: ServiceName, table: str, column: str, where: str | None = None) -> Reference:
    return Reference(service, table, column, ServiceName.AUTH, "users", where)


REFERENCES: tuple[Reference, ...] = (
    _user(ServiceName.EDUCATION, "students", "user_id"),
    _user(ServiceName.EDUCATION, "courses", "instructor_id"),
    _user(ServiceName.MINT, "wallets", "user_id", "kind = 'user'"),
    _user(ServiceName.MINT, "mining_records", "user_id"),
    _user(ServiceName.FORGE, "jobs", "posted_by"),
    _user(ServiceName.FORGE, "skill_profiles", "user_id"),
    _user(ServiceName.FORGE, "applications", "user_id"),
    _user(ServiceName.FORGE, "contracts", "client_id"),
    _user(ServiceName.FORGE, "contracts", "freelancer_id"),
    _user(ServiceName.FORGE, "disputes", "raised_by"),
    Reference(
        ServiceName.FORGE, "contracts", "escrow_transaction_id", ServiceName.MINT, "transactions"
    ),
    Reference(
        ServiceName.FORGE, "milestones", "paid_transaction_id", ServiceName.MINT, "transactions"
    ),
    *(
        _user(ServiceName.SAPIENS, table, "student_id")
        for table in (
            "learning_paths",
            "questions",
            "student_profiles",
            "tutoring_sessions",
            "assessments",
            "learning_insights",
            "progress",
        )
    ),
    _user(ServiceName.NEXUS, "event_records", "subject_user_id"),
    _user(ServiceName.NEXUS, "interactions", "user_id"),
    _user(ServiceName.NEXUS, "recommendations", "user_id"),
    _user(ServiceName.NEXUS, "user_preferences", "user_id"),
    *(
        Reference(ServiceName.NEXUS, table, "item_id", target, rows, f"{kind} = '{item}'")
        for table, kind in (("interactions", "item_type"), ("recommendations", "kind"))
        for target, rows, item in (
            (ServiceName.EDUCATION, "courses", "course"),
            (ServiceName.FORGE, "jobs", "job"),
        )
    ),
    _user(ServiceName.FAMILY, "family_interactions", "user_id"),
    _user(ServiceName.FAMILY, "conversations", "user_id"),
    _user(ServiceName.FAMILY, "messages", "user_id"),
    _user(ServiceName.NOTIFICATIONS, "notification_preferences", "user_id"),
    _user(ServiceName.NOTIFICATIONS, "notifications", "user_id"),
    _user(ServiceName.HEALTH, "compliance_logs", "user_id"),
)


def referring_to(services: Iterable[ServiceName]) -> list[Reference]:
    """The references into ``services`` from the databases outside them."""
    chosen = set(services)
    return [r for r in REFERENCES if r.target in chosen and r.service not in chosen]


def dependents(services: Iterable[ServiceName]) -> set[ServiceName]:
    """The databases outside ``services`` that keep ids of their rows, directly or through
    another such database (resetting auth: every database that keeps user ids)."""
    chosen = set(services)
    closed = set(chosen)
    while grown := {r.service for r in referring_to(closed)}:
        closed |= grown
    return closed - chosen
