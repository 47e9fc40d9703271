"""The catch-up gate: one per connection, a few per user, a bounded queue per process; and
the share of the event loop's time catch-ups may use."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from azora.gateway.admission import Busy, CatchUpGate, LoopShare


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


# -- the loop share -----------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_work_past_its_share_waits_until_the_budget_is_back() -> None:
    clock = _Clock()
    share = LoopShare(0.25, burst_s=0.05, clock=clock)
    started = share.start()
    clock.now += 0.04  # within the burst: one turn of the loop, no wait
    started = await share.pause(started)
    assert share.waited_s == 0
    clock.now += 0.06  # 20 ms of budget left, plus 25 % of these 60 ms: 25 ms overdrawn
    await share.pause(started)
    assert share.waited_s == pytest.approx(0.025 / 0.25)


async def test_pauses_really_sleep_for_the_overdraft() -> None:
    share = LoopShare(0.5, burst_s=0.0)
    started = share.start()
    deadline = time.perf_counter() + 0.02
    while time.perf_counter() < deadline:  # 20 ms of work, half of it earned: 10 ms to wait
        pass
    before = time.perf_counter()
    await share.pause(started)
    assert time.perf_counter() - before >= 0.009
    assert 0.009 <= share.waited_s <= 0.03


async def test_idle_time_refills_the_budget_up_to_the_burst_only() -> None:
    clock = _Clock()
    share = LoopShare(0.25, burst_s=0.05, clock=clock)
    clock.now += 3600  # an hour idle: still only the burst
    started = share.start()
    clock.now += 0.07
    await share.pause(started)
    assert share.waited_s == pytest.approx((0.07 - 0.05 - 0.07 * 0.25) / 0.25)


async def test_a_user_past_their_catch_up_rate_is_told_to_wait_their_turn() -> None:
    gate = CatchUpGate(running=10, waiting=10, per_user=5, rate_per_user=0.5, burst_per_user=2)
    ama, kofi = uuid.uuid4(), uuid.uuid4()
    for sid in ("a1", "a2"):
        async with gate.admit(sid, ama):
            pass
    with pytest.raises(Busy) as busy:
        async with gate.admit("a3", ama):
            pass
    assert 1_500 <= busy.value.retry_after_ms <= 3_000  # the next token, in about 2 s
    async with gate.admit("k1", kofi):  # another user's rate is their own
        pass
    assert gate.refused == 1
