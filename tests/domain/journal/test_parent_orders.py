"""Parent orders and listing-exchange baselines from stored routing decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from gateway.domain.fees import FeeBreakdown
from gateway.domain.fills import Fill, Liquidity
from gateway.domain.mid_history import MidHistory
from gateway.domain.orders import Side
from gateway.domain.parent_orders import (
    StoredDecision,
    end_of_trade_date,
    parent_orders,
    routing_baselines,
)
from gateway.domain.quotes import VenueQuote
from gateway.domain.routing_analysis import DecisionRecord
from gateway.domain.venues import VenueFees
from tests.domain.journal.trades import T0, fill

D = Decimal
ZERO = D(0)
# NASDAQ (the listing exchange) and IEX both offer 300 at 10.01 over a 9.99 bid.
SNAPSHOT = (
    VenueQuote("NASDAQ", D("9.99"), 300, D("10.01"), 300, T0),
    VenueQuote("IEX", D("9.99"), 300, D("10.01"), 300, T0),
)
FEES = {
    "NASDAQ": VenueFees(D("0.0030"), D("0.0020"), D("0.003"), ZERO, D("0.0030"), D("0.0010")),
    "IEX": VenueFees(D("0.0009"), ZERO, D("0.0009"), ZERO, D("0.0009"), ZERO),
}


def decision(decision_id: str, quantity: int = 200, seconds: int = 0) -> StoredDecision:
    record = DecisionRecord(
        decision_id, "AAPL", Side.BUY, quantity, "IEX", D("10.00"), SNAPSHOT, "NASDAQ"
    )
    return StoredDecision(record, T0 + timedelta(seconds=seconds))


def with_ids(order: str, decision_id: str, liquidity: Liquidity = Liquidity.REMOVED) -> Fill:
    made = fill("B", 100, "10.01", order=order, venue="IEX", liquidity=liquidity)
    return replace(made, decision_id=decision_id)


def test_parent_orders_when_rerouted_then_first_decision_and_end_mid_capped_at_as_of() -> None:
    first, rerouted = decision("d1", 200, 0), decision("d2", 100, 30)
    fills = [with_ids("O1", "d2"), with_ids("O1", "d1"), with_ids("", "d1"), with_ids("O2", "x")]
    mids = MidHistory(
        [("AAPL", T0, D("10.00")), ("AAPL", T0 + timedelta(hours=1), D("10.40"))],
        as_of=T0 + timedelta(minutes=30),
    )
    orders = parent_orders(fills, {"d1": first, "d2": rerouted}, mids, mids.as_of)
    # O2 names no stored decision and the third fill no order: one parent order, as first decided.
    [order] = orders.values()
    assert (order.client_order_id, order.ordered_quantity, order.decision_time) == ("O1", 200, T0)
    assert order.arrival_mid == D("10.00")
    # The day has not ended at as_of: the latest known mid, not the 10.40 recorded after it.
    assert order.end_mid == D("10.00")
    whole_day = parent_orders(fills, {"d1": first}, MidHistory(mids_of_day(), T0 + timedelta(1)))
    assert whole_day["O1"].end_mid == D("10.40")


def mids_of_day() -> list[tuple[str, datetime, Decimal]]:
    return [
        ("AAPL", T0, D("10.00")),
        ("AAPL", T0 + timedelta(hours=1), D("10.40")),
        ("AAPL", end_of_trade_date(T0.date()) + timedelta(seconds=1), D("11.00")),
    ]


def test_routing_baselines_then_listing_exchange_all_in_price_for_each_fill() -> None:
    fills = [with_ids("O1", "d1"), with_ids("O1", "d1", Liquidity.ROUTED)]
    fees = {f.key: FeeBreakdown(ZERO, D("0.09"), ZERO, ZERO) for f in fills}
    baselines = routing_baselines(fills, {"d1": decision("d1")}, fees, FEES)
    # NASDAQ for the 200 filled: 10.01 + its 0.0030 take fee, as one all-in price.
    assert {b.price for b in baselines.values()} == {D("10.0130")}
    assert {b.fee_per_share for b in baselines.values()} == {ZERO}
    assert set(baselines) == {f.key for f in fills}
    assert routing_baselines(fills, {}, fees, FEES) == {}
