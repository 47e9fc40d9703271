"""``azora events``: run the outbox relay, and read the event history."""

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
from azora.cli.runner import ServicesArg, console, fail, run, selected, settings
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.db.scope import SERVICE, scoped_connection
from azora.errors import AzoraError, InvalidInput
from azora.events.buses import open_bus
from azora.events.errors import BusUnavailable
from azora.events.patterns import matches, validate_pattern
from azora.events.relay import Relay
from azora.nexus.models import EventRecord
from azora.types import ServiceName

app = typer.Typer(help="The event outbox relay and the event history.", no_args_is_help=True)


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

    for service, count in run(job).items():
        console.print(f"{service}: published {count} events")


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
