"""Exact money: ``Decimal`` with at most 8 decimals and 18 digits in all.

On PostgreSQL the column is ``NUMERIC(18, 8)``. SQLite has no exact decimal type (its
NUMERIC affinity stores floats), so there the column holds the amount as an integer count
of 10^-8 units, which sums, compares and CHECKs exactly. Either way Python sees
``Decimal`` and nothing is ever rounded: a value with more precision is refused.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from azora.errors import InvalidAmountError

MONEY_PRECISION = 18
MONEY_SCALE = 8
_UNIT = Decimal(1).scaleb(-MONEY_SCALE)  # 0.00000001
_UNITS_PER_ONE = 10**MONEY_SCALE
MONEY_MAX = Decimal(10 ** (MONEY_PRECISION - MONEY_SCALE)) - _UNIT  # 9999999999.99999999
MONEY_MIN = -MONEY_MAX


def to_money(value: Decimal | int | str) -> Decimal:
    """Return ``value`` as an exact money amount quantized to 8 decimals.

    Accepts ``Decimal``, ``int`` and decimal strings; refuses floats (they are not exact).

    Raises:
        InvalidAmountError: not a finite number, more than 8 decimals, or beyond 18 digits.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidAmountError(
            f"money must be a Decimal, int or decimal string, not {type(value).__name__}",
            hint="floats are not exact; pass Decimal('1.23') or '1.23'",
        )
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidAmountError(f"not a decimal number: {value!r}") from None
    if not amount.is_finite():
        raise InvalidAmountError(f"money must be finite, got {amount}")
    if not MONEY_MIN <= amount <= MONEY_MAX:
        raise InvalidAmountError(
            f"{amount} is out of range: money has at most {MONEY_PRECISION} digits,"
            f" {MONEY_SCALE} after the point"
        )
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_SCALE and amount != amount.quantize(_UNIT):
        raise InvalidAmountError(
            f"{amount} has more than {MONEY_SCALE} decimals", hint="amounts are never rounded"
        )
    return amount.quantize(_UNIT)


class Money(TypeDecorator[Decimal]):
    """Column type for exact amounts (see the module docstring)."""

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = to_money(value)
        if dialect.name == "sqlite":
            return int(amount.scaleb(MONEY_SCALE))
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        amount: Decimal
        if dialect.name == "sqlite":
            units: int = value if isinstance(value, int) else int(Decimal(str(value)))
            amount = Decimal(units) / _UNITS_PER_ONE
        else:
            amount = Decimal(value)
        return amount.quantize(_UNIT)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal
