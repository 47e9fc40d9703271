"""The tamper-evident audit log: sealing ``audit_logs`` into a hash chain, and checking it.

Writers append audit rows unsealed, so an insert stays cheap and never waits for another
writer (a chain built at insert time would hold one lock through every commit and
serialise the ledger). A sealer chains them afterwards: it takes the unsealed rows in
``(created_at, id)`` order and gives each the next ``seq`` (1, 2, 3, ... per database),
``prev_hash`` (the ``row_hash`` of the row before; :data:`GENESIS` for the first) and
``row_hash`` = SHA-256 over ``prev_hash`` and :func:`canonical_row`. The database lets
an UPDATE do nothing but that (:mod:`azora.db.audit_ddl`); :func:`verify` recomputes the
chain and names the first row that no longer fits.

Sealers of one database take turns: on PostgreSQL under a transaction-level advisory
lock, on SQLite under the write lock every transaction takes (``BEGIN IMMEDIATE``); the
unique index on ``seq`` is the backstop, so two sealers can never both commit a number.
:class:`AuditSealer` seals in the wake of writes, throttled and, on PostgreSQL, never
waiting for another sealer (on SQLite it queues for the write lock like any writer);
:func:`seal` (``azora audit seal``) drains whatever is left.

Sealing and verifying read every row, so on PostgreSQL they run as the service (see
:mod:`azora.db.scope`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from azora.db.engines import Databases, reading
from azora.db.infra import AUDIT_TABLE
from azora.db.scope import SERVICE, apply_scope
from azora.types import ServiceName

logger = logging.getLogger(__name__)

#: The ``prev_hash`` of the first row of every chain.
GENESIS = "0" * 64

#: How often a process seals one database in the wake of its writes, at most. Measured on
#: the ledger (PostgreSQL, 2 cores): every 50 ms cost 12-20 % of transfers/s and put a
#: sealing pause into 1 % of transfers (p99 1 -> 7.5 ms at one client); every 250 ms costs
#: 3-6 % and leaves p99 alone; every second, about 1 %. Rows wait at most this long
#: unsealed (and even then the guard keeps them as they were written).
POKE_INTERVAL_S = 0.25

#: The advisory lock sealers of one database take turns on (advisory locks are per database).
SEAL_LOCK_KEY = 0x417A_6F72_6141_7564  # "AzoraAud"

_LOG = AUDIT_TABLE.c
_CONTENT = (
    _LOG.id,
    _LOG.user_id,
    _LOG.action,
    _LOG.resource,
    _LOG.resource_id,
    _LOG.ip,
    _LOG.user_agent,
    _LOG.metadata,
    _LOG.created_at,
)
_UNSEALED = (
    select(*_CONTENT)
    .where(_LOG.seq.is_(None))
    .order_by(_LOG.created_at, _LOG.id)
    .limit(bindparam("batch"))
)
_HEAD = (
    select(_LOG.seq, _LOG.row_hash).where(_LOG.seq.is_not(None)).order_by(_LOG.seq.desc()).limit(1)
)
_SEAL = (
    update(AUDIT_TABLE)
    .where(_LOG.id == bindparam("row_id"))
    .values(seq=bindparam("new_seq"), prev_hash=bindparam("prev"), row_hash=bindparam("hash"))
)
#: The same as one statement over arrays: a third of the time of a batched UPDATE.
_SEAL_ARRAYS = text(
    "UPDATE audit_logs AS a SET seq = v.seq, prev_hash = v.prev, row_hash = v.hash"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:seqs AS bigint[]), CAST(:prevs AS text[]),"
    " CAST(:hashes AS text[])) AS v(id, seq, prev, hash)"
    " WHERE a.id = v.id"
)
_CHAIN_PAGE = (
    select(*_CONTENT, _LOG.seq, _LOG.prev_hash, _LOG.row_hash)
    .where(_LOG.seq.is_not(None), _LOG.seq > bindparam("after"))
    .order_by(_LOG.seq)
    .limit(bindparam("batch"))
)
_COUNTS = select(func.count(), func.count(_LOG.seq)).select_from(AUDIT_TABLE)
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")
_BEFORE_ANY_SEQ = -(2**63)


# -- the chain ------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` with integral floats as integers: JSONB keeps a number's value, not
    whether it was written ``1e20`` or ``100000000000000000000``."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def canonical_row(row: Mapping[Any, Any], seq: int) -> bytes:
    """The bytes a row's hash covers: its content and ``seq`` as one canonical JSON array.

    Identical on SQLite and PostgreSQL for the same row: ids as lower-case UUID text,
    ``metadata`` with sorted keys and integral numbers as integers, ``created_at`` in
    ISO-8601 UTC with microseconds, no insignificant whitespace, UTF-8.
    """
    created: dt.datetime = row["created_at"].astimezone(dt.UTC)
    user_id = row["user_id"]
    document = [
        str(row["id"]),
        None if user_id is None else str(user_id),
        row["action"],
        row["resource"],
        row["resource_id"],
        row["ip"],
        row["user_agent"],
        _plain(row["metadata"]),
        created.isoformat(timespec="microseconds"),
        seq,
    ]
    encoded = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return encoded.encode("utf-8")


def chain_hash(prev_hash: str, row: Mapping[Any, Any], seq: int) -> str:
    """``row_hash`` of ``row`` sealed as ``seq`` after a row whose hash is ``prev_hash``."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_row(row, seq)).hexdigest()


