"""The sagas of EVENTS.md end to end: an event committed in one service's outbox, the
relay, the consumers of the others, their rows and their follow-up events.

Forge has no operations yet, so the marketplace events are emitted straight into the
forge database's outbox, as forge will.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from azora.db.engines import Databases
from azora.db.seeding import SYSTEM_ESCROW_ID, SYSTEM_REWARD_POOL_ID
from azora.education.models import Student
from azora.events.buses import MemoryBus
from azora.events.consumers import ConsumerRunner, Outcome
from azora.events.relay import Relay
from azora.mint.consumers import COURSE_REWARD, MODULE_REWARD
from azora.mint.models import MiningRecord
from azora.mint.service import MintService
from azora.notifications.models import Notification
from azora.sagas import CONSUMERS
from azora.types import Currency, ServiceName
from tests.events.consumer_helpers import Settled, count, emit, envelope, outbox_types, pump

AZR = Currency.AZR


class Saga:
    def __init__(self, databases: Databases) -> None:
        self.databases = databases
        self.bus = MemoryBus(ack_wait=5.0)
        self.relay = Relay(databases, self.bus)
        self.runner = ConsumerRunner(
            databases, self.bus, CONSUMERS, max_attempts=1, backoff_base=0.01
        )
        self.mint = MintService(databases)

    async def pump(self) -> list[tuple[str, Outcome]]:
        return await pump(self.relay, self.runner, self.bus)

    async def register(self, role: str = "student", name: str = "Thandi Nkosi") -> uuid.UUID:
        user = uuid.uuid4()
        await emit(
            self.databases,
            ServiceName.AUTH,
            "system.user.registered",
            {"user_id": str(user), "email": f"{user.hex}@example.org", "name": name, "role": role},
            user,
        )
        return user

    async def balance(self, user: uuid.UUID) -> Decimal:
        return (await self.mint.get_wallet(user, AZR)).balance


@pytest.fixture
async def saga(databases: Databases) -> AsyncIterator[Saga]:
    running = Saga(databases)
    yield running
    await running.bus.aclose()


def test_every_consumer_has_its_own_durable_name() -> None:
    names = [c.name for c in CONSUMERS]
    assert len(names) == len(set(names))
    assert {c.service for c in CONSUMERS} == {
        ServiceName.MINT,
        ServiceName.EDUCATION,
        ServiceName.NOTIFICATIONS,
    }


async def test_registration_opens_a_wallet_creates_the_student_and_welcomes(
    saga: Saga,
) -> None:
    student = await saga.register()
    outcomes = await saga.pump()

    assert sorted(name for name, outcome in outcomes if outcome is Outcome.HANDLED) == [
        "education-students",
        "mint-wallets",
        "notifications-welcome",
    ]
    assert await saga.balance(student) == 0
    assert await count(saga.databases, ServiceName.EDUCATION, Student.__table__, user_id=student)
    notes = Notification.__table__
    assert await count(saga.databases, ServiceName.NOTIFICATIONS, notes, user_id=student) == 1
    assert await outbox_types(saga.databases, ServiceName.MINT) == ["finance.wallet.created"]
    assert await outbox_types(saga.databases, ServiceName.NOTIFICATIONS) == ["notification.created"]

    employer = await saga.register(role="employer")
    await saga.pump()
    assert await saga.balance(employer) == 0
    students = Student.__table__
    assert not await count(saga.databases, ServiceName.EDUCATION, students, user_id=employer)
    assert await count(saga.databases, ServiceName.NOTIFICATIONS, notes, user_id=employer) == 1


async def test_a_completed_module_pays_its_reward_once_and_the_learner_is_notified(
    saga: Saga,
) -> None:
    learner = await saga.register()
    await saga.mint.mint(AZR, 1000, SYSTEM_REWARD_POOL_ID)
    await saga.pump()
    module, course = uuid.uuid4(), uuid.uuid4()
    completed = {"user_id": str(learner), "course_id": str(course), "module_id": str(module)}
    await emit(
        saga.databases, ServiceName.EDUCATION, "education.module.completed", completed, learner
    )
    await saga.pump()

    assert await saga.balance(learner) == MODULE_REWARD
    mining = await outbox_types(saga.databases, ServiceName.MINT)
    assert mining.count("finance.mining.reward") == 1
    rewards = Notification.__table__
    title = f"You earned {MODULE_REWARD} AZR"
    assert await count(saga.databases, ServiceName.NOTIFICATIONS, rewards, title=title) == 1

    # The same event delivered twice, and another event announcing the same completion.
    again = envelope("education.module.completed", completed, learner)
    item = saga.runner.get("mint-learning-rewards")
    await saga.bus.publish_many([again])
    assert await saga.runner.settle(item, Settled().delivery(again, 2)) is Outcome.HANDLED
    assert await saga.runner.settle(item, Settled().delivery(again, 3)) is Outcome.DUPLICATE
    await emit(
        saga.databases, ServiceName.EDUCATION, "education.module.completed", completed, learner
    )
    await saga.pump()
    assert await saga.balance(learner) == MODULE_REWARD
    assert await count(saga.databases, ServiceName.MINT, MiningRecord.__table__) == 1
    assert (await outbox_types(saga.databases, ServiceName.MINT)).count(
        "finance.mining.reward"
    ) == 1
    assert await count(saga.databases, ServiceName.NOTIFICATIONS, rewards, title=title) == 1

    enrollment = {"user_id": str(learner), "course_id": str(course), "enrollment_id": str(course)}
    await emit(
        saga.databases, ServiceName.EDUCATION, "education.course.completed", enrollment, learner
    )
    await saga.pump()
    assert await saga.balance(learner) == MODULE_REWARD + COURSE_REWARD


async def test_a_reward_waits_for_nothing_when_the_learner_has_no_wallet_yet(
    saga: Saga,
) -> None:
    learner = uuid.uuid4()  # the registration saga has not run
    await saga.mint.mint(AZR, 1000, SYSTEM_REWARD_POOL_ID)
    completed = {"user_id": str(learner), "course_id": str(uuid.uuid4()), "module_id": str(learner)}
    await emit(
        saga.databases, ServiceName.EDUCATION, "education.module.completed", completed, learner
    )
    await saga.pump()
    assert await saga.balance(learner) == MODULE_REWARD


async def test_a_signed_contract_is_held_in_escrow_and_an_approved_milestone_released(
    saga: Saga,
) -> None:
    client = await saga.register(role="employer")
    freelancer = await saga.register()
    await saga.pump()
    await saga.mint.mint(AZR, 500, client)
    contract = uuid.uuid4()
    parties = {"contract_id": str(contract), "client_id": str(client)}
    parties["freelancer_id"] = str(freelancer)
    signed = {**parties, "job_id": str(uuid.uuid4()), "amount": "300", "currency": "AZR"}
    await emit(saga.databases, ServiceName.FORGE, "marketplace.contract.signed", signed, client)
    await saga.pump()
    assert await saga.balance(client) == 200
    assert await saga.balance(SYSTEM_ESCROW_ID) == 300

    milestone = {**parties, "milestone_id": str(uuid.uuid4()), "amount": "120", "currency": "AZR"}
    for _ in range(2):  # announced twice (two events): paid once
        await emit(
            saga.databases, ServiceName.FORGE, "marketplace.milestone.approved", milestone, client
        )
        await saga.pump()
    assert await saga.balance(freelancer) == 120
    assert await saga.balance(SYSTEM_ESCROW_ID) == 180
    released = await outbox_types(saga.databases, ServiceName.MINT)
    assert released.count("marketplace.payment.released") == 1


async def test_a_release_before_its_hold_is_dead_lettered_then_replayed(saga: Saga) -> None:
    client, freelancer = await saga.register(role="employer"), await saga.register()
    await saga.pump()
    await saga.mint.mint(AZR, 100, client)
    parties = {"contract_id": str(uuid.uuid4()), "client_id": str(client)}
    parties["freelancer_id"] = str(freelancer)
    milestone = {**parties, "milestone_id": str(uuid.uuid4()), "amount": "40", "currency": "AZR"}
    await emit(
        saga.databases, ServiceName.FORGE, "marketplace.milestone.approved", milestone, client
    )
    assert ("mint-escrow-releases", Outcome.DEAD_LETTERED) in await saga.pump()
    (letter,) = await saga.runner.dead_letters(ServiceName.MINT)
    assert letter.error.startswith("EscrowShortfall")

    signed = {**parties, "job_id": str(uuid.uuid4()), "amount": "100", "currency": "AZR"}
    await emit(saga.databases, ServiceName.FORGE, "marketplace.contract.signed", signed, client)
    await saga.pump()
    (replayed,) = await saga.runner.replay(ServiceName.MINT)
    assert replayed.ok
    assert await saga.balance(freelancer) == 40
    await saga.pump()  # the payment's own events travel on
    assert await saga.runner.dead_letters(ServiceName.MINT) == []
