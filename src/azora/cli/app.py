"""The ``azora`` command: entry point and top-level commands."""

from __future__ import annotations

import sys

import typer

from azora import __version__
from azora.catalog import SERVICES
from azora.cli import audit, auth, db, events, mint, runner
from azora.cli.db import PRODUCTION_SEED_NOTE
from azora.cli.render import health_table
from azora.cli.runner import EXIT_ERROR, console, fail, run, settings
from azora.cli.serve import serve
from azora.cli.tail import tail
from azora.db.engines import Databases
from azora.db.health import check_databases
from azora.db.urls import resolve_target
from azora.errors import AzoraError

app = typer.Typer(
    help="Azora's data layer: databases, ledger, cache and events.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(mint.app, name="mint")
app.add_typer(audit.app, name="audit")
app.add_typer(auth.app, name="auth")
events.app.command(name="tail")(tail)
app.add_typer(events.app, name="events")
app.command()(serve)


@app.command()
def up() -> None:
    """Set up every database, load the seed, and report health and row counts.

    The development seed, or with AZORA_ENV=production the production set only.
    """
    specs = list(SERVICES.values())
    config = settings()
    try:
        backends = {resolve_target(config, s.name).backend for s in specs}
    except AzoraError as error:
        fail(error)
    where = {
        frozenset({"sqlite"}): f"embedded SQLite in {config.data_dir}",
        frozenset({"postgresql"}): "PostgreSQL",
    }.get(frozenset(backends), "PostgreSQL and SQLite")
    console.print(f"[bold]Azora {__version__}[/] on {where}")
    production = db.production_seed(config)
    if production:
        console.print(PRODUCTION_SEED_NOTE)

    async def job(databases: Databases) -> bool:
        await db.setup_all(databases, specs)
        await db.seed_all(databases, production=production)
        results = await check_databases(databases, [s.migrations for s in specs])
        console.print(health_table(results))
        return all(r.migrated for r in results)

    if not run(job):
        raise typer.Exit(EXIT_ERROR)


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(__version__)


def main() -> None:
    """Console-script entry point: whatever happens, no traceback reaches the terminal.

    An expected error a command let through is one readable line; anything else is a
    bug, reported as one line naming the file that holds its traceback. Both exit 1.
    """
    try:
        app()
    except AzoraError as error:
        sys.exit(runner.report(error))
    except Exception as exc:
        sys.exit(runner.report_bug(exc))
