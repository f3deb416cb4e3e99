from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.borrow import BorrowAccrual
from gateway.domain.fees import FeeBreakdown
from gateway.domain.fills import Fill, FillKind
from gateway.domain.orders import Side
from gateway.domain.pnl import (
    ParentOrder,
    PnlBreakdown,
    PnlGrouping,
    PnlRequest,
    VenueBaseline,
    attribute_pnl,
    shortfall,
)
from gateway.errors import FailedPrecondition
from tests.domain.journal.trades import T0, fill

D = Decimal
DAY = date(2026, 6, 1)
CENT = D("0.01")
BASE_MID = D("10.00")


class RampMids:
    """Mid = base + 0.001 per second after T0 (a fake market-data history)."""

    def __init__(self, base: Decimal = BASE_MID) -> None:
        self.base = base

    def mid_at(self, symbol: str, at: datetime) -> Decimal | None:
        return self.base + D((at - T0) // timedelta(seconds=1)) / 1000


def _request(records: list[Fill], **extra: object) -> PnlRequest:
    options: dict[str, object] = {"start": DAY, "end": DAY, "records": tuple(records), "fees": {}}
    options.update(extra)
    if "end_marks" not in options:
        options["end_marks"] = {}
    return PnlRequest(**options)  # type: ignore[arg-type]


def test_attribute_pnl_when_round_trip_with_fees_then_parts_and_net() -> None:
    buy = fill("B", 100, "10.00", exec_id="E1", at=T0, order="O1")
    sell = fill("S", 100, "10.50", exec_id="E2", at=T0 + timedelta(seconds=10), order="O2")
    fees = {
        buy.key: FeeBreakdown(D("0.50"), D("0.30"), D("0"), D("0")),
        sell.key: FeeBreakdown(D("0.50"), D("-0.20"), D("0.03"), D("0.02")),
    }
    orders = {
        "O1": ParentOrder("O1", "ACC1", "AAPL", Side.BUY, 100, T0, D("9.99")),
        "O2": ParentOrder("O2", "ACC1", "AAPL", Side.SELL, 100, T0, D("10.52")),
    }
    report = attribute_pnl(_request([buy, sell], fees=fees, orders=orders))
    (row,) = report.rows
    assert (row.account, row.symbol, row.venue, row.trade_date) == ("ACC1", "AAPL", "", None)
    pnl = row.pnl
    assert pnl.gross_realized == D("50.00")
    assert (pnl.commission, pnl.exchange_fees, pnl.regulatory_fees) == (
        D("-1.00"),
        D("-0.10"),
        D("-0.05"),
    )
    assert pnl.slippage == D("-1.00") + D("-2.00")  # paid 0.01 over arrival, sold 0.02 under
    assert pnl.net == D("48.85") == report.total.net


def test_attribute_pnl_when_position_open_at_end_then_unrealized_on_its_own_row() -> None:
    report = attribute_pnl(
        _request(
            [fill("B", 100, "10.00", at=T0)],
            end_marks={"AAPL": D("10.25")},
            group_by=[PnlGrouping.VENUE, PnlGrouping.DAY],
        )
    )
    assert [(r.venue, r.trade_date, r.pnl.gross_unrealized) for r in report.rows] == [
        ("", DAY, D("25.00")),
        ("XNAS", DAY, D("0")),
    ]


def test_attribute_pnl_when_position_carried_in_then_only_change_since_start_counts() -> None:
    before = fill("B", 100, "10.00", at=T0 - timedelta(days=3))
    report = attribute_pnl(
        _request([before], start_marks={"AAPL": D("10.10")}, end_marks={"AAPL": D("10.25")})
    )
    assert report.total.gross_unrealized == D("15.00")


def test_attribute_pnl_when_fill_busted_then_excluded() -> None:
    buy = fill("B", 100, "10.00", exec_id="E1", at=T0)
    sell = fill("S", 100, "11.00", exec_id="E2", at=T0)
    bust = fill("S", 100, "11.00", exec_id="E3", at=T0, kind=FillKind.BUST, corrects="E2")
    report = attribute_pnl(_request([buy, sell, bust], end_marks={"AAPL": D("10")}))
    assert report.total.gross_realized == 0


def test_attribute_pnl_when_open_position_without_mark_then_mark_missing() -> None:
    with pytest.raises(FailedPrecondition) as raised:
        attribute_pnl(_request([fill("B", 1, "10", at=T0)]))
    assert raised.value.reason == "MARK_MISSING"


def test_attribute_pnl_when_markout_and_baseline_then_impact_and_savings() -> None:
    buy = fill("B", 100, "10.00", exec_id="E1", at=T0, order="O1")
    report = attribute_pnl(
        _request(
            [buy],
            end_marks={"AAPL": D("10.00")},
            fees={buy.key: FeeBreakdown(D("0"), D("0.30"), D("0"), D("0"))},
            mids=RampMids(),
            markout_horizon=timedelta(seconds=60),
            orders={"O1": ParentOrder("O1", "ACC1", "AAPL", Side.BUY, 100, T0, D("9.98"))},
            baselines={buy.key: VenueBaseline(D("10.01"), D("0.0030"))},
        )
    )
    total = report.total
    assert total.market_impact == D("6.00")  # mid 10.000 -> 10.060 after a minute
    assert total.timing_cost == D("-2.00")  # arrival 9.98, mid at first fill 10.00
    assert total.venue_selection_savings == D("1.00")  # 0.01 better price, same fee


def test_shortfall_when_partly_filled_then_delay_trading_opportunity_fees() -> None:
    order = ParentOrder("O1", "ACC1", "AAPL", Side.BUY, 1000, T0, D("10.00"), end_mid=D("10.10"))
    fills = [fill("B", 600, "10.05", exec_id="E1", order="O1")]
    fees = {fills[0].key: FeeBreakdown(D("3.00"), D("1.80"), D("0"), D("0"))}
    result = shortfall(order, fills, fees, release_mid=D("10.02"))
    assert (result.delay_cost, result.trading_cost, result.opportunity_cost, result.fees) == (
        D("12.00"),
        D("18.00"),
        D("40.00"),
        D("4.80"),
    )
    assert result.total == D("74.80")


money = st.decimals(min_value="-5", max_value="5", places=6)
prices = st.decimals(min_value="1", max_value="100", places=4)


@st.composite
def sessions(draw: st.DrawFn) -> PnlRequest:
    count = draw(st.integers(1, 30))
    records: list[Fill] = []
    fees: dict[tuple[str, str], FeeBreakdown] = {}
    orders: dict[str, ParentOrder] = {}
    for i in range(count):
        order_id = f"O{draw(st.integers(0, 4))}"
        record = fill(
            draw(st.sampled_from([Side.BUY, Side.SELL, Side.SELL_SHORT])),
            draw(st.integers(1, 1000)),
            draw(prices),
            account=draw(st.sampled_from(["A1", "A2"])),
            symbol=draw(st.sampled_from(["AAPL", "MSFT"])),
            venue=draw(st.sampled_from(["XNAS", "ARCX", "BATS"])),
            exec_id=f"N{i}",
            at=T0 + timedelta(days=draw(st.integers(-1, 2)), seconds=i),
            order=order_id,
        )
        records.append(record)
        fees[record.key] = FeeBreakdown(draw(money), draw(money), draw(money), draw(money))
        orders.setdefault(
            order_id,
            ParentOrder(
                order_id,
                record.account,
                record.symbol,
                record.side,
                2000,
                T0,
                draw(prices),
                draw(prices),
            ),
        )
    marks = {"AAPL": draw(prices), "MSFT": draw(prices)}
    accruals = tuple(
        BorrowAccrual(
            "A1", "AAPL", DAY + timedelta(days=d), -100, D("10"), D("0.3"), True, 1, draw(money)
        )
        for d in range(2)
    )
    groupings = draw(st.sets(st.sampled_from(list(PnlGrouping))))
    return PnlRequest(
        start=DAY,
        end=DAY + timedelta(days=1),
        records=tuple(records),
        fees=fees,
        end_marks=marks,
        start_marks=marks,
        group_by=tuple(groupings),
        borrow=accruals,
        orders=orders,
        mids=RampMids(draw(prices)),
        include_shortfall=True,
    )


def _is_cents(value: Decimal) -> bool:
    return value == value.quantize(CENT)


@settings(max_examples=150, deadline=None)
@given(request=sessions())
def test_attribute_pnl_when_any_session_then_parts_sum_to_totals_to_the_cent(
    request: PnlRequest,
) -> None:
    report = attribute_pnl(request)
    for row in report.rows:
        parts = [getattr(row.pnl, name) for name in PnlBreakdown.__dataclass_fields__]
        assert all(_is_cents(part) for part in parts)
        assert row.pnl.net == (
            row.pnl.gross_realized
            + row.pnl.gross_unrealized
            + row.pnl.commission
            + row.pnl.exchange_fees
            + row.pnl.regulatory_fees
            + row.pnl.borrow
        )
    for name in PnlBreakdown.__dataclass_fields__:
        assert getattr(report.total, name) == sum(getattr(r.pnl, name) for r in report.rows)
    assert report.total.net == sum(r.pnl.net for r in report.rows)
    for item in report.shortfalls:
        costs = (item.delay_cost, item.trading_cost, item.opportunity_cost, item.fees)
        assert all(_is_cents(p) for p in costs) and item.total == sum(costs)


@given(
    price=prices,
    quantity=st.integers(1, 10_000),
    short=st.booleans(),
)
def test_attribute_pnl_when_round_trip_at_one_price_without_costs_then_zero(
    price: Decimal, quantity: int, short: bool
) -> None:
    opening, closing = ("SS", "B") if short else ("B", "S")
    records = [fill(opening, quantity, price, at=T0), fill(closing, quantity, price, at=T0)]
    report = attribute_pnl(_request(records))
    assert report.total == PnlBreakdown()
    assert report.total.net == 0


def test_attribute_pnl_when_carried_position_without_start_mark_then_mark_missing() -> None:
    before = fill("B", 100, "10.00", at=T0 - timedelta(days=3))
    with pytest.raises(FailedPrecondition) as raised:
        attribute_pnl(_request([before], end_marks={"AAPL": D("10.25")}))
    assert raised.value.reason == "MARK_MISSING"


def test_attribute_pnl_when_closing_fill_in_range_then_realized_against_earlier_cost() -> None:
    opened = fill("B", 100, "10.00", at=T0 - timedelta(days=3))
    closed = fill("S", 100, "10.40", at=T0)
    report = attribute_pnl(_request([opened, closed], start_marks={"AAPL": D("10.30")}))
    # 40 realised in range, minus the 30 of it that was unrealised before the range began.
    assert (report.total.gross_realized, report.total.gross_unrealized) == (D("40.00"), D("-30.00"))
    assert report.total.net == D("10.00")
