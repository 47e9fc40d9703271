"""The outbox relay of ``benchmarks/events.py``, in a process of its own.

``mode`` ``run``: :meth:`Relay.run` as deployed (polling plus ``LISTEN`` on the
database's notifies, default intervals) until ``stop``; replies ``ready`` once it
listens. ``mode`` ``drain``: connects (database pool, NATS), replies ``ready``, and on
``go`` calls :meth:`Relay.run_once` back to back until the outbox has no unpublished row
left; replies ``published`` (how many this process moved) and ``finished`` (epoch
seconds). Either way it stops on ``stop``, EOF or the deadline (see ``_events_child``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from typing import Any

from _events_child import commands, job, reply, say
from sqlalchemy import func, select, text

from azora.db.engines import Databases
from azora.db.infra import OUTBOX_TABLE
from azora.db.uow import UnitOfWork
from azora.events.buses import NatsBus
from azora.events.relay import Relay
from azora.loop import serving_loop
from azora.settings import Settings
from azora.types import ServiceName

SERVICE = ServiceName.NOTIFICATIONS


async def unpublished(databases: Databases) -> int:
    """How many outbox rows wait for the relay."""
    async with UnitOfWork(databases, SERVICE, as_service=True) as uow:
        query = select(func.count()).select_from(OUTBOX_TABLE)
        result = await uow.session.execute(query.where(OUTBOX_TABLE.c.published_at.is_(None)))
        return int(result.scalar_one())


async def drain(relay: Relay, databases: Databases, deadline: float) -> int:
    published = 0
    while time.time() < deadline:
        moved = await relay.run_once(SERVICE)
        published += moved
        if moved == 0:
            if relay.backing_off(SERVICE):
                raise RuntimeError("the relay backs off: the bus or the archive failed")
            if await unpublished(databases) == 0:
                break
            await asyncio.sleep(0.001)  # the rest is held by another relay
    return published


async def serve(spec: dict[str, Any]) -> None:
    settings = Settings(**spec["settings"])
    bus = NatsBus(spec["nats_url"], stream=spec["stream"], subject_prefix=spec["prefix"])
    deadline = float(spec["deadline"])
    async with Databases(settings) as databases:
        relay = Relay(databases, bus, services=[SERVICE])
        try:
            # Connect before the clock starts: the pool, the archive's database, NATS.
            for service in (SERVICE, ServiceName.NEXUS):
                async with UnitOfWork(databases, service, as_service=True) as uow:
                    await uow.session.execute(text("SELECT 1"))
            await bus._jetstream()  # the connection and the stream (private: warm-up only)
            if spec["mode"] == "run":
                stop = asyncio.Event()
                running = asyncio.create_task(relay.run(stop))
                for _ in range(1000):
                    if SERVICE in relay.listening:
                        break
                    await asyncio.sleep(0.01)
                reply(ready=True, listening=SERVICE in relay.listening)
                async for _command in commands(deadline):
                    pass
                stop.set()
                await asyncio.wait_for(running, 15)
                return
            reply(ready=True)
            async for command in commands(deadline):
                if command == "go":
                    published = await drain(relay, databases, deadline)
                    reply(published=published, finished=time.time())
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bus.aclose(), 5)


def main() -> None:
    spec = job()
    watchdog = threading.Timer(float(spec["deadline"]) - time.time() + 30, os._exit, (3,))
    watchdog.daemon = True
    watchdog.start()
    try:
        with asyncio.Runner(loop_factory=serving_loop()) as runner:  # as azora events relay
            runner.run(serve(spec))
    except Exception as exc:
        say(f"failed: {exc!r}")
        reply(error=repr(exc))
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main()
