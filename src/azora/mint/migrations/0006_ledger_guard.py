"""ledger guard: the ledger is read-only to users, and no balance moves without an entry

Created: 2026-12-02

On PostgreSQL (SQLite has neither row-level security nor deferred triggers; there the
ledger's own code is the guard):

- the owner policy of each ledger table (``azora_owner``, every command) becomes a read
  policy (see ``azora.db.rls.narrow_owner_policy``): a user reads their wallets,
  journal, stakes and mining records; every write needs the service (the mint's
  operations and ``mint_move`` run as the service);
- a deferred constraint trigger on ``wallets`` refuses, at commit, a balance that no
  ledger entry of the same transaction accounts for: a wallet whose balance changed (or
  that was created with a balance) must hold the ``balance_after`` of the last entry
  the transaction wrote for it. It binds every role, the service and the tables' owner
  included; only switching triggers off gets past it (``azora mint verify`` still
  names what was changed then). A refusal is a check violation (SQLSTATE ``23514``)
  naming the trigger (``wallets_balance_journaled``, or
  ``wallets_opening_balance_journaled`` for a new wallet), so it reaches callers as an
  ``IntegrityError``, like the ``user_non_negative`` CHECK: the ledger's operations
  journal every change, so it only ever reports a bug or a write past them, never a
  request to refuse (those are the domain errors of ``mint_move``'s ``AZ0xx``).

The check runs once for each change of a wallet's balance (a wallet created with a
zero balance, or an update that leaves the balance as it was, queues nothing) and
costs one index lookup on ``ledger_entries (wallet_id, created_at)``; a wallet changed
several times in one transaction is held to its final balance only (a change that a
later one overtook costs a second lookup, of the wallet, to find that out).
"""

from collections.abc import Sequence

from alembic import op

from azora.db.rls import OwnerGrant, narrow_owners, widen_owners

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MY_WALLET = "wallet_id IN (SELECT id FROM wallets WHERE user_id = {me})"

#: (table, when a row belongs to the acting user {me}, what the user may do to it)
GRANTS: tuple[OwnerGrant, ...] = (
    ("wallets", "user_id = {me}", ("SELECT",)),
    (
        "transactions",
        "id IN (SELECT transaction_id FROM ledger_entries"
        " WHERE wallet_id IN (SELECT id FROM wallets WHERE user_id = {me}))",
        ("SELECT",),
    ),
    ("ledger_entries", _MY_WALLET, ("SELECT",)),
    ("stakes", _MY_WALLET, ("SELECT",)),
    ("mining_records", "user_id = {me}", ("SELECT",)),
)

# Entries of this transaction are the rows it inserted (xmin is its id); the ledger
# writes none in a subtransaction. Among them the last written comes last in
# (created_at, id): one movement's entries share its time and ids grow as they are
# made. The function runs as the service because a deferred trigger fires at commit,
# outside mint_move, whose own azora.service setting has ended by then.
_GUARD = """
CREATE FUNCTION wallets_balance_journaled() RETURNS trigger
LANGUAGE plpgsql
SET azora.service = 'on'
AS $fn$
DECLARE
    v_xid xid := pg_current_xact_id()::xid;
    v_after numeric;
    v_balance numeric;
BEGIN
    SELECT e.balance_after INTO v_after
    FROM ledger_entries e
    WHERE e.wallet_id = NEW.id AND e.xmin = v_xid
    ORDER BY e.created_at DESC, e.id DESC
    LIMIT 1;
    IF v_after = NEW.balance THEN
        RETURN NULL;
    END IF;
    -- NEW is the row as this change left it. When the wallet changed again later in the
    -- transaction, that change queued a check of its own: only the final balance counts.
    SELECT w.balance INTO v_balance FROM wallets w WHERE w.id = NEW.id;
    IF FOUND AND v_balance IS DISTINCT FROM NEW.balance THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        TABLE = 'wallets',
        CONSTRAINT = TG_NAME,
        MESSAGE = format(
            'wallet %s: balance %s is not accounted for by a ledger entry: %s',
            NEW.id, coalesce(v_balance, NEW.balance), CASE WHEN v_after IS NULL
                THEN 'the transaction wrote none for it'
                ELSE format('the last one the transaction wrote for it leaves it at %s', v_after)
            END),
        HINT = 'balances change only through the ledger (azora.mint), which journals them';
END
$fn$
"""

_TRIGGERS = (
    """CREATE CONSTRAINT TRIGGER wallets_balance_journaled AFTER UPDATE OF balance ON wallets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.balance IS DISTINCT FROM NEW.balance)
    EXECUTE FUNCTION wallets_balance_journaled()""",
    """CREATE CONSTRAINT TRIGGER wallets_opening_balance_journaled AFTER INSERT ON wallets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.balance <> 0)
    EXECUTE FUNCTION wallets_balance_journaled()""",
)


def upgrade() -> None:
    narrow_owners(op, GRANTS)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_GUARD)
        for statement in _TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER wallets_opening_balance_journaled ON wallets")
        op.execute("DROP TRIGGER wallets_balance_journaled ON wallets")
        op.execute("DROP FUNCTION wallets_balance_journaled()")
    widen_owners(op, GRANTS)
