"""Price arithmetic: the one place that says how prices and money are rounded."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal

PENNY = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")
ONE_DOLLAR = Decimal("1.00")


def round_half_up(value: Decimal, increment: Decimal = PENNY) -> Decimal:
    """Round to the nearest ``increment``, halves away from zero (LULD band rounding)."""
    return value.quantize(increment, rounding=ROUND_HALF_UP)


def round_up(value: Decimal, increment: Decimal = PENNY) -> Decimal:
    """Round towards +infinity to a multiple of ``increment`` (regulatory fees)."""
    return value.quantize(increment, rounding=ROUND_CEILING)


def truncate(value: Decimal, increment: Decimal) -> Decimal:
    """Drop digits below ``increment`` (towards zero)."""
    return value.quantize(increment, rounding=ROUND_DOWN)


def default_tick(price: Decimal) -> Decimal:
    """Reg NMS Rule 612 minimum increment: $0.01 at or above $1.00, $0.0001 below."""
    return PENNY if price >= ONE_DOLLAR else SUB_PENNY


def is_on_tick(price: Decimal, tick: Decimal) -> bool:
    """Whether ``price`` is a whole multiple of ``tick``."""
    return price % tick == 0
