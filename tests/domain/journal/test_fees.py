from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.fees import (
    CommissionKind,
    CommissionSchedule,
    FeeCalculator,
    FeeSettings,
    SecFeeMode,
    VenueFeeSchedule,
    fill_fees,
    finra_taf,
    sec_fee,
    venue_fee,
)
from gateway.domain.fills import FillKind, Liquidity
from tests.domain.journal.trades import fill

NY = ZoneInfo("America/New_York")
D = Decimal
VENUE = VenueFeeSchedule(
    take_fee_per_share=D("0.0030"),
    make_rebate_per_share=D("0.0020"),
    take_fee_rate_below_1=D("0.003"),
    make_rebate_rate_below_1=D("0.001"),
    routed_fee_per_share=D("0.0035"),
    auction_fee_per_share=D("0.0010"),
)


@pytest.mark.parametrize(
    ("proceeds", "day", "expected"),
    [
        ("999.00", date(2026, 6, 1), "0.03"),  # market-rules 7: 0.0205794 -> 0.02057 -> 0.03
        ("1000000", date(2026, 6, 1), "20.60"),
        ("1000000", date(2024, 6, 3), "27.80"),
        ("1000000", date(2025, 5, 14), "0.00"),  # zero-rate period starts
        ("999999.99", date(2026, 4, 3), "0.00"),  # last day of the zero rate
        ("1000000", date(2026, 4, 4), "20.60"),
        ("1000", date(2026, 6, 1), "0.03"),  # 0.0206 -> 0.02060 -> 0.03
        ("0.01", date(2026, 6, 1), "0.00"),  # 0.000000206 truncates to 0 before rounding up
        ("0", date(2026, 6, 1), "0.00"),
        ("1000", date(2020, 1, 2), "0.00"),  # before the table: no rate known
    ],
)
def test_sec_fee_when_worked_example_then_member_rounding(
    proceeds: str, day: date, expected: str
) -> None:
    assert sec_fee(D(proceeds), day) == D(expected)


@pytest.mark.parametrize(
    ("shares", "day", "expected"),
    [
        (500, date(2026, 3, 2), "0.10"),  # market-rules 7: 0.0975 -> 0.10
        (60_000, date(2025, 3, 3), "8.30"),  # 9.96 capped at 8.30
        (60_000, date(2026, 3, 2), "9.79"),  # 11.70 capped at 9.79
        (1, date(2026, 3, 2), "0.01"),  # minimum one cent
        (100, date(2024, 7, 1), "0.02"),  # 0.0166 -> 0.02
        (0, date(2026, 3, 2), "0.00"),
    ],
)
def test_finra_taf_when_worked_example_then_rounded_up_min_and_cap(
    shares: int, day: date, expected: str
) -> None:
    assert finra_taf(shares, day) == D(expected)


@pytest.mark.parametrize(
    ("liquidity", "price", "expected"),
    [
        (Liquidity.REMOVED, "10.00", "0.300000"),
        (Liquidity.ADDED, "10.00", "-0.200000"),
        (Liquidity.ROUTED, "10.00", "0.350000"),
        (Liquidity.AUCTION, "10.00", "0.100000"),
        (Liquidity.REMOVED, "0.5000", "0.150000"),  # 0.3% of the price below $1
        (Liquidity.ADDED, "0.5000", "-0.050000"),
    ],
)
def test_venue_fee_when_liquidity_flag_then_fee_or_rebate(
    liquidity: Liquidity, price: str, expected: str
) -> None:
    assert venue_fee(VENUE, liquidity, 100, D(price)) == D(expected)


@pytest.mark.parametrize(
    ("schedule", "quantity", "price", "expected"),
    [
        (
            CommissionSchedule(CommissionKind.PER_SHARE, D("0.005"), D("1.00"), D("50")),
            100,
            "10",
            "1.00",
        ),
        (
            CommissionSchedule(CommissionKind.PER_SHARE, D("0.005"), D("1.00"), D("50")),
            1000,
            "10",
            "5.00",
        ),
        (
            CommissionSchedule(CommissionKind.PER_SHARE, D("0.005"), D("1.00"), D("50")),
            20_000,
            "10",
            "50",
        ),
        (CommissionSchedule(CommissionKind.BASIS_POINTS, D("5")), 100, "123.45", "6.17"),
        (CommissionSchedule(CommissionKind.BASIS_POINTS, D("5"), D("10")), 100, "123.45", "10"),
        (CommissionSchedule(), 100, "10", "0.00"),
    ],
)
def test_commission_when_schedule_then_min_and_max_apply(
    schedule: CommissionSchedule, quantity: int, price: str, expected: str
) -> None:
    assert schedule.commission(quantity, D(price)) == D(expected)


def test_fill_fees_when_buy_then_no_regulatory_fees() -> None:
    fees = fill_fees(fill("B", 500, "10.00"), VENUE, FeeSettings())
    assert (fees.sec_fee, fees.finra_taf, fees.venue_fee) == (D(0), D(0), D("1.5"))


def test_fill_fees_when_short_sale_then_regulatory_fees_charged() -> None:
    at = datetime(2026, 6, 1, 10, 0, tzinfo=NY)
    fees = fill_fees(fill("SS", 500, "1.998", at=at), VENUE, FeeSettings())
    assert (fees.sec_fee, fees.finra_taf) == (D("0.03"), D("0.10"))
    assert fees.total == fees.commission + fees.venue_fee + D("0.13")


def test_fee_calculator_when_per_day_mode_then_fills_sum_to_daily_fee() -> None:
    at = datetime(2026, 6, 1, 10, 0, tzinfo=NY)
    calculator = FeeCalculator(FeeSettings(sec_fee_mode=SecFeeMode.PER_DAY))
    sales = [fill("S", 1, "333.00", at=at) for _ in range(3)]  # 3 x 333.00 = 999.00
    per_fill = [calculator.fees(f, VENUE).sec_fee for f in sales]
    assert sum(per_fill) == sec_fee(D("999.00"), at.date()) == D("0.03")
    per_trade = FeeCalculator(FeeSettings())
    assert sum(per_trade.fees(f, VENUE).sec_fee for f in sales) == D("0.03")  # 3 x 0.01


def test_fee_calculator_when_bust_then_no_fees() -> None:
    bust = fill("S", 100, "10", kind=FillKind.BUST, corrects="E1")
    assert FeeCalculator(FeeSettings()).fees(bust, VENUE).total == 0
