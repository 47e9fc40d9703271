"""Shared helpers of the consumer and saga tests: emit, relay, settle, count."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql import FromClause

from azora.db.engines import Databases
from azora.db.infra import OUTBOX_TABLE
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events.bus import Bus, Delivery
from azora.events.consumers import ConsumerRunner, Outcome
from azora.events.envelope import Envelope
from azora.events.relay import Relay
from azora.types import ALL_SERVICES, ServiceName

IDLE = 0.05  # how long a subscription is read after its last delivery


def envelope(type_: str, payload: dict[str, Any], subject: uuid.UUID | None = None) -> Envelope:
    return Envelope(
        type=type_,
        source="test",
        subject=subject,
        payload=payload,
        occurred_at=dt.datetime.now(dt.UTC),
    )


async def emit(
    databases: Databases,
    service: ServiceName,
    type_: str,
    payload: dict[str, Any],
    subject: uuid.UUID | None,
) -> uuid.UUID:
    """Emit one event through ``service``'s outbox (committed); its id."""
    message = EventMessage(type=type_, source=service.value, payload=payload, subject=subject)
    async with UnitOfWork(databases, service, as_service=True) as uow:
        uow.emit(message)
    return message.id


class Settled:
    """Records the settlement of hand-made deliveries."""

    def __init__(self) -> None:
        self.acks = 0
        self.naks: list[float] = []

    def delivery(self, event: Envelope, attempt: int = 1) -> Delivery:
        async def ack() -> None:
            self.acks += 1

        async def nak(delay: float) -> None:
            self.naks.append(delay)

        return Delivery(event, attempt, ack, nak)


async def _next(deliveries: AsyncIterator[Delivery]) -> Delivery | None:
    try:
        return await asyncio.wait_for(anext(deliveries), IDLE)
    except TimeoutError:
        return None


async def settle_all(runner: ConsumerRunner, bus: Bus) -> list[tuple[str, Outcome]]:
    """Settle every delivery waiting for the runner's consumers now; what became of them."""
    outcomes: list[tuple[str, Outcome]] = []
    for item in runner.consumers.values():
        async with aclosing(bus.subscribe(item.name, item.pattern)) as deliveries:
            while (delivery := await _next(deliveries)) is not None:
                outcomes.append((item.name, await runner.settle(item, delivery)))
    return outcomes


async def pump(
    relay: Relay, runner: ConsumerRunner, bus: Bus, *, rounds: int = 10
) -> list[tuple[str, Outcome]]:
    """Relay every outbox and settle every delivery, until nothing moves (the saga ran)."""
    outcomes: list[tuple[str, Outcome]] = []
    for _ in range(rounds):
        published = sum([await relay.run_once(service) for service in ALL_SERVICES])
        settled = await settle_all(runner, bus)
        outcomes.extend(settled)
        if not published and not settled:
            return outcomes
    raise AssertionError(f"the sagas did not settle in {rounds} rounds: {outcomes}")


async def count(databases: Databases, service: ServiceName, table: FromClause, **where: Any) -> int:
    """Rows of ``table`` in ``service``'s database matching ``where`` (as the service)."""
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    async with UnitOfWork(databases, service, as_service=True) as uow:
        return int(await uow.session.scalar(query) or 0)


async def outbox_types(databases: Databases, service: ServiceName) -> list[str]:
    """The types of the events in ``service``'s outbox, oldest first."""
    query = select(OUTBOX_TABLE.c.type).order_by(OUTBOX_TABLE.c.created_at, OUTBOX_TABLE.c.id)
    async with UnitOfWork(databases, service, as_service=True) as uow:
        return list((await uow.session.execute(query)).scalars())
