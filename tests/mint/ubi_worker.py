"""One UBI round in its own process, for the crash test to kill (``test_ubi_crash.py``).

    AZORA_MINT_DATABASE_URL=... python tests/mint/ubi_worker.py PERIOD [--amount 1]

Settings come from the environment, as for any entry point. The worker opens its
connection first, then prints ``ready`` and starts the round, so the caller can time a
kill from the start of the round itself; when the round returns it prints one JSON line:
the ``UbiResult`` plus ``seconds``, the round's duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from sqlalchemy import text

from azora.db.engines import Databases
from azora.mint.service import MintService
from azora.settings import load_settings
from azora.types import ServiceName

READY = "ready"


async def run(period: str, amount: str, currency: str) -> dict[str, object]:
    """Pay one round for ``period``; returns its result and duration."""
    async with Databases(load_settings()) as databases:
        # Open the pool's connection before the clock starts: the round alone is timed.
        async with databases.owner_engine(ServiceName.MINT).connect() as connection:
            await connection.execute(text("SELECT 1"))
        print(READY, flush=True)
        started = time.perf_counter()
        result = await MintService(databases).distribute_ubi(currency, amount, period)
        seconds = time.perf_counter() - started
    return {**result.model_dump(mode="json"), "seconds": seconds}


def main() -> None:
    """Parse the arguments, run the round, print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("period")
    parser.add_argument("--amount", default="1")
    parser.add_argument("--currency", default="AZR")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.period, args.amount, args.currency))), flush=True)


if __name__ == "__main__":
    main()
