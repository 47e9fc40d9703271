"""mint_move: a two-wallet movement as one server-side function (PostgreSQL)

The whole movement — idempotency claim, wallet locks in id order, the checks, both
balance updates, the journal header and entries, the outbox events, the audit record and
the supply metrics — runs inside the database in one statement, so a transfer costs one
round trip instead of ten. ``azora.mint.operations`` calls it on PostgreSQL; on SQLite
the same movement runs statement by statement (its writers are serialised anyway).

Refusals raise with SQLSTATEs of class ``AZ`` (mapped to the mint's domain errors):
``AZ001`` no wallet, ``AZ002`` frozen wallet, ``AZ003`` insufficient funds, ``AZ004``
idempotency key used for a different request. A refusal rolls back everything the call
did; a replay (same key, same request) writes nothing and returns the stored transaction.

Created: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: A UUIDv7 made by PostgreSQL 15 (no built-in uuidv7): milliseconds over a random v4.
_UUID7 = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing"
    " substring(int8send((extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)"
    " from 1 for 6), 52, 1), 53, 1), 'hex')::uuid"
)

MINT_MOVE = f"""
CREATE FUNCTION mint_move(
    p_transaction_id uuid,
    p_type text,
    p_currency text,
    p_amount numeric,
    p_source uuid,
    p_source_kind text,
    p_target uuid,
    p_target_kind text,
    p_earned boolean,
    p_key text,
    p_key_id uuid,
    p_request_hash text,
    p_key_expires_at timestamptz,
    p_reference text,
    p_description text,
    p_now timestamptz,
    p_entry_ids uuid[],
    p_events text,
    p_audit text,
    p_circulating numeric,
    p_total numeric
) RETURNS TABLE (outcome text, transaction_id uuid, from_wallet_id uuid, to_wallet_id uuid)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_inserted integer;
    v_hash text;
    v_stored jsonb;
    v_row wallets%ROWTYPE;
    v_source wallets%ROWTYPE;
    v_target wallets%ROWTYPE;
    v_attempt integer;
