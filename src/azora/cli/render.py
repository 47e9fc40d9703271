"""Tables the commands print."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from azora.db.health import DatabaseHealth
from azora.db.seeding import SeedReport


def revision(value: str | None) -> str:
    """A revision for display (``-`` for an empty schema)."""
    return value or "-"


def health_table(results: Sequence[DatabaseHealth]) -> Table:
    """One row per database: up/down, latency, revision (and head when behind), location.

    Why a database is down is in the table's caption, one line per database.
    """
    table = Table(title="Database health")
    for column in ("database", "status", "latency", "revision"):
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
            state, latency, rev = "[red]down[/]", "-", "-"
        table.add_row(item.service, state, latency, rev, escape(item.location))
    errors = [f"{item.service}: {item.error}" for item in results if not item.up]
    if errors:
        table.caption = escape("\n".join(errors))
        table.caption_justify = "left"
    return table


def seed_table(reports: Sequence[SeedReport]) -> Table:
    """Rows per database after seeding, and how many the run created."""
    table = Table(title="Rows per database")
    table.add_column("database")
    table.add_column("rows", justify="right")
    table.add_column("created", justify="right")
    for report in reports:
        table.add_row(report.service, str(report.rows_after), str(report.created))
    table.add_row(
        "[bold]total[/]",
        str(sum(r.rows_after for r in reports)),
        str(sum(r.created for r in reports)),
    )
    return table
