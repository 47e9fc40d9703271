"""``azora events relay`` and ``azora events history`` against real databases on both
backends (the in-process bus, the embedded default)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from azora.cli.bus_claim import BusClaim, claim_path
from azora.db.engines import Databases
from azora.mint.service import MintService
from azora.settings import Settings, get_settings
from azora.types import Currency
from tests.cli.helpers import assert_clean_failure, flat, invoke


def _open_wallets(settings: Settings, *users: uuid.UUID) -> None:
    async def go() -> None:
        async with Databases(settings) as databases:
            mint = MintService(databases)
            for user in users:
                await mint.open_wallet(user, Currency.AZR)

    asyncio.run(go())


def _event_ids(output: str) -> list[str]:
    """The event ids of the history table, in its order."""
    ids = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")]
        if line.startswith("│") and cells[0]:
            ids.append(cells[0])
    return ids


def test_relay_drains_the_outboxes_once_and_history_shows_each_users_events(
    cli_settings: Settings,
) -> None:
    assert invoke("db", "setup").exit_code == 0
    alice, bob = uuid.uuid4(), uuid.uuid4()
    _open_wallets(cli_settings, alice, bob)

    first = invoke("events", "relay", "--once", "mint")
    assert first.exit_code == 0, first.output
    assert "mint: published 2 events" in first.stdout
    again = invoke("events", "relay", "--once", "mint")
    assert "mint: published 0 events" in again.stdout, again.output

    everything = invoke("events", "history")
    assert everything.exit_code == 0, everything.output
    assert "Event history (2)" in everything.stdout
    mine = invoke("events", "history", "--user", str(alice))
    assert "Event history (1)" in mine.stdout, mine.output
    assert str(alice) in mine.stdout
    assert str(bob) not in mine.stdout
    assert "finance.wallet.created" in flat(mine.stdout)

    assert "Event history (2)" in invoke("events", "history", "--type", "finance.>").stdout
    assert "Event history (0)" in invoke("events", "history", "--type", "finance.*").stdout
    assert "Event history (0)" in invoke("events", "history", "--type", "system.>").stdout
    first_id, second_id = _event_ids(everything.stdout)
    later = invoke("events", "history", "--since", first_id)
    assert _event_ids(later.stdout) == [second_id], later.output
    assert "Event history (1)" in invoke("events", "history", "--limit", "1").stdout


def test_bad_history_filters_are_readable_errors(cli_settings: Settings) -> None:
    assert invoke("db", "setup").exit_code == 0
    error = assert_clean_failure(invoke("events", "history", "--user", "nobody"))
    assert "--user must be a UUID" in error
    assert_clean_failure(invoke("events", "history", "--type", "finance..wallet"))
    assert_clean_failure(invoke("events", "relay", "--once", "nowhere"))


def test_the_relay_refuses_an_unmigrated_database_readably(cli_settings: Settings) -> None:
    result = invoke("events", "relay", "--once")
    assert "does not exist" in assert_clean_failure(result)
    assert "azora db setup" in flat(result.stderr)


def test_an_unreachable_bus_is_a_readable_error_and_the_events_stay_in_the_outbox(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("db", "setup").exit_code == 0
    _open_wallets(cli_settings, uuid.uuid4())
    monkeypatch.setenv("AZORA_EVENTS_URL", "redis://127.0.0.1:1/0")
    assert "bus refused the mint events" in assert_clean_failure(
        invoke("events", "relay", "--once", "mint")
    )
    monkeypatch.setenv("AZORA_EVENTS_URL", "memory://")
    drained = invoke("events", "relay", "--once", "mint")
    assert "mint: published 1 events" in drained.stdout, drained.output


def test_a_second_process_on_the_in_process_bus_is_refused_and_takes_no_event(
    cli_settings: Settings,
) -> None:
    assert invoke("db", "setup").exit_code == 0
    _open_wallets(cli_settings, uuid.uuid4())
    # As `azora serve` does: this process runs the in-process bus for these databases.
    with BusClaim.acquire(get_settings(), "azora serve"):
        for args in (("events", "relay", "--once"), ("events", "consume")):
            result = invoke(*args)
            line = assert_clean_failure(result)
            assert f"`azora serve` (pid {os.getpid()}) already runs the in-process" in line
            assert "AZORA_EVENTS_URL=nats://" in flat(result.stderr)
        assert "Event history (0)" in invoke("events", "history").stdout
    # Released: the relay may run, and publishes the event the refused one left alone.
    result = invoke("events", "relay", "--once", "mint")
    assert "mint: published 1 events" in result.stdout, result.output


def test_a_broker_is_shared_so_no_claim_is_needed(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZORA_EVENTS_URL", "redis://127.0.0.1:1/0")
    with BusClaim.acquire(get_settings(), "azora serve"):
        again = BusClaim.acquire(get_settings(), "azora events relay")
        again.release()
    assert not claim_path(get_settings()).exists()
