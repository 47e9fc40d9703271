"""The catch-up gate: one per connection, a few per user, a bounded queue per process."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from azora.gateway.admission import Busy, CatchUpGate


@contextlib.asynccontextmanager
async def holding(gate: CatchUpGate, sid: str, user: uuid.UUID) -> AsyncIterator[None]:
    """Hold a running place in ``gate`` (for the block)."""
    async with gate.admit(sid, user):
        yield


async def test_a_user_gets_a_few_places_and_a_connection_one() -> None:
    gate = CatchUpGate(running=10, waiting=10, per_user=2)
    ama, kofi = uuid.uuid4(), uuid.uuid4()
    async with holding(gate, "a1", ama), holding(gate, "a2", ama):
        with pytest.raises(Busy) as busy:
            async with gate.admit("a3", ama):
                pass
        assert 1_000 <= busy.value.retry_after_ms <= 2_000
        async with gate.admit("k1", kofi):  # another user is not held up
            with pytest.raises(Busy):
                async with gate.admit("k1", kofi):  # the same connection again
                    pass
    assert gate.refused == 2
    async with gate.admit("a3", ama):  # the places are free again
        assert gate.admitted == 1


async def test_past_the_running_places_catch_ups_wait_in_turn_and_past_the_queue_are_refused() -> (
    None
):
    gate = CatchUpGate(running=1, waiting=1, per_user=5)
    user = uuid.uuid4()
    order: list[str] = []
    release = asyncio.Event()

    async def catch_up(sid: str) -> None:
        async with gate.admit(sid, user):
            order.append(sid)
            await release.wait()

    first = asyncio.create_task(catch_up("s1"))
    await asyncio.sleep(0)  # s1 runs
    second = asyncio.create_task(catch_up("s2"))
    await asyncio.sleep(0)  # s2 waits for its turn
    assert (gate.running, gate.admitted) == (1, 2)
    with pytest.raises(Busy):
        async with gate.admit("s3", user):
            pass
    release.set()
    await asyncio.gather(first, second)
    assert order == ["s1", "s2"]
    assert (gate.running, gate.admitted, gate.peak, gate.refused) == (0, 0, 1, 1)


async def test_a_failed_or_cancelled_catch_up_gives_its_place_back() -> None:
    gate = CatchUpGate(running=1, waiting=0, per_user=1)
    user = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with gate.admit("s1", user):
            raise RuntimeError("the history failed")
    started = asyncio.Event()

    async def forever() -> None:
        async with gate.admit("s2", user):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(forever())
    await started.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with gate.admit("s3", user):
        assert gate.running == 1
    assert gate.admitted == 0
