"""``azora mint``: inspect the ledger."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from azora.catalog import SERVICES
from azora.cli.runner import EXIT_ERROR, console, run
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.mint.queries import VerifyReport
from azora.mint.service import MintService
from azora.types import ServiceName

app = typer.Typer(help="Inspect the mint's ledger.", no_args_is_help=True)


async def _verify(databases: Databases) -> VerifyReport:
    source = SERVICES[ServiceName.MINT].migrations
    await lifecycle.require_head(databases, source)
    async with lifecycle.explained(databases, source):  # e.g. a damaged database file
        return await MintService(databases).verify()


@app.command()
def verify() -> None:
    """Recompute every balance from the journal and check the invariants; exit 1 on a difference."""
    report = run(_verify)
    table = Table(title="Ledger verification")
    table.add_column("check")
    table.add_column("result")
    checks = (
        ("wallet balances = sum of their entries", report.wallet_mismatches),
        ("entries of each transaction sum to zero", report.unbalanced_transactions),
        ("balances of each currency sum to zero", report.currency_imbalances),
        ("economic metrics match the wallets", report.metric_mismatches),
    )
    for name, problems in checks:
        table.add_row(name, "[green]ok[/]" if not problems else f"[red]{len(problems)} differ[/]")
    console.print(table)
    console.print(
        f"checked {report.wallets_checked} wallets and {report.transactions_checked} transactions"
    )
    for _, problems in checks:
        for line in problems:
            console.print(f"[red]✗[/] {escape(line)}")
    if not report.ok:
        raise typer.Exit(EXIT_ERROR)
