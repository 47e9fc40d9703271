"""``azora events dead-letters`` and ``azora events replay`` on both backends: a milestone
approved before its contract's escrow hold dies, then is re-driven once the hold is there."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from azora.db.engines import Databases
from azora.events.buses import MemoryBus
from azora.events.consumers import ConsumerRunner, Outcome
from azora.mint.service import MintService
from azora.sagas import CONSUMERS
from azora.settings import Settings
from azora.types import Currency
from tests.cli.helpers import assert_clean_failure, flat, invoke, read_table
from tests.events.consumer_helpers import Settled, envelope


def _settle(settings: Settings, consumer: str, type_: str, payload: dict[str, Any]) -> Outcome:
    """Deliver one event to ``consumer`` once, as its last attempt."""

    async def go() -> Outcome:
        async with Databases(settings) as databases:
            runner = ConsumerRunner(databases, MemoryBus(), CONSUMERS, max_attempts=1)
            subject = uuid.UUID(payload["client_id"])
            event = envelope(type_, payload, subject)
            return await runner.settle(runner.get(consumer), Settled().delivery(event))

    return asyncio.run(go())


def _fund(settings: Settings, user: uuid.UUID, amount: int) -> None:
    async def go() -> None:
        async with Databases(settings) as databases:
            mint = MintService(databases)
            await mint.open_wallet(user, Currency.AZR)
            await mint.mint(Currency.AZR, amount, user)

    asyncio.run(go())


def test_a_dead_letter_is_listed_replayed_when_its_cause_is_fixed_and_then_resolved(
    cli_settings: Settings,
) -> None:
    assert invoke("db", "setup").exit_code == 0
    client, freelancer, contract = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    parties = {
        "contract_id": str(contract),
        "client_id": str(client),
        "freelancer_id": str(freelancer),
        "currency": "AZR",
    }
    milestone = {**parties, "milestone_id": str(uuid.uuid4()), "amount": "40"}
    died = _settle(
        cli_settings, "mint-escrow-releases", "marketplace.milestone.approved", milestone
    )
    assert died is Outcome.DEAD_LETTERED

    listed = invoke("events", "dead-letters")
    assert listed.exit_code == 0, listed.output
    rows = read_table(listed.stdout, "Dead letters (1)")
    assert rows["mint"]["consumer"] == "mint-escrow-releases"
    assert rows["mint"]["error"].startswith("EscrowShortfall")

    still = invoke("events", "replay")
    assert "1 of 1 dead letters still fail" in assert_clean_failure(still)
    assert "failed: EscrowShortfall" in flat(still.stdout)

    _fund(cli_settings, client, 100)
    signed = {**parties, "job_id": str(uuid.uuid4()), "amount": "100"}
    held = _settle(cli_settings, "mint-escrow-holds", "marketplace.contract.signed", signed)
    assert held is Outcome.HANDLED

    fixed = invoke("events", "replay", "mint", "--consumer", "mint-escrow-releases")
    assert fixed.exit_code == 0, fixed.output
    assert read_table(fixed.stdout, "Replayed dead letters (1)")["mint"]["result"] == "replayed"
    assert "Dead letters (0)" in invoke("events", "dead-letters").stdout
    resolved = read_table(invoke("events", "dead-letters", "--all").stdout, "Dead letters (1)")
    assert resolved["mint"]["replayed"] == "yes"
    assert "Replayed dead letters (0)" in invoke("events", "replay").stdout


def test_bad_replay_filters_are_readable_errors(cli_settings: Settings) -> None:
    assert invoke("db", "setup").exit_code == 0
    assert "unknown consumer 'nobody'" in assert_clean_failure(
        invoke("events", "replay", "--consumer", "nobody")
    )
    assert "--id must be a UUID" in assert_clean_failure(
        invoke("events", "replay", "--id", "not-an-id")
    )
    assert_clean_failure(invoke("events", "dead-letters", "nowhere"))
    assert_clean_failure(invoke("events", "dead-letters", "--consumer", "nobody"))
