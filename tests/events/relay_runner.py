"""The outbox relay in a process of its own, for the failure tests (which SIGKILL it).

    python -m tests.events.relay_runner NATS_URL STREAM SUBJECT_PREFIX SERVICE...

The databases come from the ``AZORA_*`` environment (as for the ``azora`` CLI); the
stream and subject prefix are the test's own, which the CLI cannot name. Runs until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from azora.db.engines import Databases
from azora.events.buses import NatsBus
from azora.events.relay import Relay
from azora.settings import Settings
from azora.types import ServiceName


async def main(argv: list[str]) -> None:
    url, stream, prefix, *services = argv
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bus = NatsBus(url, stream=stream, subject_prefix=prefix, max_age=600, timeout=2.0)
    async with Databases(Settings()) as databases:
        relay = Relay(
            databases,
            bus,
            services=[ServiceName(name) for name in services],
            backoff_base=0.1,
            backoff_max=1.0,
            listen_retry=0.2,
        )
        try:
            await relay.run(stop)
        finally:
            await bus.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main(sys.argv[1:]))
