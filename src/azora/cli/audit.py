"""``azora audit``: seal the audit logs into their hash chains and verify them."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from azora.cli.runner import EXIT_ERROR, ServicesArg, console, run, selected
from azora.db import lifecycle
from azora.db.audit import AuditReport, seal, verify
from azora.db.engines import Databases

app = typer.Typer(help="Seal and verify the tamper-evident audit logs.", no_args_is_help=True)


def _report_table(reports: list[AuditReport]) -> Table:
    table = Table(title="Audit chains")
    table.add_column("database")
    for name in ("rows", "sealed", "unsealed"):
        table.add_column(name, justify="right")
    table.add_column("status")
    table.add_column("head", no_wrap=True)
    for report in reports:
        if report.broken is None:
            status = "[green]ok[/]"
        else:
            status = f"[red]broken at seq {report.broken.seq}[/]"
        head = f"{report.head_seq} {report.head_hash[:16]}" if report.head_seq else "-"
        table.add_row(
            report.service,
            str(report.rows),
            str(report.sealed),
            str(report.unsealed),
            status,
            head,
        )
    return table


@app.command(name="verify")
def verify_command(services: ServicesArg = None) -> None:
    """Walk each audit chain and report its first broken link; exit 1 if any is broken.

    Rows not sealed yet are counted, not judged (`azora audit seal` chains them). The
    head is the last verified seq and the start of its hash: kept elsewhere, it shows
    later whether the newest rows were removed.
    """
    specs = selected(services)

    async def job(databases: Databases) -> list[AuditReport]:
        reports = []
        for spec in specs:
            await lifecycle.require_head(databases, spec.migrations)
            async with lifecycle.explained(databases, spec.migrations):
                reports.append(await verify(databases, spec.name))
        return reports

    reports = run(job)
    console.print(_report_table(reports))
    for report in reports:
        if report.broken is not None:
            link = report.broken
            console.print(
                f"[red]✗[/] {report.service}: seq {link.seq}, row {link.row_id}:"
                f" {escape(link.reason)}"
            )
    if not all(report.ok for report in reports):
        raise typer.Exit(EXIT_ERROR)


@app.command(name="seal")
def seal_command(services: ServicesArg = None) -> None:
    """Chain every audit row not sealed yet (writes seal in their wake; this drains the rest)."""
    specs = selected(services)

    async def job(databases: Databases) -> None:
        for spec in specs:
            await lifecycle.require_head(databases, spec.migrations)
            async with lifecycle.explained(databases, spec.migrations):
                sealed = await seal(databases, spec.name)
            console.print(f"{spec.name}: sealed {sealed} rows")

    run(job)
