"""``azora db``: create, migrate, inspect, reset, seed and check the service databases."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from azora.catalog import SERVICES, ServiceSpec
from azora.cli.render import health_table, progress_bar, revision, seed_table
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
from azora.references import dependents
from azora.settings import Settings
from azora.types import Environment

app = typer.Typer(help="Manage the nine service databases.", no_args_is_help=True)


async def setup_all(databases: Databases, specs: list[ServiceSpec]) -> bool:
    """Create and migrate ``specs``' databases, printing each as it finishes (with a
    progress bar on a terminal); True if anything changed."""
    changed = False
    with progress_bar("setting up") as progress:
        task = progress.add_task("setting up", total=len(specs))
        # One after another: Alembic's `op`/`context` are process-wide proxies.
        for spec in specs:
            progress.update(task, description=f"setting up {spec.name}")
            report = await lifecycle.setup(databases, spec.migrations)
            progress.advance(task)
            if not report.changed:
                continue
            changed = True
            what = "created and migrated" if report.created else "migrated"
            progress.console.print(
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
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade",
            help="Also reset the databases that keep ids of their rows (for auth: every"
            " database that keeps user ids).",
        ),
    ] = False,
) -> None:
    """Drop and recreate databases from empty (development only; destroys their data).

    Rows of other databases that keep ids of theirs (user ids of auth, for one) would
    refer to nothing: they are listed first, and the reset goes on only with --cascade
    (which resets those databases too) or when confirmed at the prompt, never on --yes.
    """
    specs = selected(services)
    if settings().env is Environment.PRODUCTION:
        fail(
            OperationRefused(
                "refusing to reset databases when AZORA_ENV=production",
                hint="reset is for development; restore a backup in production",
            )
        )
    chosen = {s.name for s in specs}
    if cascade:
        chosen |= dependents(chosen)
        specs = [spec for name, spec in SERVICES.items() if name in chosen]
    names = ", ".join(s.name for s in specs)
    left = run(lambda databases: lifecycle.dangling(databases, chosen))
    question = f"Drop and recreate {names}? All their data is lost"
    if left:
        others = ", ".join(sorted({d.reference.service for d in left}))
        _print_dangling(names, left)
        if yes:
            fail(
                OperationRefused(
                    f"not resetting {names}: rows in {others} keep ids of their rows",
                    hint=f"add --cascade to reset {others} as well (destroying their data"
                    " too), or leave out --yes to be asked",
                )
            )
        question = (
            f"Drop and recreate {names} anyway (all their data is lost),"
            " leaving those rows referring to nothing?"
        )
    if not yes and not typer.confirm(question):
        err_console.print("aborted; nothing was changed")
        raise typer.Exit(EXIT_ERROR)

    async def job(databases: Databases) -> None:
        for spec in specs:
            report = await lifecycle.reset(databases, spec.migrations)
            console.print(f"{spec.name}: reset to {revision(report.migration.after)}")

    run(job)


def _print_dangling(names: str, left: list[lifecycle.Dangling]) -> None:
    """List the rows a reset of ``names`` would leave referring to nothing, per database."""
    console.print(
        f"[yellow]warning:[/] other databases keep ids of rows in {names};"
        " after the reset they would refer to nothing:"
    )
    by_service: dict[str, list[str]] = {}
    for item in left:
        ref = item.reference
        rows = "1 row" if item.rows == 1 else f"{item.rows} rows"
        by_service.setdefault(ref.service, []).append(
            f"{rows} of {escape(ref.describe())} → {ref.target}.{ref.target_table}"
        )
    for service, lines in by_service.items():
        console.print(f"  {service}: {'; '.join(lines)}")


#: What `azora up` and `azora serve` say before seeding in production.
PRODUCTION_SEED_NOTE = (
    "AZORA_ENV=production: loading the production seed only (system wallets, metrics,"
    " the AI family; no accounts)"
)


def production_seed(settings: Settings) -> bool:
    """True when ``settings`` may load only the production seed (``AZORA_ENV=production``)."""
    return settings.env is Environment.PRODUCTION


async def seed_all(databases: Databases, *, production: bool) -> list[SeedReport]:
    """Seed every database, printing each as it finishes, then the rows table and any
    notice (such as a generated password in development).

    Raises:
        OperationRefused: the development set in production (see ``run_seeds``).
    """
    plan = [
        (s.migrations, s.seed_production if production else s.seed_development)
        for s in SERVICES.values()
    ]
    admin = databases.settings.admin_password
    kind = "production" if production else "development"
    with progress_bar(f"seeding the {kind} set") as progress:
        task = progress.add_task(f"seeding the {kind} set", total=len(plan))

        def done(report: SeedReport) -> None:
            progress.advance(task)

        reports, ctx = await run_seeds(
            databases,
            plan,
            production=production,
            admin_password=admin.get_secret_value() if admin else None,
            on_done=done,
        )
    console.print(seed_table(reports))
    created = sum(r.created for r in reports)
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
    """Load seed data (the development set, or --prod); creates only what is missing.

    The development set is refused when AZORA_ENV=production.
    """
    run(lambda databases: seed_all(databases, production=prod))


@app.command()
def health(services: ServicesArg = None) -> None:
    """Check each database: reachable, latency, revision and a cheap integrity check
    (SQLite's quick_check, PostgreSQL's data checksum failures); exits 1 if any is down
    or damaged."""
    specs = selected(services)
    results = run(lambda databases: check_databases(databases, [s.migrations for s in specs]))
    console.print(health_table(results))
    if not all(r.up for r in results):
        raise typer.Exit(EXIT_ERROR)
