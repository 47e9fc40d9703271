"""``azora mint verify`` against real databases on both backends."""

from __future__ import annotations

from azora.settings import Settings
from azora.types import ServiceName
from tests.cli.helpers import assert_clean_failure, execute_sql, invoke, read_table


def test_verify_passes_on_the_seeded_ledger_and_names_a_corrupted_wallet(
    cli_settings: Settings,
) -> None:
    assert invoke("db", "setup").exit_code == 0
    assert invoke("db", "seed").exit_code == 0
    clean = invoke("mint", "verify")
    assert clean.exit_code == 0, clean.output
    checks = read_table(clean.stdout, "Ledger verification")
    assert {row["result"] for row in checks.values()} == {"ok"}

    # One unit of 10^-8 on the first user wallet, behind the ledger's back.
    unit = "1" if cli_settings.database_url is None else "0.00000001"
    tamper = (
        f"UPDATE wallets SET balance = balance + {unit} WHERE id ="
        " (SELECT id FROM wallets WHERE kind = 'user' ORDER BY id LIMIT 1)"
    )
    if cli_settings.database_url is not None:
        # Past the ledger's balance guard, as only a superuser can (its replica mode).
        tamper = f"DO $$ BEGIN SET LOCAL session_replication_role = replica; {tamper}; END $$"
    execute_sql(cli_settings, ServiceName.MINT, tamper)
    broken = invoke("mint", "verify")
    assert broken.exit_code == 1, broken.output
    checks = read_table(broken.stdout, "Ledger verification")
    assert checks["wallet balances = sum of their entries"]["result"] == "1 differ"
    assert checks["entries of each transaction sum to zero"]["result"] == "ok"
    assert "entries sum to" in broken.stdout


def test_verify_on_an_unmigrated_database_is_a_readable_error(cli_settings: Settings) -> None:
    assert_clean_failure(invoke("mint", "verify"))