# -- sealing ----------------------------------------------------------------------------


async def _take_turn(connection: AsyncConnection, *, wait: bool) -> bool:
    """Become the database's only sealer for this transaction; False if busy (no wait)."""
    if connection.dialect.name != "postgresql":
        return True  # BEGIN IMMEDIATE already holds SQLite's one write lock
    if wait:
        await connection.execute(_LOCK, {"key": SEAL_LOCK_KEY})
        return True
    return bool(await connection.scalar(_TRY_LOCK, {"key": SEAL_LOCK_KEY}))


async def _seal_batch(connection: AsyncConnection, batch: int) -> int:
    head = (await connection.execute(_HEAD)).first()
    seq, prev = (head.seq, head.row_hash) if head is not None else (0, GENESIS)
    rows = (await connection.execute(_UNSEALED, {"batch": batch})).all()
    if not rows:
        return 0
    ids, seqs, prevs, hashes = [], [], [], []
    for row in rows:
        seq += 1
        digest = chain_hash(prev, row._mapping, seq)
        ids.append(row.id)
        seqs.append(seq)
        prevs.append(prev)
        hashes.append(digest)
        prev = digest
    if connection.dialect.name == "postgresql":
        await connection.execute(
            _SEAL_ARRAYS, {"ids": ids, "seqs": seqs, "prevs": prevs, "hashes": hashes}
        )
    else:
        await connection.execute(
            _SEAL,
            [
                {"row_id": i, "new_seq": n, "prev": p, "hash": h}
                for i, n, p, h in zip(ids, seqs, prevs, hashes, strict=True)
            ],
        )
    return len(rows)


async def _seal(engine: AsyncEngine, *, batch: int, wait: bool, once: bool) -> int:
    """Seal in transactions of ``batch`` rows until none is left (or after one, ``once``)."""
    total = 0
    while True:
        async with engine.begin() as connection:
            await apply_scope(connection, SERVICE)
            if not await _take_turn(connection, wait=wait):
                return total
            sealed = await _seal_batch(connection, batch)
        total += sealed
        if once or sealed < batch:
            return total


async def seal(databases: Databases, service: ServiceName, *, batch: int = 5000) -> int:
    """Seal every unsealed audit row of ``service``'s database; returns how many.

    Waits for a sealer already at work, then commits every ``batch`` rows, so a crash
    keeps what was sealed and the next seal goes on from there.

    Raises:
        sqlalchemy.exc.DBAPIError: the database failed or is not migrated (nothing of
            the failed batch is kept).
    """
    return await _seal(databases.engine(service), batch=batch, wait=True, once=False)


