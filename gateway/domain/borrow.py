"""Borrow cost of short positions, accrued daily at the annual rate / 360 on the short market value.

Securities-lending convention (actual/360): every calendar day a short is open accrues
``|quantity| x mark x annual_rate / 360``; a short held over a weekend accrues three days on
Friday's close (``days=3``). Rates are data per symbol: a hard-to-borrow symbol carries its own
(often far higher) rate; symbols not listed borrow at the general-collateral default. Each accrual
is rounded half-up to the cent, per account, symbol and accrual date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from gateway.domain.fills import Fill
from gateway.domain.positions import CostMethod, Position
from gateway.domain.prices import PENNY
from gateway.errors import FailedPrecondition

ZERO = Decimal(0)
DAY_COUNT_BASIS = 360
# General-collateral fee for easy-to-borrow names: 0.25% a year is the common broker quote.
DEFAULT_GENERAL_COLLATERAL_RATE = Decimal("0.0025")


@dataclass(frozen=True, slots=True)
class BorrowRate:
    """Annual borrow fee of one symbol, as a fraction (0.35 = 35% a year)."""

    symbol: str
    annual_rate: Decimal
    hard_to_borrow: bool = False


class BorrowRates:
    """Per-symbol borrow rates with a general-collateral default."""

    __slots__ = ("_default", "_rates")

    def __init__(
        self,
        rates: Iterable[BorrowRate] = (),
        default_annual_rate: Decimal = DEFAULT_GENERAL_COLLATERAL_RATE,
    ) -> None:
        self._rates = {rate.symbol: rate for rate in rates}
        self._default = default_annual_rate

    def rate(self, symbol: str) -> BorrowRate:
        """Return the symbol's rate, or the general-collateral default (not hard to borrow)."""
        found = self._rates.get(symbol)
        return found if found is not None else BorrowRate(symbol, self._default)

    def is_hard_to_borrow(self, symbol: str) -> bool:
        found = self._rates.get(symbol)
        return found is not None and found.hard_to_borrow


@dataclass(frozen=True, slots=True)
class BorrowAccrual:
    """One day's (or a weekend's) borrow cost of one short position; ``amount`` is positive."""

    account: str
    symbol: str
    accrual_date: date
    quantity: int
    mark: Decimal
    annual_rate: Decimal
    hard_to_borrow: bool
    days: int
    amount: Decimal


def borrow_cost(short_quantity: int, mark: Decimal, annual_rate: Decimal, days: int = 1) -> Decimal:
    """Return the cost of borrowing ``short_quantity`` shares for ``days``, rounded to the cent."""
    exact = abs(short_quantity) * mark * annual_rate * days / DAY_COUNT_BASIS
    return exact.quantize(PENNY, rounding=ROUND_HALF_UP)


def accrue_borrow(
    positions: Iterable[Position],
    marks: Mapping[str, Decimal],
    accrual_date: date,
    rates: BorrowRates,
    *,
    days: int = 1,
) -> tuple[BorrowAccrual, ...]:
    """Accrue borrow on every short in ``positions``, marked at ``marks`` (closing prices).

    Raises:
        FailedPrecondition: MARK_MISSING, naming every short symbol without a mark.
    """
    shorts = [p for p in positions if p.quantity < 0]
    unmarked = sorted({p.symbol for p in shorts if p.symbol not in marks})
    if unmarked:
        raise FailedPrecondition(
            f"no mark for short positions in {', '.join(unmarked)}", reason="MARK_MISSING"
        )
    accruals = []
    for position in sorted(shorts, key=lambda p: (p.account, p.symbol)):
        rate = rates.rate(position.symbol)
        mark = marks[position.symbol]
        accruals.append(
            BorrowAccrual(
                position.account,
                position.symbol,
                accrual_date,
                position.quantity,
                mark,
                rate.annual_rate,
                rate.hard_to_borrow,
                days,
                borrow_cost(position.quantity, mark, rate.annual_rate, days),
            )
        )
    return tuple(accruals)


def daily_accruals(
    fills: Iterable[Fill],
    start: date,
    end: date,
    marks: Callable[[date], Mapping[str, Decimal]],
    rates: BorrowRates,
) -> tuple[BorrowAccrual, ...]:
    """Accrue borrow for each calendar day of ``start``..``end`` on the shorts open at its close.

    ``fills`` are the effective fills (busts and corrections applied); a position's quantity at
    the close of a day is the sum of its fills of that trade date and before, whatever the cost
    method. Every calendar day accrues one day (a weekend is Saturday and Sunday at Friday's
    marks, the same total as Friday's three days); ``marks(day)`` gives the closing marks.

    Raises:
        FailedPrecondition: MARK_MISSING, naming every short symbol without a mark.
    """
    ordered = sorted(fills, key=lambda f: f.trade_date)
    held: dict[tuple[str, str], int] = {}
    accruals: list[BorrowAccrual] = []
    index = 0
    day = start
    while day <= end:
        while index < len(ordered) and ordered[index].trade_date <= day:
            fill = ordered[index]
            key = (fill.account, fill.symbol)
            held[key] = held.get(key, 0) + fill.signed_quantity
            index += 1
        shorts = [
            Position(account, symbol, quantity, ZERO, ZERO, CostMethod.AVERAGE, None)
            for (account, symbol), quantity in held.items()
            if quantity < 0
        ]
        if shorts:
            accruals.extend(accrue_borrow(shorts, marks(day), day, rates))
        day += timedelta(days=1)
    return tuple(accruals)