BEGIN
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys
            (id, key, request_hash, response, expires_at, created_at, updated_at)
        VALUES (p_key_id, p_key, p_request_hash,
                jsonb_build_object('transaction_id', p_transaction_id::text),
                p_key_expires_at, p_now, p_now)
        ON CONFLICT (key) DO NOTHING;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
        IF v_inserted = 0 THEN
            SELECT k.request_hash, k.response INTO v_hash, v_stored
            FROM idempotency_keys k WHERE k.key = p_key;
            IF v_hash IS DISTINCT FROM p_request_hash THEN
                RAISE EXCEPTION USING ERRCODE = 'AZ004', MESSAGE = format(
                    'idempotency key %L was already used for a different request', p_key);
            END IF;
            RETURN QUERY SELECT 'replayed'::text, (v_stored ->> 'transaction_id')::uuid,
                NULL::uuid, NULL::uuid;
            RETURN;
        END IF;
    END IF;

    FOR v_attempt IN 1..2 LOOP
        FOR v_row IN
            SELECT * FROM wallets w
            WHERE w.currency = p_currency AND w.user_id IN (p_source, p_target)
            ORDER BY w.id
            FOR UPDATE
        LOOP
            IF v_row.user_id = p_source THEN v_source := v_row; ELSE v_target := v_row; END IF;
        END LOOP;
        EXIT WHEN v_attempt = 2
            OR NOT ((v_source.id IS NULL AND p_source_kind <> 'user')
                    OR (v_target.id IS NULL AND p_target_kind <> 'user'));
        -- System wallets are created on first use, then everything is locked again.
        INSERT INTO wallets (id, user_id, currency, kind, balance, staked, earned, status,
                             created_at, updated_at)
        SELECT {_UUID7}, o.owner, p_currency, o.kind, 0, 0, 0, 'active', p_now, p_now
        FROM (VALUES (p_source, p_source_kind), (p_target, p_target_kind)) AS o(owner, kind)
        WHERE o.kind <> 'user'
        ON CONFLICT (user_id, currency) DO NOTHING;
    END LOOP;

    IF v_source.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'AZ001',
            MESSAGE = format('user %s has no %s wallet', p_source, p_currency);
    END IF;
    IF v_target.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'AZ001',
            MESSAGE = format('user %s has no %s wallet', p_target, p_currency);
    END IF;
    IF v_source.status <> 'active' THEN
        RAISE EXCEPTION USING ERRCODE = 'AZ002', MESSAGE = format(
            'wallet %s is frozen and can neither send nor receive', v_source.id);
    END IF;
    IF v_source.kind <> 'treasury' AND v_source.balance < p_amount THEN
        RAISE EXCEPTION USING ERRCODE = 'AZ003', MESSAGE = format(
            'wallet %s holds %s %s, %s needed',
            v_source.id, v_source.balance, p_currency, p_amount);
    END IF;
    IF v_target.status <> 'active' THEN
        RAISE EXCEPTION USING ERRCODE = 'AZ002', MESSAGE = format(
            'wallet %s is frozen and can neither send nor receive', v_target.id);
    END IF;

    -- Every write in one statement (one executor start instead of six). The wallets are
    -- already locked; all sub-statements run to completion whether read or not, and the
    -- entries' foreign key to their journal header is checked at the statement's end.
    WITH balances AS (
        UPDATE wallets
        SET balance = balance
                + CASE WHEN id = v_source.id THEN -p_amount ELSE p_amount END,
            earned = earned
                + CASE WHEN id = v_target.id AND p_earned THEN p_amount ELSE 0 END,
            updated_at = p_now
        WHERE id IN (v_source.id, v_target.id)
    ), header AS (
        INSERT INTO transactions (id, type, amount, currency, from_wallet_id, to_wallet_id,
                                  status, idempotency_key, reference, description, metadata,
                                  completed_at, created_at, updated_at)
        VALUES (p_transaction_id, p_type, p_amount, p_currency, v_source.id, v_target.id,
                'completed', p_key, p_reference, p_description, '{{}}'::jsonb,
                p_now, p_now, p_now)
    ), entries AS (
        INSERT INTO ledger_entries (id, transaction_id, wallet_id, amount, balance_after,
                                    created_at, updated_at)
        VALUES (p_entry_ids[1], p_transaction_id, v_source.id, -p_amount,
                v_source.balance - p_amount, p_now, p_now),
               (p_entry_ids[2], p_transaction_id, v_target.id, p_amount,
                v_target.balance + p_amount, p_now, p_now)
    ), outbox AS (
        INSERT INTO outbox_events (id, type, source, subject, payload, correlation_id,
                                   version, occurred_at, attempts, created_at)
        SELECT e.id, e.type, e.source, e.subject, e.payload, e.correlation_id, e.version,
               p_now, 0, p_now
        FROM jsonb_to_recordset(p_events::jsonb) AS e(
            id uuid, type text, source text, subject uuid, payload jsonb,
            correlation_id uuid, version integer)
    ), audit AS (
        INSERT INTO audit_logs (id, user_id, action, resource, resource_id, ip, user_agent,
                                metadata, created_at)
        SELECT a.id, a.user_id, a.action, a.resource, a.resource_id, a.ip, a.user_agent,
               a.metadata, p_now
        FROM jsonb_to_recordset(p_audit::jsonb) AS a(
            id uuid, user_id uuid, action text, resource text, resource_id text, ip text,
            user_agent text, metadata jsonb)
    )
    SELECT 1 INTO v_inserted;

    IF p_circulating <> 0 OR p_total <> 0 THEN
        INSERT INTO economic_metrics (id, currency, total_supply, circulating_supply,
                                      staked_supply, burned_supply, wallet_count,
                                      created_at, updated_at)
        VALUES ({_UUID7}, p_currency, p_total, p_circulating, 0, 0, 0, p_now, p_now)
        ON CONFLICT (currency) DO UPDATE
        SET total_supply = economic_metrics.total_supply + excluded.total_supply,
            circulating_supply = economic_metrics.circulating_supply
                + excluded.circulating_supply,
            updated_at = excluded.updated_at;
    END IF;

    RETURN QUERY SELECT 'posted'::text, p_transaction_id, v_source.id, v_target.id;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(MINT_MOVE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION mint_move")
