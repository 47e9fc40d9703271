"""Tables the commands print."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from azora.cli.runner import console as default_console
from azora.db.health import DatabaseHealth
from azora.db.seeding import SeedReport


def revision(value: str | None) -> str:
    """A revision for display (``-`` for an empty schema)."""
    return value or "-"


def health_table(results: Sequence[DatabaseHealth]) -> Table:
    """One row per database: up/down (or damaged), latency, revision (and head when
    behind), the integrity check's verdict, location.

    Why a database is down is in the table's caption, one line per database.
    """
    table = Table(title="Database health")
    for column in ("database", "status", "latency", "revision", "integrity"):
        table.add_column(column, no_wrap=True)
    table.add_column("location", overflow="fold")
    for item in results:
        if item.up:
            state = "[green]up[/]" if item.migrated else "[yellow]up, not migrated[/]"
            latency = f"{item.latency_ms:.2f} ms" if item.latency_ms is not None else "-"
            rev = revision(item.revision)
            if not item.migrated:
                rev += f" (head {revision(item.head)})"
        else:
            state = "[red]damaged[/]" if item.integrity == "damaged" else "[red]down[/]"
            latency, rev = "-", "-"
        integrity = escape(item.integrity or "-")
        table.add_row(item.service, state, latency, rev, integrity, escape(item.location))
    errors = [f"{item.service}: {item.error}" for item in results if not item.up]
    if errors:
        table.caption = escape("\n".join(errors))
        table.caption_justify = "left"
    return table


def seed_table(reports: Sequence[SeedReport]) -> Table:
    """Per database: every row it holds now (all tables, whoever wrote them) and the rows
    this run of the seed added."""
    table = Table(title="Rows per database")
    table.add_column("database")
    table.add_column("rows (all tables)", justify="right")
    table.add_column("added by this seed", justify="right")
    for report in reports:
        table.add_row(report.service, str(report.rows_after), str(report.created))
    table.add_row(
        "[bold]total[/]",
        str(sum(r.rows_after for r in reports)),
        str(sum(r.created for r in reports)),
    )
    return table


@contextmanager
def progress_bar(what: str, console: Console | None = None) -> Iterator[Progress]:
    """A transient progress bar for work over the databases: drawn on a terminal and
    gone when the work ends; elsewhere (a pipe, a log) nothing but what the work prints
    through ``progress.console``."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or default_console,
        transient=True,
    ) as progress:
        yield progress
