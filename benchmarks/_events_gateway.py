"""The gateway under test, in its own process (started by ``benchmarks/events.py``).

Serves :class:`azora.gateway.server.Gateway` with uvicorn on a free loopback port, as
``azora serve`` does (plain asyncio, the in-process auth cache), over this run's
databases and NATS stream. Prints ``{"port": ..., "pid": ...}`` once it listens; on
``stats`` prints the hub's connection count, its RSS and the garbage collector's pauses
since the start or the last ``reset``; stops on ``stop``, EOF or the
deadline (see ``_events_child``). With ``profile`` (a directory) in the job it runs under
cProfile and writes ``gateway-PID.prof`` there.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import os
import sys
import threading
import time

from _events_child import commands, job, raise_fd_limit, reply, rss_kb, say

from azora.auth.service import AuthService
from azora.cache import Cache
from azora.cache.backends import MemoryBackend
from azora.db.engines import Databases
from azora.events.buses import NatsBus
from azora.gateway.server import Gateway, GatewayServer, settle_memory
from azora.loop import serving_loop
from azora.settings import Settings

STOP_GRACE_S = 20.0


class Pauses:
    """The garbage collector's pauses in this process (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.began = 0.0
        self.count = [0, 0, 0]
        self.longest = [0.0, 0.0, 0.0]
        self.total = 0.0
        gc.callbacks.append(self.note)

    def note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
            return
        took = time.perf_counter() - self.began
        generation = info["generation"]
        self.count[generation] += 1
        self.longest[generation] = max(self.longest[generation], took)
        self.total += took

    def figures(self) -> dict[str, object]:
        return {
            "gc_collections": self.count,
            "gc_longest_ms": [round(s * 1000, 1) for s in self.longest],
            "gc_total_ms": round(self.total * 1000, 1),
            "gc_tracked_objects": len(gc.get_objects()),
        }

    def reset(self) -> None:
        self.count, self.longest, self.total = [0, 0, 0], [0.0, 0.0, 0.0], 0.0


async def serve(spec: dict[str, object]) -> None:
    pauses = Pauses()
    settings = Settings(**spec["settings"])  # type: ignore[arg-type]
    bus = NatsBus(
        str(spec["nats_url"]), stream=str(spec["stream"]), subject_prefix=str(spec["prefix"])
    )
    cache = Cache(MemoryBackend())
    async with Databases(settings) as databases:
        auth = AuthService(databases, cache=cache)
        try:
            async with Gateway(databases, bus, auth, settings) as gateway:
                server = GatewayServer(gateway, "127.0.0.1", 0)
                serving = asyncio.create_task(server.serve())
                ready = asyncio.create_task(server.ready.wait())
                await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
                if not server.ready.is_set():
                    raise RuntimeError("the gateway did not start listening")
                settle_memory()  # as azora serve does once it listens
                reply(port=server.port, pid=os.getpid())
                async for command in commands(float(spec["deadline"])):  # type: ignore[arg-type]
                    if command == "stats":
                        reply(
                            connections=len(gateway.hub.connections),
                            routed=gateway.hub.routed,
                            rss_kb=rss_kb(),
                            **pauses.figures(),
                        )
                    elif command == "reset":
                        pauses.reset()
                say("stopping")
                server.should_exit = True
                try:
                    await asyncio.wait_for(serving, STOP_GRACE_S)
                except TimeoutError:
                    say("uvicorn did not stop in time; leaving anyway")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bus.aclose(), 5)
            await cache.aclose()


def main() -> None:
    spec = job()
    raise_fd_limit()
    began = time.time()
    # However the shutdown goes, this process is gone shortly after its deadline.
    watchdog = threading.Timer(float(spec["deadline"]) - began + 2 * STOP_GRACE_S, os._exit, (3,))
    watchdog.daemon = True
    watchdog.start()
    profile = spec.get("profile")
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    # On the event loop azora serve uses.
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=serving_loop()) as runner,
    ):
        runner.run(serve(spec))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{profile}/gateway-{os.getpid()}.prof")
        say(f"profile written to {profile}/gateway-{os.getpid()}.prof")
    say(f"done after {time.time() - began:.0f} s")
    sys.stdout.flush()
    os._exit(0)  # nothing left to wait for (a stuck thread must not keep us alive)


if __name__ == "__main__":
    main()
