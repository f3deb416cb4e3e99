"""Hindsight analysis: realised vs counterfactual costs, accuracy, baselines, savings."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

import pytest

from gateway.domain.market_model import MarketModel
from gateway.domain.orders import OrderType, Side
from gateway.domain.quotes import VenueQuote
from gateway.domain.routing_analysis import (
    AnalysisSettings,
    DecisionRecord,
    FillRecord,
    Liquidity,
    counterfactual_cost,
    decision_record,
    model_choice_cost,
    model_counterfactual_cost,
    realized_cost,
    routing_report,
)
from gateway.domain.splitting import ChildOrder, ChildRole

from .market import NOW, book, default_venues, flat_book, order, router

FEES = {p.venue: p.fees for p in default_venues()}
Z = Decimal(0)
SNAPSHOT = tuple(
    book(
        [
            ("NASDAQ", "100.00", 500, "100.02", 500),
            ("NYSE", "100.00", 500, "100.02", 100),
            ("IEX", "100.00", 500, "100.02", 500),
        ]
    )
)


def _record(decision_id: str, venue: str, quantity: int = 200) -> DecisionRecord:
    return DecisionRecord(
        decision_id, "AAPL", Side.BUY, quantity, venue, Decimal("100.01"), SNAPSHOT, "NYSE"
    )


def _fill(decision_id: str, venue: str, quantity: int, price: str) -> FillRecord:
    fees = FEES[venue]
    return FillRecord(
        decision_id,
        venue,
        quantity,
        Decimal(price),
        fees.take_fee(Decimal(price)),
        Liquidity.REMOVED,
    )


def test_realized_cost_then_price_vs_mid_plus_fee() -> None:
    shares, cost = realized_cost(_record("d1", "NASDAQ"), [_fill("d1", "NASDAQ", 200, "100.02")])
    assert shares == 200
    assert cost == Decimal("0.0130")


def test_rebate_then_negative_fee_lowers_cost() -> None:
    fill = FillRecord("d1", "NASDAQ", 100, Decimal("100.00"), Decimal("-0.0020"), Liquidity.ADDED)
    assert realized_cost(_record("d1", "NASDAQ"), [fill])[1] == Decimal("-0.0120")


def test_counterfactual_beyond_displayed_size_then_routed_out_at_next_level() -> None:
    record = _record("d1", "NYSE", quantity=200)
    cost = counterfactual_cost(record, "NYSE", 200, FEES, {})
    # 100 at NYSE (0.01 + 0.00275), 100 routed out at 100.02 (0.01 + 0.0030 routed fee).
    assert cost == Decimal("0.012875")
    assert counterfactual_cost(record, "EDGX", 200, FEES, {}) is None


def test_counterfactual_with_fades_then_faded_share_costs_a_tick_more() -> None:
    record = _record("d1", "IEX", quantity=100)
    cost = counterfactual_cost(record, "IEX", 100, FEES, {"IEX": 0.5})
    assert cost == (Decimal("0.0109") * 50 + Decimal("0.0230") * 50) / 100


def test_report_then_accuracy_baselines_and_savings() -> None:
    records = [_record("d1", "IEX"), _record("d2", "NASDAQ"), _record("d3", "IEX")]
    fills = [
        _fill("d1", "IEX", 200, "100.02"),
        _fill("d2", "NASDAQ", 200, "100.02"),
        # d3 has no fills: counted as a decision, not analysed.
    ]
    report = routing_report(records, fills, FEES, AnalysisSettings(Decimal("0.0005")))
    assert report.decisions == 3
    assert report.decisions_with_fills == 2
    # IEX (0.0009) was hindsight-best for d1; NASDAQ's 0.0030 misses it by more than 0.0005.
    assert report.accuracy == 0.5
    assert report.baseline_listing_cost_per_share > report.realized_cost_per_share
    assert report.slippage_reduction_vs_listing_pct > 0
    venues = {v.venue: v for v in report.venues}
    assert venues["IEX"].accuracy == 1.0
    assert venues["NASDAQ"].accuracy == 0.0
    assert venues["IEX"].cost_savings > 0
    assert report.total_cost_savings == sum(v.cost_savings for v in report.venues)
    assert report.baseline_lowest_fee_cost_per_share == pytest.approx(Decimal("0.0109"))


def test_no_fills_then_empty_report() -> None:
    report = routing_report([_record("d1", "IEX")], [], FEES)
    assert report.decisions_with_fills == 0
    assert report.accuracy == 0.0
    assert report.venues == ()


def test_decision_record_then_keeps_snapshot_mid_and_primary_venue() -> None:
    venues = default_venues()
    decision = router(venues).decide(order(), flat_book(), venues, NOW)
    record = decision_record(decision, "NASDAQ")
    assert record.decision_id == decision.decision_id
    assert record.venue == decision.child_orders[0].venue
    assert record.arrival_mid == Decimal("100.01")
    assert record.snapshot == decision.snapshot
    assert record.decided_at == NOW
    assert record.children == decision.child_orders


def test_counterfactual_at_venue_behind_the_best_then_routed_out_not_traded_through() -> None:
    # NYSE shows 100.03 while NASDAQ and IEX show 100.02: an exchange may not trade through the
    # better protected quotes (Rule 611); it routes out to them first, at its routed fee.
    snapshot = tuple(
        book(
            [
                ("NASDAQ", "100.00", 500, "100.02", 100),
                ("NYSE", "100.00", 500, "100.03", 500),
                ("IEX", "100.00", 500, "100.02", 100),
            ]
        )
    )
    record = DecisionRecord(
        "d1", "AAPL", Side.BUY, 300, "NASDAQ", Decimal("100.01"), snapshot, "NYSE"
    )
    cost = counterfactual_cost(record, "NYSE", 300, FEES, {})
    # 200 routed out at 100.02 (0.01 + 0.0030 routed fee), then 100 at NYSE's 100.03 + 0.00275.
    assert cost == (Decimal("0.0130") * 200 + Decimal("0.02275") * 100) / 300


def test_posted_fills_then_every_venue_rests_them_at_the_same_price_with_its_rebate() -> None:
    record = _record("d1", "NASDAQ", quantity=100)
    added = FillRecord("d1", "NASDAQ", 100, Decimal("100.00"), Decimal("-0.0020"), Liquidity.ADDED)
    report = routing_report([record], [added], FEES)
    # A resting order is compared with resting at the listing exchange (NYSE rebate 0.0012), not
    # with crossing the spread there.
    assert report.realized_cost_per_share == Decimal("-0.012000")
    assert report.baseline_listing_cost_per_share == Decimal("-0.011200")
    assert report.accuracy == 1.0


# --- the market model (venue profiles given): every route faces the same mechanics -----------

PROFILES = {p.venue: p for p in default_venues()}
MODEL = MarketModel()


def _spray_record(
    snapshot: tuple[VenueQuote, ...], *children: tuple[str, int], listing: str = "NYSE"
) -> DecisionRecord:
    takes = tuple(
        ChildOrder(v, q, Decimal("100.02"), OrderType.LIMIT, len(children) > 1, ChildRole.TAKE, Z)
        for v, q in children
    )
    quantity = sum(q for _v, q in children)
    venue = children[0][0]
    return DecisionRecord(
        "d1", "AAPL", Side.BUY, quantity, venue, Decimal("100.01"), snapshot, listing, NOW, takes
    )


def test_model_route_to_one_venue_then_costed_exactly_like_the_counterfactual_there() -> None:
    record = _spray_record(SNAPSHOT, ("NASDAQ", 200))
    fills = [_fill("d1", "NASDAQ", 200, "100.02")]
    chosen = model_choice_cost(record, fills, PROFILES, MODEL)
    assert chosen == model_counterfactual_cost(record, "NASDAQ", 200, PROFILES, MODEL)
    # Fades, misses and midpoint fills are priced in: not the bare quote plus fee.
    assert chosen != Decimal("0.0130")


def test_model_listing_behind_the_best_then_routes_out_later_and_costs_more_than_direct() -> None:
    snapshot = tuple(
        book(
            [
                ("NASDAQ", "100.00", 500, "100.02", 100),
                ("NYSE", "100.00", 500, "100.03", 500),
            ]
        )
    )
    record = _spray_record(snapshot, ("NASDAQ", 100))
    listing = model_counterfactual_cost(record, "NYSE", 100, PROFILES, MODEL)
    direct = model_counterfactual_cost(record, "NASDAQ", 100, PROFILES, MODEL)
    assert listing is not None and direct is not None
    # NYSE may not trade through NASDAQ's 100.02 (Rule 611): it routes the 100 shares there, at
    # its routed fee (0.0030, NASDAQ's take fee too) but later, so the quote fades more often.
    assert listing > direct


def test_model_listing_sweep_then_its_route_out_after_its_own_print_meets_the_reaction() -> None:
    snapshot = tuple(
        book(
            [
                ("NYSE", "100.00", 500, "100.02", 200),
                ("NASDAQ", "100.00", 500, "100.02", 300),
                ("BATS_BZX", "100.00", 500, "100.02", 300),
            ]
        )
    )
    record = _spray_record(snapshot, ("NASDAQ", 300), ("BATS_BZX", 300), ("NYSE", 200))
    listing = model_counterfactual_cost(record, "NYSE", 800, PROFILES, MODEL)
    no_reaction = replace(MODEL, reaction_fade=0.0)
    calm = model_counterfactual_cost(record, "NYSE", 800, PROFILES, no_reaction)
    assert listing is not None and calm is not None
    assert listing > calm
    # The router's children leave together: only NYSE (70 us against NASDAQ's 45 + 20) is late.
    fills = [
        _fill("d1", "NASDAQ", 300, "100.02"),
        _fill("d1", "BATS_BZX", 300, "100.02"),
        _fill("d1", "NYSE", 200, "100.02"),
    ]
    assert model_choice_cost(record, fills, PROFILES, MODEL) < listing


def test_model_report_then_both_baselines_are_model_counterfactuals() -> None:
    record = _spray_record(SNAPSHOT, ("NASDAQ", 200), listing="NYSE")
    fills = [_fill("d1", "NASDAQ", 200, "100.02")]
    report = routing_report([record], fills, FEES, profiles=PROFILES)
    listing = model_counterfactual_cost(record, "NYSE", 200, PROFILES, MODEL)
    lowest_fee = model_counterfactual_cost(record, "IEX", 200, PROFILES, MODEL)
    assert listing is not None and lowest_fee is not None
    quantum = Decimal("0.000001")
    assert report.baseline_listing_cost_per_share == listing.quantize(quantum, ROUND_HALF_UP)
    assert report.baseline_lowest_fee_cost_per_share == lowest_fee.quantize(quantum, ROUND_HALF_UP)
