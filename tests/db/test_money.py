"""Money is exact on both backends: what goes in comes out, to the last of 8 decimals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from azora.db.columns import utcnow
from azora.db.engines import Databases
from azora.db.money import MONEY_MAX, MONEY_MIN, to_money
from azora.db.seeding import SYSTEM_TREASURY_ID
from azora.errors import InvalidAmountError
from azora.mint.models import Wallet, WalletKind
from azora.settings import Settings
from azora.types import Currency, ServiceName
from tests import databases as dbs

#: Every representable amount: integers of 10^-8 units across the whole 18-digit range.
amounts = st.integers(min_value=int(MONEY_MIN.scaleb(8)), max_value=int(MONEY_MAX.scaleb(8))).map(
    lambda units: Decimal(units).scaleb(-8)
)


class MoneyStore:
    """One treasury wallet on a long-lived event loop; amounts go through its ``earned``
    column, which may be negative (its balance moves only with a ledger entry)."""

    def __init__(self, settings: Settings) -> None:
        self.runner = asyncio.Runner()
        self.databases = Databases(settings)
        self.runner.run(self._create())

    async def _create(self) -> None:
        async with self.databases.owner_engine(ServiceName.MINT).begin() as connection:
            await connection.execute(
                Wallet.__table__.insert().values(
                    id=SYSTEM_TREASURY_ID,
                    user_id=SYSTEM_TREASURY_ID,
                    currency=Currency.AZR,
                    kind=WalletKind.TREASURY,
                    balance=0,
                    staked=0,
                    earned=0,
                    status="active",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )

    def round_trip(self, amount: Decimal) -> Decimal:
        async def go() -> Decimal:
            async with self.databases.owner_engine(ServiceName.MINT).begin() as connection:
                await connection.execute(
                    update(Wallet).where(Wallet.id == SYSTEM_TREASURY_ID).values(earned=amount)
                )
                value = await connection.scalar(
                    select(Wallet.earned).where(Wallet.id == SYSTEM_TREASURY_ID)
                )
            assert isinstance(value, Decimal)
            return value

        return self.runner.run(go())

    def close(self) -> None:
        self.runner.run(self.databases.aclose())
        self.runner.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MoneyStore]:
    pg_url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    prefix = dbs.new_prefix()
    settings = dbs.settings_for(
        request.param, data_dir=Path(tmp_path_factory.mktemp("money")), prefix=prefix, pg_url=pg_url
    )
    asyncio.run(dbs.setup_all(settings))
    opened = MoneyStore(settings)
    yield opened
    opened.close()
    if pg_url:
        asyncio.run(dbs.drop_prefixed(pg_url, prefix))


@settings(max_examples=300, deadline=None)
@given(amount=amounts)
def test_every_amount_round_trips_exactly(store: MoneyStore, amount: Decimal) -> None:
    stored = store.round_trip(amount)
    assert stored == amount
    assert stored.as_tuple().exponent == -8


@pytest.mark.parametrize("edge", [MONEY_MAX, MONEY_MIN, Decimal("0.00000001"), Decimal("0")])
def test_the_edges_of_the_range_round_trip(store: MoneyStore, edge: Decimal) -> None:
    assert store.round_trip(edge) == edge


@pytest.mark.parametrize(
    "raw",
    [
        1.5,  # floats are not exact
        Decimal("0.000000001"),  # nine decimals
        "12.345678901",
        MONEY_MAX + Decimal("0.00000001"),
        Decimal("1e10"),
        Decimal("NaN"),
        Decimal("Infinity"),
        "twelve",
        True,
    ],
    ids=repr,
)
def test_inexact_or_out_of_range_values_are_refused(raw: object) -> None:
    with pytest.raises(InvalidAmountError):
        to_money(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(5, "5.00000000"), ("0.1", "0.10000000"), (Decimal("1.230000000000"), "1.23000000")],
)
def test_exact_inputs_are_normalised_to_eight_decimals(raw: object, expected: str) -> None:
    assert str(to_money(raw)) == expected  # type: ignore[arg-type]


def test_writing_an_inexact_amount_through_the_column_is_refused(store: MoneyStore) -> None:
    with pytest.raises(Exception, match="more than 8 decimals"):
        store.round_trip(Decimal("0.123456789"))
    assert store.round_trip(Decimal("1")) == Decimal("1")
