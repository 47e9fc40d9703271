"""``azora serve``: the Socket.IO gateway, with the outbox relay and the consumers beside it.

One process serves everything the embedded mode needs (its bus lives in the process, so
the relay, the consumers and the gateway must share it). With a broker
(``AZORA_EVENTS_URL=nats://...`` or ``redis://...``) the same command scales out: run
several, or turn the relay and the consumers off in some (``--no-relay``,
``--no-consumers``) and run ``azora events relay`` on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer

from azora import __version__
from azora.auth.service import AuthService
from azora.cache.core import open_cache
from azora.catalog import SERVICES
from azora.cli.db import PRODUCTION_SEED_NOTE, production_seed, seed_all, setup_all
from azora.cli.runner import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    console,
    err_console,
    fail,
    settings,
)
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.db.urls import resolve_target
from azora.errors import AzoraError
from azora.events.bus import Bus
from azora.events.buses import open_bus
from azora.events.consumers import ConsumerRunner
from azora.events.relay import Relay
from azora.gateway.server import Gateway, GatewayServer, settle_memory
from azora.loop import serving_loop
from azora.sagas import load_all
from azora.settings import Settings

#: Runs beside the gateway until ``stop`` is set (the relay, the consumers).
Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (AZORA_SERVE_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (AZORA_SERVE_PORT).", min=0, max=65535)
    ] = None,
    relay: Annotated[bool, typer.Option(help="Run the outbox relay in this process.")] = True,
    consumers: Annotated[
        bool, typer.Option(help="Run the event consumers (sagas) in this process.")
    ] = True,
) -> None:
    """Serve live events over Socket.IO, plus GET /health and GET /events/types.

    With the embedded default (SQLite) it first sets up and seeds the databases (a
    no-op after the first run); on PostgreSQL the databases must be migrated already
    (azora db setup). Runs until Ctrl-C.
    """
    config = settings()
    try:
        embedded = {resolve_target(config, s).backend for s in SERVICES} == {"sqlite"}
    except AzoraError as error:
        fail(error)
    try:
        with asyncio.Runner(loop_factory=serving_loop()) as runner:
            runner.run(_serve(config, host or config.serve_host, port, relay, consumers, embedded))
    except AzoraError as error:
        fail(error)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


async def _serve(
    config: Settings,
    host: str,
    port: int | None,
    relay: bool,
    consumers: bool,
    embedded: bool,
) -> None:
    async with Databases(config) as databases:
        specs = list(SERVICES.values())
        if embedded:
            await setup_all(databases, specs)
            production = production_seed(config)
            if production:
                console.print(PRODUCTION_SEED_NOTE)
            await seed_all(databases, production=production)
        else:
            for spec in specs:
                await lifecycle.require_head(databases, spec.migrations)
        bus = open_bus(config.events_url)
        cache = open_cache(config)
        workers: dict[str, Worker] = {}
        if relay:
            workers["relay"] = Relay(databases, bus).run
        if consumers:
            workers["consumers"] = _consumer_runner(databases, bus)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(work(stop), name=name) for name, work in workers.items()]
        try:
            async with Gateway(databases, bus, AuthService(databases, cache=cache), config) as gw:
                server = GatewayServer(gw, host, config.serve_port if port is None else port)
                announce = asyncio.create_task(_announce(server, host, sorted(workers)))
                settle_memory()
                await server.serve()
                announce.cancel()
                if not server.ready.is_set():
                    raise typer.Exit(EXIT_ERROR)
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 10)
            await bus.aclose()
            await cache.aclose()


async def _announce(server: GatewayServer, host: str, workers: list[str]) -> None:
    await server.ready.wait()
    console.print(
        f"[bold]Azora {__version__}[/] serving on http://{host}:{server.port}: Socket.IO at "
        "/socket.io, GET /health, GET /events/types; running "
        f"{', '.join(workers) or 'the gateway only'}. Ctrl-C to stop."
    )


def _consumer_runner(databases: Databases, bus: Bus) -> Worker:
    """Every consumer of the product (:mod:`azora.sagas`), run on ``bus``."""
    return ConsumerRunner(databases, bus, load_all()).run
