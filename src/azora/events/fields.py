"""The field types payload schemas are built from, and the base every payload extends.

Payloads travel as JSON, so each type states its JSON form: ids are UUID strings, money
is a string holding an exact decimal (never a float: ``0.1 + 0.2`` must not reach a
ledger), times are ISO 8601 in UTC, counts are integers that refuse ``True`` and ``"3"``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)

MONEY_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


class Payload(BaseModel):
    """The base of every payload schema: unknown keys are refused, so a typo fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _exact_decimal(value: Any) -> str:
    """``value`` (a decimal string or ``Decimal``) as a plain decimal string, digits kept."""
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    else:
        raise ValueError(
            f"money is an exact decimal string such as '12.50', not {type(value).__name__}"
        )
    if not amount.is_finite():
        raise ValueError(f"money must be finite, not {value!r}")
    return format(amount, "f")  # keeps trailing zeros ("30.25000000"), never an exponent


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


Id = uuid.UUID
"""An identifier; in JSON a UUID string."""

Money = Annotated[
    str,
    BeforeValidator(_exact_decimal),
    WithJsonSchema(
        {"type": "string", "pattern": MONEY_PATTERN, "description": "an exact decimal amount"}
    ),
]
"""An amount of money: a decimal string or ``Decimal`` in, a plain decimal string out."""

Timestamp = Annotated[AwareDatetime, AfterValidator(_utc)]
"""A moment with its time zone, normalised to UTC."""

Count = Annotated[StrictInt, Field(ge=0)]
Percent = Annotated[StrictInt, Field(ge=0, le=100)]
Flag = StrictBool
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
