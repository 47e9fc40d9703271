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
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Annotated, Any

import typer

from azora import __version__
from azora.auth.service import AuthService
from azora.cache.core import open_cache
from azora.catalog import SERVICES
from azora.cli.bus_claim import BusClaim
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
from azora.gateway.server import Gateway, GatewayServer, listen, settle_memory
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
    """Serve live events over Socket.IO, plus GET /, GET /health and GET /events/types.

    With the embedded default (SQLite) it first sets up and seeds the databases (a
    no-op after the first run); on PostgreSQL the databases must be migrated already
    (azora db setup). Runs until Ctrl-C (exit 130) or SIGTERM (exit 0), then stops the
    relay and the consumers and closes the databases. A port in use exits 1 at once.
    """
    config = settings()
    host = host or config.serve_host
    try:
        embedded = {resolve_target(config, s).backend for s in SERVICES} == {"sqlite"}
        # Bound first: a taken port is refused before anything is set up or printed.
        listening = listen(host, config.serve_port if port is None else port)
        # With memory://, this process's bus is the only one these databases may have.
        claim = BusClaim.acquire(config, "azora serve")
    except AzoraError as error:
        fail(error)
    with claim, listening:  # closed by the server once it serves; here if it never does
        try:
            with asyncio.Runner(loop_factory=serving_loop()) as runner:
                stopped_by = runner.run(_serve(config, listening, host, relay, consumers, embedded))
        except AzoraError as error:
            fail(error)
        except KeyboardInterrupt:  # only once the handlers are gone, while closing the loop
            stopped_by = signal.SIGINT
    if stopped_by == signal.SIGINT:
        err_console.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED)
    if stopped_by == signal.SIGTERM:
        err_console.print("stopped")


class _StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM as requests to stop gracefully, whatever disposition the
    process inherited (a background job of a non-interactive shell starts with SIGINT
    ignored).

    The first signal is kept in :attr:`received`. Before the server runs it cancels
    ``main`` (the setting up); once :attr:`server` is set it asks the server to stop,
    after which the workers, the bus and the databases are closed as usual. A second
    SIGINT while serving stops without waiting for open connections; other signals after
    the first change nothing.
    """

    def __init__(self, main: asyncio.Task[Any]) -> None:
        self.received: signal.Signals | None = None
        self.server: GatewayServer | None = None
        self._main = main

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle both signals in the running loop; put back the previous handlers after."""
        loop = asyncio.get_running_loop()

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self._stop, signal.Signals(signum))

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, action in previous.items():
                signal.signal(sig, action)

    def _stop(self, received: signal.Signals) -> None:
        first = self.received is None
        if first:
            self.received = received
        if self.server is not None:
            self.server.handle_exit(received, None)
        elif first:
            self._main.cancel()


async def _serve(
    config: Settings,
    listening: socket.socket,
    host: str,
    relay: bool,
    consumers: bool,
    embedded: bool,
) -> signal.Signals | None:
    """Set up, serve on ``listening`` until stopped, close everything; the signal that
    stopped it (None if the server ended on its own)."""
    main = asyncio.current_task()
    assert main is not None  # run by asyncio.Runner
    stopping = _StopSignals(main)
    with stopping.installed():
        try:
            await _setup_and_serve(config, listening, host, relay, consumers, embedded, stopping)
        except asyncio.CancelledError:
            if stopping.received is None:
                raise
            main.uncancel()  # cancelled by the signal, which says how it ended
    return stopping.received


async def _setup_and_serve(
    config: Settings,
    listening: socket.socket,
    host: str,
    relay: bool,
    consumers: bool,
    embedded: bool,
    stopping: _StopSignals,
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
                server = stopping.server = GatewayServer(gw, host, listening.getsockname()[1])
                announce = asyncio.create_task(_announce(server, host, sorted(workers)))
                settle_memory()
                await server.serve(sockets=[listening])
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
        "/socket.io, GET / (the links), GET /health, GET /events/types; running "
        f"{', '.join(workers) or 'the gateway only'}. Ctrl-C to stop."
    )


def _consumer_runner(databases: Databases, bus: Bus) -> Worker:
    """Every consumer of the product (:mod:`azora.sagas`), run on ``bus``."""
    return ConsumerRunner(databases, bus, load_all()).run
