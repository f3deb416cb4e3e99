from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from gateway.domain.borrow import (
    BorrowRate,
    BorrowRates,
    accrue_borrow,
    borrow_cost,
    daily_accruals,
)
from gateway.domain.positions import PositionBook
from gateway.errors import FailedPrecondition
from tests.domain.journal.trades import fill

D = Decimal
RATES = BorrowRates([BorrowRate("GME", D("0.35"), hard_to_borrow=True)], D("0.0025"))


@pytest.mark.parametrize(
    ("quantity", "mark", "rate", "days", "expected"),
    [
        (-1000, "20.00", "0.0025", 1, "0.14"),  # 20,000 x 0.25% / 360 = 0.1389
        (-1000, "20.00", "0.35", 1, "19.44"),  # hard to borrow: 19.444
        (-1000, "20.00", "0.35", 3, "58.33"),  # weekend: three days
        (-100, "10.00", "0.0018", 1, "0.01"),  # 0.005 rounds half-up
    ],
)
def test_borrow_cost_when_short_then_rate_over_360_on_market_value(
    quantity: int, mark: str, rate: str, days: int, expected: str
) -> None:
    assert borrow_cost(quantity, D(mark), D(rate), days) == D(expected)


def test_accrue_borrow_when_long_and_short_then_only_shorts_accrue_at_their_rates() -> None:
    book = PositionBook()
    book.apply(fill("SS", 1000, "20", symbol="GME"))
    book.apply(fill("SS", 1000, "20", symbol="F"))
    book.apply(fill("B", 1000, "20", symbol="AAPL"))
    marks = {"GME": D("20"), "F": D("20"), "AAPL": D("20")}
    accruals = accrue_borrow(book.positions(), marks, date(2026, 6, 1), RATES)
    assert [(a.symbol, a.amount, a.hard_to_borrow) for a in accruals] == [
        ("F", D("0.14"), False),
        ("GME", D("19.44"), True),
    ]
    assert RATES.is_hard_to_borrow("GME") and not RATES.is_hard_to_borrow("F")


def test_accrue_borrow_when_short_without_mark_then_mark_missing() -> None:
    book = PositionBook()
    book.apply(fill("SS", 10, "20", symbol="GME"))
    with pytest.raises(FailedPrecondition) as raised:
        accrue_borrow(book.positions(), {}, date(2026, 6, 1), RATES)
    assert raised.value.reason == "MARK_MISSING"


def test_daily_accruals_when_short_opened_mid_range_and_covered_then_only_days_held_overnight() -> (
    None
):
    opened = fill("SS", 100, "50", symbol="GME", at=datetime(2026, 6, 2, 14, 0, tzinfo=UTC))
    covered = fill("B", 100, "40", symbol="GME", at=datetime(2026, 6, 4, 14, 0, tzinfo=UTC))
    day_trade = [
        fill("SS", 500, "20", symbol="F", at=datetime(2026, 6, 3, 14, 0, tzinfo=UTC)),
        fill("B", 500, "20", symbol="F", at=datetime(2026, 6, 3, 15, 0, tzinfo=UTC)),
    ]
    marks = {date(2026, 6, 2): {"GME": D("50")}, date(2026, 6, 3): {"GME": D("45"), "F": D("20")}}
    accruals = daily_accruals(
        [opened, covered, *day_trade],
        date(2026, 6, 1),
        date(2026, 6, 5),
        lambda day: marks.get(day, {}),
        RATES,
    )
    # Held at the close of 06-02 and 06-03 only: 100 x 50 x 0.35 / 360 = 4.86, then at 45: 4.38.
    # The F short opened and covered within 06-03 is never held overnight.
    assert [(a.accrual_date, a.symbol, a.amount) for a in accruals] == [
        (date(2026, 6, 2), "GME", D("4.86")),
        (date(2026, 6, 3), "GME", D("4.38")),
    ]
