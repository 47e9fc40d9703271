"""``azora events tail [PATTERN]``: print events as they happen.

With a broker (``AZORA_EVENTS_URL=nats://...`` or ``redis://...``) it taps the bus, so
it sees each event the moment the relay publishes it. With the embedded in-process bus
(``memory://``) the bus lives inside another process (``azora serve``), so it follows the
nexus history instead, where the relay archives every event it publishes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from sqlalchemy import select

from azora.catalog import SERVICES
from azora.cli.runner import console, fail, run, settings
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.db.scope import SERVICE, scoped_connection
from azora.errors import AzoraError
from azora.events.buses import open_bus
from azora.events.envelope import Envelope
from azora.events.history import RECORDS, from_record
from azora.events.patterns import matches, validate_pattern
from azora.types import ServiceName


def tail(
    pattern: Annotated[
        str, typer.Argument(help="Event types to show: a name or pattern (finance.*, finance.>).")
    ] = ">",
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON envelope per line instead of a table row.")
    ] = False,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Exit after this many events.")
    ] = None,
    poll: Annotated[
        float,
        typer.Option(min=0.05, max=60.0, help="Seconds between reads of the history (memory://)."),
    ] = 0.5,
) -> None:
    """Print events as they are published, until Ctrl-C (or --count events)."""
    try:
        validate_pattern(pattern)
    except AzoraError as error:
        fail(error)
    url = settings().events_url

    async def job(databases: Databases) -> int:
        shown = 0
        source = (
            _from_history(databases, pattern, poll)
            if urlsplit(url).scheme == "memory"
            else _from_bus(url, pattern)
        )
        async for envelope in source:
            _show(envelope, as_json)
            shown += 1
            if count is not None and shown >= count:
                break
        return shown

    run(job)


async def _from_bus(url: str, pattern: str) -> AsyncIterator[Envelope]:
    bus = open_bus(url)
    try:
        tap = await bus.tap(pattern)
        console.print(f"[dim]tailing {escape(pattern)} on the bus; Ctrl-C to stop[/]")
        try:
            async for envelope in tap:
                yield envelope
        finally:
            await tap.aclose()
    finally:
        await bus.aclose()


async def _from_history(databases: Databases, pattern: str, poll: float) -> AsyncIterator[Envelope]:
    await lifecycle.require_head(databases, SERVICES[ServiceName.NEXUS].migrations)
    engine = databases.engine(ServiceName.NEXUS)
    console.print(f"[dim]tailing {escape(pattern)} in the event history; Ctrl-C to stop[/]")
    # From the newest archived record: what is archived from now on is new.
    async with scoped_connection(engine, SERVICE) as connection:
        last = await connection.scalar(select(RECORDS.c.id).order_by(RECORDS.c.id.desc()).limit(1))
    while True:
        query = select(RECORDS).order_by(RECORDS.c.id).limit(1000)
        if last is not None:
            query = query.where(RECORDS.c.id > last)
        async with scoped_connection(engine, SERVICE) as connection:
            rows = list(await connection.execute(query))
        for row in rows:
            last = row.id
            if matches(pattern, row.type):
                yield from_record(row)
        if not rows:
            await asyncio.sleep(poll)


def _show(envelope: Envelope, as_json: bool) -> None:
    if as_json:
        # Straight to stdout, one object per line, for jq and friends.
        print(envelope.model_dump_json(), flush=True)
        return
    occurred = envelope.occurred_at.astimezone(dt.UTC).strftime("%H:%M:%S.%f")[:-3]
    payload = escape(json.dumps(envelope.payload, separators=(",", ":"), default=str))
    console.print(
        f"{occurred}  [bold]{escape(envelope.type)}[/]  {envelope.source}  "
        f"{envelope.subject or '-'}  {envelope.id}  [dim]{payload}[/]"
    )
