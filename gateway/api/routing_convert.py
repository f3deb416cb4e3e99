"""Routing domain -> proto: decisions, venues and reports (``RouteOrder`` renders a decision,
``SubmitOrder`` may reuse ``decision``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import routing_pb2 as pb
from gateway.domain import routing_analysis as analysis
from gateway.domain.orders import OrderType
from gateway.domain.router import RoutingDecision
from gateway.domain.scoring import FACTORS as FACTORS_IN_ORDER
from gateway.domain.scoring import RoutingFactor, SizeTier
from gateway.domain.splitting import ChildRole
from gateway.domain.venue_health import BreakerState
from gateway.domain.venues import VenueProfile, VenueStatus

FACTORS: Mapping[RoutingFactor, pb.RoutingFactor.ValueType] = {
    f: pb.RoutingFactor.Value(f"ROUTING_FACTOR_{f.value}") for f in RoutingFactor
}
SIZE_TIERS: Mapping[SizeTier, pb.SizeTier.ValueType] = {
    t: pb.SizeTier.Value(f"SIZE_TIER_{t.value}") for t in SizeTier
}
ROLES: Mapping[ChildRole, pb.ChildRole.ValueType] = {
    r: pb.ChildRole.Value(f"CHILD_ROLE_{r.value}") for r in ChildRole
}
# The order of the router's per-factor tuples (gateway.domain.scoring.FACTORS).
_SPREAD, _LATENCY, _FEES, _FILL = (FACTORS[f] for f in FACTORS_IN_ORDER)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUSES: Mapping[VenueStatus, pb.VenueStatus.ValueType] = {
    s: pb.VenueStatus.Value(f"VENUE_STATUS_{s.value}") for s in VenueStatus
}
# Operator statuses a SetVenueStatus request may ask for.
OPERATOR_STATUSES: Mapping[int, VenueStatus] = {
    STATUSES[s]: s for s in (VenueStatus.UP, VenueStatus.DOWN)
}
ORDER_TYPES: Mapping[OrderType, common.OrderType.ValueType] = {
    t: common.OrderType.Value(f"ORDER_TYPE_{t.value}") for t in OrderType
}


def _text(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _timestamp(value: datetime, into: Timestamp) -> None:
    """``Timestamp.FromDatetime`` without its validation and time-tuple round trip."""
    delta = value - _EPOCH
    into.seconds = delta.days * 86_400 + delta.seconds
    into.nanos = delta.microseconds * 1_000


def decision(value: RoutingDecision, into: pb.RoutingDecision, latency_ns: int) -> None:
    """Render ``value`` into ``into``: ranked venues with every factor, child orders, costs."""
    into.decision_id = value.decision_id
    into.symbol = value.symbol
    _timestamp(value.decided_at, into.decided_at)
    into.decision_latency_ns = latency_ns
    into.expected_cost_per_share = str(value.expected_cost_per_share)
    into.arrival_mid = _text(value.arrival_mid)
    into.national_best_bid = _text(value.national_best_bid)
    into.national_best_offer = _text(value.national_best_offer)
    into.size_tier = SIZE_TIERS[value.size_tier]
    into.fallback_from = value.fallback_from
    into.fallback_reason = value.fallback_reason
    for note in value.notes:
        into.notes.add(code=note.code, message=note.message)
    # Straight from the decision's score rows: building VenueScore and FactorScore values first
    # would double the cost of the response.
    # Raw values in their units: $/share from the best price ('' when not measured),
    # microseconds, $/share of fees, probability to six places.
    w0, w1, w2, w3 = value.weights
    ranked = into.ranked_venues
    for rank, (name, score, eligible, exclusions, raw, normalized, _bonus, quote) in enumerate(
        value.scores, start=1
    ):
        venue = ranked.add(venue=name, rank=rank, score=score, eligible=eligible)
        add = venue.factors.add
        spread, latency, fee, probability = raw
        n0, n1, n2, n3 = normalized
        add(factor=_SPREAD, raw_value=_text(spread), normalized=n0, weight=w0, contribution=n0 * w0)
        add(factor=_LATENCY, raw_value=str(latency), normalized=n1, weight=w1, contribution=n1 * w1)
        add(factor=_FEES, raw_value=str(fee), normalized=n2, weight=w2, contribution=n2 * w2)
        add(
            factor=_FILL,
            raw_value=f"{probability:.6f}",
            normalized=n3,
            weight=w3,
            contribution=n3 * w3,
        )
        for reason in exclusions:
            venue.exclusions.add(code=reason.code, message=reason.message)
        if quote is not None:
            venue.bid_price = _text(quote.bid_price)
            venue.bid_size = quote.bid_size
            venue.ask_price = _text(quote.ask_price)
            venue.ask_size = quote.ask_size
    for child in value.child_orders:
        into.child_orders.add(
            venue=child.venue,
            quantity=child.quantity,
            limit_price=_text(child.limit_price),
            order_type=ORDER_TYPES[child.order_type],
            intermarket_sweep=child.intermarket_sweep,
            role=ROLES[child.role],
            expected_cost_per_share=str(child.expected_cost_per_share),
        )


def venue(
    profile: VenueProfile,
    breaker: BreakerState,
    fill_probability: Mapping[SizeTier, float],
    into: pb.Venue,
) -> None:
    """Render a venue: the operator status wins over the breaker's (a venue down stays down)."""
    into.venue = profile.venue
    into.name = profile.name
    status, reason, since = profile.status, profile.status_reason, profile.status_changed_at
    if status is VenueStatus.UP and breaker.status is not VenueStatus.UP:
        status, reason, since = breaker.status, breaker.reason, breaker.since
    into.status = STATUSES[status]
    into.status_reason = reason
    if since is not None:
        into.status_changed_at.FromDatetime(since)
    into.latency_typical_us = profile.latency_typical_us
    into.latency_tail_us = profile.latency_tail_us
    into.access_delay_us = profile.access_delay_us
    fees = profile.fees
    into.fees.take_fee_per_share = str(fees.take_fee_per_share)
    into.fees.make_rebate_per_share = str(fees.make_rebate_per_share)
    into.fees.take_fee_rate_below_1 = str(fees.take_fee_rate_below_1)
    into.fees.make_rebate_rate_below_1 = str(fees.make_rebate_rate_below_1)
    into.fees.routed_fee_per_share = str(fees.routed_fee_per_share)
    into.fees.auction_fee_per_share = str(fees.auction_fee_per_share)
    into.liquidity_score = profile.liquidity_score
    caps = profile.capabilities
    into.capabilities.post_only = caps.post_only
    into.capabilities.hidden = caps.hidden
    into.capabilities.midpoint_peg = caps.midpoint_peg
    into.capabilities.intermarket_sweep = caps.intermarket_sweep
    into.capabilities.listing_auctions = caps.listing_auctions
    for tier, probability in fill_probability.items():
        into.fill_probability[tier.value] = probability


def report(value: analysis.RoutingReport, into: pb.RoutingReport) -> None:
    """Render a hindsight report."""
    into.decisions = value.decisions
    into.decisions_with_fills = value.decisions_with_fills
    into.accuracy = value.accuracy
    into.tolerance_per_share = str(value.tolerance_per_share)
    into.realized_cost_per_share = str(value.realized_cost_per_share)
    into.baseline_listing_cost_per_share = str(value.baseline_listing_cost_per_share)
    into.baseline_lowest_fee_cost_per_share = str(value.baseline_lowest_fee_cost_per_share)
    into.slippage_reduction_vs_listing_pct = value.slippage_reduction_vs_listing_pct
    into.slippage_reduction_vs_lowest_fee_pct = value.slippage_reduction_vs_lowest_fee_pct
    into.total_cost_savings = str(value.total_cost_savings)
    for item in value.venues:
        into.venues.add(
            venue=item.venue,
            decisions=item.decisions,
            filled_shares=item.filled_shares,
            accuracy=item.accuracy,
            realized_cost_per_share=str(item.realized_cost_per_share),
            cost_savings=str(item.cost_savings),
        )
