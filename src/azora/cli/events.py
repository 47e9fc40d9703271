"""``azora events``: run the outbox relay, read the event history, re-drive dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from azora.catalog import SERVICES
from azora.cli.bus_claim import BusClaim
from azora.cli.runner import ServicesArg, console, fail, run, selected, settings
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.db.scope import SERVICE, scoped_connection
from azora.errors import AzoraError, InvalidInput
from azora.events.buses import open_bus
from azora.events.consumers import ConsumerRunner, ReplayResult, find, replay
from azora.events.dead_letters import DeadLetter, dead_letters
from azora.events.errors import BusUnavailable
from azora.events.patterns import matches, validate_pattern
from azora.events.relay import Relay
from azora.loop import serving_loop
from azora.nexus.models import EventRecord
from azora.sagas import CONSUMERS
from azora.types import ServiceName

app = typer.Typer(help="The event outbox relay and the event history.", no_args_is_help=True)


def claimed(command: str) -> BusClaim:
    """The in-process bus claimed for ``command`` (when AZORA_EVENTS_URL is memory://),
    or a readable exit when another process holds it."""
    try:
        return BusClaim.acquire(settings(), command)
    except AzoraError as error:
        fail(error)


@app.command(name="relay")
def relay_command(
    services: ServicesArg = None,
    once: Annotated[
        bool, typer.Option("--once", help="Publish what is in the outboxes now, then exit.")
    ] = False,
) -> None:
    """Publish the databases' outboxes to the bus at AZORA_EVENTS_URL, in order per subject.

    Runs until interrupted (Ctrl-C), or with --once until the outboxes are drained. Every
    published event is also kept in the nexus database's history.
    """
    specs = selected(services)
    bus = open_bus(settings().events_url)

    async def job(databases: Databases) -> dict[ServiceName, int]:
        needed = [*specs, SERVICES[ServiceName.NEXUS]]  # nexus keeps the history
        for spec in {s.name: s for s in needed}.values():
            await lifecycle.require_head(databases, spec.migrations)
        relay = Relay(databases, bus, services=[spec.name for spec in specs])
        try:
            if not once:
                await relay.run(asyncio.Event())  # until interrupted
                return {}
            published = {}
            for spec in specs:
                total = 0
                while sent := await relay.run_once(spec.name):
                    total += sent
                if relay.backing_off(spec.name):
                    raise BusUnavailable(
                        f"the bus refused the {spec.name} events",
                        hint="they stay in the outbox; run the relay again when the bus is up",
                    )
                published[spec.name] = total
            return published
        finally:
            await bus.aclose()

    with claimed("azora events relay"):
        published = run(job, loop_factory=serving_loop())
    for service, count in published.items():
        console.print(f"{service}: published {count} events")


@app.command(name="consume")
def consume_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help=f"Consumers to run (default: all). One of: {', '.join(c.name for c in CONSUMERS)}."
        ),
    ] = None,
) -> None:
    """Run the durable consumers (the sagas) on the bus at AZORA_EVENTS_URL until Ctrl-C.

    Each event is handled once per consumer, in the consumer's service database; after
    its last failed attempt it becomes a dead letter (see dead-letters and replay).
    """
    try:
        chosen = [find(CONSUMERS, name) for name in names] if names else list(CONSUMERS)
    except AzoraError as error:
        fail(error)
    bus = open_bus(settings().events_url)

    async def job(databases: Databases) -> None:
        for service in {c.service for c in chosen}:
            await lifecycle.require_head(databases, SERVICES[service].migrations)
        console.print(f"running {len(chosen)} consumers; Ctrl-C to stop")
        try:
            await ConsumerRunner(databases, bus, chosen).run(asyncio.Event())
        finally:
            await bus.aclose()

    with claimed("azora events consume"):
        run(job, loop_factory=serving_loop())


def _uuid(value: str | None, option: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(InvalidInput(f"{option} must be a UUID, not {value!r}"))


@app.command(name="history")
def history_command(
    user: Annotated[str | None, typer.Option("--user", help="Events of this user id.")] = None,
    type_: Annotated[
        str | None,
        typer.Option("--type", help="An event type or pattern (finance.*, finance.>)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events after this event id.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
) -> None:
    """Events kept in the history, oldest first (what the relay has published)."""
    user_id, after = _uuid(user, "--user"), _uuid(since, "--since")
    if type_ is not None:
        try:
            validate_pattern(type_)
        except AzoraError as error:
            fail(error)

    async def job(databases: Databases) -> list[Any]:
        await lifecycle.require_head(databases, SERVICES[ServiceName.NEXUS].migrations)
        records = EventRecord.__table__
        query = select(records).order_by(records.c.event_id)
        if user_id is not None:
            query = query.where(records.c.subject_user_id == user_id)
        if after is not None:
            query = query.where(records.c.event_id > after)
        engine = databases.engine(ServiceName.NEXUS)
        rows: list[Any] = []
        async with scoped_connection(engine, SERVICE) as connection:
            result = await connection.stream(query.execution_options(yield_per=1000))
            async for row in result:
                if type_ is None or matches(type_, row.type):
                    rows.append(row)
                    if len(rows) == limit:
                        break
        return rows

    rows = run(job)
    table = Table(title=f"Event history ({len(rows)})")
    for name in ("event id", "occurred (UTC)", "type", "source", "user"):
        table.add_column(name, no_wrap=True)
    for row in rows:
        occurred: dt.datetime = row.occurred_at
        table.add_row(
            str(row.event_id),
            occurred.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
            escape(row.type),
            row.source,
            str(row.subject_user_id or "-"),
        )
    console.print(table)


def _consumer_services(services: list[str] | None, consumer: str | None) -> list[ServiceName]:
    """The databases to look in: those named, else the consumer's, else every consumer's."""
    if services:
        return [spec.name for spec in selected(services)]
    if consumer is not None:
        return [find(CONSUMERS, consumer).service]
    return sorted({c.service for c in CONSUMERS})


_ConsumerOption = Annotated[
    str | None, typer.Option("--consumer", help="Only this consumer's dead letters.")
]
_EventOption = Annotated[str | None, typer.Option("--id", help="Only this event id's.")]


def _letter_row(letter: DeadLetter) -> list[str]:
    failed: dt.datetime = letter.failed_at
    return [
        str(letter.service),
        letter.consumer,
        str(letter.event_id),
        escape(letter.event_type),
        str(letter.attempts),
        failed.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
    ]


def _letters_table(title: str, *extra: str) -> Table:
    table = Table(title=title)
    for name in ("service", "consumer", "event id", "type", "attempts", "last failure (UTC)"):
        table.add_column(name, no_wrap=True)
    for name in extra:
        table.add_column(name)
    return table


def _filters(
    services: list[str] | None, consumer: str | None, event: str | None
) -> tuple[list[ServiceName], uuid.UUID | None]:
    event_id = _uuid(event, "--id")
    try:
        if consumer is not None:
            find(CONSUMERS, consumer)
        return _consumer_services(services, consumer), event_id
    except AzoraError as error:
        fail(error)


@app.command(name="dead-letters")
def dead_letters_command(
    services: ServicesArg = None,
    consumer: _ConsumerOption = None,
    event: _EventOption = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Also the dead letters already replayed.")
    ] = False,
) -> None:
    """The events consumers gave up on (not yet replayed unless --all), oldest first."""
    names, event_id = _filters(services, consumer, event)

    async def job(databases: Databases) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        for name in names:
            await lifecycle.require_head(databases, SERVICES[name].migrations)
            letters += await dead_letters(
                databases, name, consumer=consumer, event_id=event_id, pending_only=not everything
            )
        return letters

    letters = run(job)
    table = _letters_table(f"Dead letters ({len(letters)})", "replayed", "error")
    for letter in letters:
        replayed = "yes" if letter.replayed_at is not None else "no"
        table.add_row(*_letter_row(letter), replayed, escape(letter.error))
    console.print(table)


@app.command(name="replay")
def replay_command(
    services: ServicesArg = None,
    consumer: _ConsumerOption = None,
    event: _EventOption = None,
) -> None:
    """Handle the dead letters again (idempotently); exits non-zero if any still fails.

    A letter handled now is marked replayed; one that fails again keeps its new error.
    """
    names, event_id = _filters(services, consumer, event)

    async def job(databases: Databases) -> list[ReplayResult]:
        results: list[ReplayResult] = []
        for name in names:
            await lifecycle.require_head(databases, SERVICES[name].migrations)
            results += await replay(
                databases, CONSUMERS, name, consumer_name=consumer, event_id=event_id
            )
        return results

    results = run(job)
    table = _letters_table(f"Replayed dead letters ({len(results)})", "result")
    for result in results:
        outcome = "replayed" if result.ok else f"failed: {result.error}"
        table.add_row(*_letter_row(result.letter), escape(outcome))
    console.print(table)
    failed = sum(not result.ok for result in results)
    if failed:
        fail(
            AzoraError(
                f"{failed} of {len(results)} dead letters still fail",
                hint="fix the cause, then run `azora events replay` again",
            )
        )
