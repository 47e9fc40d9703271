"""``azora db``: create, migrate, inspect, reset, seed and check the service databases."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from azora.catalog import SERVICES, ServiceSpec
from azora.cli.render import health_table, revision, seed_table
from azora.cli.runner import (
    EXIT_ERROR,
    ServicesArg,
    console,
    err_console,
    fail,
    run,
    selected,
    settings,
)
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.db.errors import OperationRefused
from azora.db.health import check_databases
from azora.db.migrate import make_migration
from azora.db.seeding import SeedReport, run_seeds
from azora.errors import AzoraError
from azora.types import Environment

app = typer.Typer(help="Manage the nine service databases.", no_args_is_help=True)


async def setup_all(databases: Databases, specs: list[ServiceSpec]) -> bool:
    """Create and migrate ``specs``' databases, printing what changed; True if anything did."""
    # One after another: Alembic's `op`/`context` are process-wide proxies.
    reports = [await lifecycle.setup(databases, spec.migrations) for spec in specs]
    changed = False
    for spec, report in zip(specs, reports, strict=True):
        if not report.changed:
            continue
        changed = True
        what = "created and migrated" if report.created else "migrated"
        console.print(
            f"{spec.name}: {what} {revision(report.migration.before)}"
            f" → {revision(report.migration.after)}"
        )
    if not changed:
        console.print(f"nothing to do: all {len(specs)} databases exist and are at head")
    return changed


@app.command()
def setup(services: ServicesArg = None) -> None:
    """Create missing databases and apply all migrations (safe to run again)."""
    specs = selected(services)
    run(lambda databases: setup_all(databases, specs))


@app.command()
def migrate(services: ServicesArg = None) -> None:
    """Apply pending migrations to existing databases."""
    specs = selected(services)

    async def job(databases: Databases) -> None:
        results = [await lifecycle.migrate(databases, s.migrations) for s in specs]
        moved = [r for r in results if r.changed]
        for r in moved:
            console.print(f"{r.service}: {revision(r.before)} → {revision(r.after)}")
        if not moved:
            console.print("nothing to do: every database is at head")

    run(job)


@app.command()
def makemigrations(
    service: Annotated[str, typer.Argument(help="The service whose models changed.")],
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
) -> None:
    """Write a new migration for the difference between a service's models and its history."""
    (spec,) = selected([service])
    path = run(lambda _databases: make_migration(spec.migrations, message))
    if path is None:
        console.print(f"{spec.name}: no changes; the models match the latest migration")
    else:
        console.print(f"{spec.name}: wrote {path}")


@app.command()
def status(services: ServicesArg = None) -> None:
    """Show each database's revision against head, and drift; exits 1 unless all are current."""
    specs = selected(services)

    async def job(databases: Databases) -> bool:
        table = Table(title="Migration status")
        for column in ("database", "current", "head", "state"):
            table.add_column(column)
        healthy = True
        for spec in specs:
            try:
                report = await lifecycle.status(databases, spec.migrations)
            except AzoraError as error:
                healthy = False
                table.add_row(spec.name, "-", "-", f"[red]{escape(error.message)}[/]")
                continue
            if report.drift:
                state = "[red]drift:[/] " + escape("; ".join(report.drift))
            elif report.pending:
                state = "[yellow]migrations pending[/] (run `azora db migrate`)"
            else:
                state = "[green]up to date[/]"
            healthy = healthy and report.ok
            table.add_row(spec.name, revision(report.current), revision(report.head), state)
        console.print(table)
        return healthy

    if not run(job):
        raise typer.Exit(EXIT_ERROR)


@app.command()
def reset(
    services: ServicesArg = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Drop and recreate databases from empty (development only; destroys their data)."""
    specs = selected(services)
    if settings().env is Environment.PRODUCTION:
        fail(
            OperationRefused(
                "refusing to reset databases when AZORA_ENV=production",
                hint="reset is for development; restore a backup in production",
            )
        )
    names = ", ".join(s.name for s in specs)
    if not yes and not typer.confirm(f"Drop and recreate {names}? All their data is lost"):
        err_console.print("aborted; nothing was changed")
        raise typer.Exit(EXIT_ERROR)

    async def job(databases: Databases) -> None:
        for spec in specs:
            report = await lifecycle.reset(databases, spec.migrations)
            console.print(f"{spec.name}: reset to {revision(report.migration.after)}")

    run(job)


async def seed_all(databases: Databases, *, production: bool) -> list[SeedReport]:
    """Seed every database and print the rows table (and notices such as a new password)."""
    plan = [
        (s.migrations, s.seed_production if production else s.seed_development)
        for s in SERVICES.values()
    ]
    admin = databases.settings.admin_password
    reports, ctx = await run_seeds(
        databases,
        plan,
        production=production,
        admin_password=admin.get_secret_value() if admin else None,
    )
    console.print(seed_table(reports))
    created = sum(r.created for r in reports)
    kind = "production" if production else "development"
    if created:
        console.print(f"seeded the {kind} set: {created} rows created")
    else:
        console.print(f"nothing to do: the {kind} seed is already in place")
    for notice in ctx.notices:
        console.print(f"[bold yellow]note:[/] {escape(notice)}")
    return reports


@app.command()
def seed(
    prod: Annotated[bool, typer.Option("--prod", help="The minimal production set.")] = False,
) -> None:
    """Load seed data (the development set, or --prod); creates only what is missing."""
    if not prod and settings().env is Environment.PRODUCTION:
        fail(
            OperationRefused(
                "refusing to load development seed data when AZORA_ENV=production",
                hint="use `azora db seed --prod`",
            )
        )
    run(lambda databases: seed_all(databases, production=prod))


@app.command()
def health(services: ServicesArg = None) -> None:
    """Check each database: reachable, latency, revision; exits 1 if any is down."""
    specs = selected(services)
    results = run(lambda databases: check_databases(databases, [s.migrations for s in specs]))
    console.print(health_table(results))
    if not all(r.up for r in results):
        raise typer.Exit(EXIT_ERROR)