class AuditSealer:
    """Seals a database's new audit rows in the wake of its writes, cheaply.

    :meth:`poke` seals at most once per ``interval`` per database and process, seals one
    batch at most, and never waits for another sealer: if one is at work it returns,
    and whatever it left unsealed the next poke (or :func:`seal`) takes. One sealer per
    :class:`~azora.db.engines.Databases` (:meth:`of`), so every writer of a process
    shares the throttle.
    """

    def __init__(
        self, databases: Databases, *, interval: float = POKE_INTERVAL_S, batch: int = 1000
    ) -> None:
        # Weak: the registry keys sealers by their Databases and must not keep it alive.
        self._databases = weakref.ref(databases)
        self.interval = interval
        self.batch = batch
        self._next: dict[ServiceName, float] = {}

    @classmethod
    def of(cls, databases: Databases) -> AuditSealer:
        """The sealer shared by every writer of ``databases`` (created on first use)."""
        sealer = _SEALERS.get(databases)
        if sealer is None:
            sealer = _SEALERS[databases] = cls(databases)
        return sealer

    async def poke(self, service: ServiceName) -> int:
        """Seal ``service``'s new audit rows if its interval has passed; returns how many.

        Never raises: sealing is a follow-up of writes that already committed, so a
        failure is logged and its rows wait for the next seal.
        """
        if time.monotonic() < self._next.get(service, 0.0):
            return 0
        databases = self._databases()
        if databases is None:
            return 0
        self._next[service] = math.inf  # one seal at a time per database in this process
        try:
            return await _seal(databases.engine(service), batch=self.batch, wait=False, once=True)
        except Exception:
            logger.exception("sealing the audit log of %s failed; the next seal retries", service)
            return 0
        finally:
            self._next[service] = time.monotonic() + self.interval


_SEALERS: weakref.WeakKeyDictionary[Databases, AuditSealer] = weakref.WeakKeyDictionary()


# -- verifying --------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain stops holding: the row found at that place and what is wrong."""

    seq: int
    row_id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class AuditReport:
    """The state of one database's audit chain.

    ``head_seq`` and ``head_hash`` are the last row that verified (0 and
    :data:`GENESIS` when none did). Recorded elsewhere, they let a later verify tell what
    a chain cannot tell on its own: that its newest rows were removed, or that someone
    past the guard changed a row and rehashed every row after it.
    """

    service: ServiceName
    rows: int
    sealed: int
    unsealed: int
    head_seq: int
    head_hash: str
    broken: BrokenLink | None = None

    @property
    def ok(self) -> bool:
        """True when every sealed row links and hashes as it was sealed."""
        return self.broken is None


def _check(row: Mapping[Any, Any], expected_seq: int, prev_hash: str) -> str | None:
    """What is wrong with ``row`` as the link after ``prev_hash``, or None."""
    seq: int = row["seq"]
    if seq > expected_seq:
        return f"row missing before seq {seq}"
    if seq < expected_seq:
        return f"seq {seq} out of order (expected {expected_seq})"
    if row["prev_hash"] != prev_hash:
        return "prev_hash does not match the previous row's hash"
    if chain_hash(row["prev_hash"], row, seq) != row["row_hash"]:
        return "row content changed"
    return None


async def _walk(connection: AsyncConnection, batch: int) -> tuple[int, str, BrokenLink | None]:
    seq, prev = 0, GENESIS
    after = _BEFORE_ANY_SEQ
    while True:
        page = (await connection.execute(_CHAIN_PAGE, {"after": after, "batch": batch})).all()
        for row in page:
            problem = _check(row._mapping, seq + 1, prev)
            if problem is not None:
                return seq, prev, BrokenLink(row.seq, row.id, problem)
            seq, prev = row.seq, row.row_hash
        if len(page) < batch:
            return seq, prev, None
        after = page[-1].seq


async def verify(databases: Databases, service: ServiceName, *, batch: int = 5000) -> AuditReport:
    """Walk ``service``'s audit chain in ``seq`` order and report the first broken link.

    Read-only; on PostgreSQL one repeatable-read snapshot, so concurrent sealing does not
    disturb it. Checks that ``seq`` runs 1, 2, 3, ... without a gap, that each
    ``prev_hash`` is the previous row's hash and that each ``row_hash`` matches its row.
    Unsealed rows are counted, not judged.

    Raises:
        sqlalchemy.exc.DBAPIError: the database failed or is not migrated.
    """
    engine = reading(databases.engine(service))
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        async with connection.begin():
            await apply_scope(connection, SERVICE)
            rows, sealed = (await connection.execute(_COUNTS)).one()
            head_seq, head_hash, broken = await _walk(connection, batch)
    return AuditReport(
        service=service,
        rows=rows,
        sealed=sealed,
        unsealed=rows - sealed,
        head_seq=head_seq,
        head_hash=head_hash,
        broken=broken,
    )
