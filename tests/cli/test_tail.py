"""``azora events tail``: with the embedded bus it follows the history the relay archives
(both database backends); a bad pattern is one readable error line."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

from typer.testing import Result

from azora.db.engines import Databases
from azora.events.buses import MemoryBus
from azora.events.relay import Relay
from azora.mint.service import MintService
from azora.settings import Settings
from azora.types import ALL_SERVICES, Currency, ServiceName
from tests.cli.helpers import assert_clean_failure, invoke


def _wallets_relayed(settings: Settings, *users: uuid.UUID) -> None:
    """Open AZR wallets (each emits finance.wallet.created) and relay them into history."""

    async def go() -> None:
        async with Databases(settings) as databases:
            mint = MintService(databases)
            for user in users:
                await mint.open_wallet(user, Currency.AZR)
            relay = Relay(databases, MemoryBus(), services=ALL_SERVICES)
            while await relay.run_once(ServiceName.MINT):
                pass

    asyncio.run(go())


def test_tail_follows_new_events_of_its_pattern_only(cli_settings: Settings) -> None:
    assert invoke("db", "setup").exit_code == 0
    before = uuid.uuid4()
    _wallets_relayed(cli_settings, before)  # already archived: not shown
    outcome: list[Result] = []
    tailing = threading.Thread(
        target=lambda: outcome.append(
            invoke("events", "tail", "finance.wallet.*", "--json", "--count", "2", "--poll", "0.05")
        )
    )
    tailing.start()
    time.sleep(1.5)  # the tail has read where the history ends
    first, second = uuid.uuid4(), uuid.uuid4()
    _wallets_relayed(cli_settings, first, second)
    tailing.join(timeout=20)
    assert not tailing.is_alive()
    result = outcome[0]
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [e["subject"] for e in events] == [str(first), str(second)]
    assert {e["type"] for e in events} == {"finance.wallet.created"}


def test_tail_refuses_a_malformed_pattern(cli_settings: Settings) -> None:
    line = assert_clean_failure(invoke("events", "tail", "finance..>"))
    assert "pattern" in line
