"""Hindsight analysis of routing decisions linked to fills (``GetRoutingReport``).

Pure functions over plain records. Costs are per share, positive = worse for the order, measured
against the arrival mid: ``side x (price - mid) + fee`` (a rebate is a negative fee).

- Realised cost of a decision: its fills, fees and rebates included.
- Counterfactual cost at venue V: the whole filled quantity sent to V, from the stored snapshot:
  V's displayed size at V's price plus V's take fee; the rest routed out by V to the next-best
  displayed prices plus V's routed fee; and the shares V's quote would have faded on (its
  hindsight fill rate, measured from the fills of the period) costed one tick worse, routed out.
- Accurate: the decision's cost <= the cheapest counterfactual at any other venue + tolerance,
  where the decision's cost is its realised cost with the luck of fades taken out: the taking
  shares at each venue are costed at that venue's hindsight fill rate (at the quote) and its
  complement (routed out), exactly like the counterfactuals. Accuracy judges the choice on the
  same terms as the alternatives; slippage and savings use the realised cost as it came.
- Baselines: the listing exchange always; the lowest take fee always.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gateway.domain.orders import Side
from gateway.domain.prices import PENNY, SUB_PENNY
from gateway.domain.quotes import VenueQuote
from gateway.domain.router import RoutingDecision
from gateway.domain.venues import VenueFees
from gateway.domain.vocabulary import Vocabulary

ZERO = Decimal(0)
QUANTUM = Decimal("0.000001")


class Liquidity(Vocabulary):
    """Liquidity flag of a fill (proto ``Liquidity``)."""

    ADDED = "ADDED"
    REMOVED = "REMOVED"
    # Routed out by the venue (its quote was gone): shows the venue's fill rate.
    ROUTED = "ROUTED"
    AUCTION = "AUCTION"


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A stored decision: what the analysis needs of it."""

    decision_id: str
    symbol: str
    side: Side
    quantity: int
    venue: str  # the primary venue (first child)
    arrival_mid: Decimal
    snapshot: tuple[VenueQuote, ...]
    listing_venue: str


def decision_record(decision: RoutingDecision, listing_venue: str) -> DecisionRecord:
    """Return what the analysis keeps of a decision (the stored snapshot included)."""
    mid = decision.arrival_mid
    if mid is None:  # a one-sided book: the only side stands in for the mid
        mid = decision.national_best_bid or decision.national_best_offer or ZERO
    return DecisionRecord(
        decision.decision_id,
        decision.symbol,
        decision.side,
        decision.quantity,
        decision.venue,
        mid,
        decision.snapshot,
        listing_venue,
    )


@dataclass(frozen=True, slots=True)
class FillRecord:
    """A fill linked to a decision. ``fee_per_share`` is positive for a fee, negative a rebate."""

    decision_id: str
    venue: str
    quantity: int
    price: Decimal
    fee_per_share: Decimal
    liquidity: Liquidity


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    tolerance_per_share: Decimal = Decimal("0.0010")


@dataclass(frozen=True, slots=True)
class DecisionCost:
    """One decision in hindsight."""

    decision_id: str
    venue: str
    filled: int
    realized_cost_per_share: Decimal
    counterfactual: Mapping[str, Decimal]
    hindsight_best: str
    accurate: bool
    listing_cost_per_share: Decimal
    lowest_fee_cost_per_share: Decimal


@dataclass(frozen=True, slots=True)
class VenueReport:
    venue: str
    decisions: int
    filled_shares: int
    accuracy: float
    realized_cost_per_share: Decimal
    cost_savings: Decimal  # vs the listing-exchange baseline, total $


@dataclass(frozen=True, slots=True)
class RoutingReport:
    """Proto ``RoutingReport``."""

    decisions: int
    decisions_with_fills: int
    accuracy: float
    tolerance_per_share: Decimal
    realized_cost_per_share: Decimal
    baseline_listing_cost_per_share: Decimal
    baseline_lowest_fee_cost_per_share: Decimal
    slippage_reduction_vs_listing_pct: float
    slippage_reduction_vs_lowest_fee_pct: float
    total_cost_savings: Decimal
    venues: tuple[VenueReport, ...]


def hindsight_fill_rates(fills: Iterable[FillRecord]) -> dict[str, float]:
    """Per venue: share of taking shares filled at the quote (REMOVED / (REMOVED + ROUTED))."""
    removed: dict[str, int] = {}
    routed: dict[str, int] = {}
    for fill in fills:
        if fill.liquidity is Liquidity.REMOVED:
            removed[fill.venue] = removed.get(fill.venue, 0) + fill.quantity
        elif fill.liquidity is Liquidity.ROUTED:
            routed[fill.venue] = routed.get(fill.venue, 0) + fill.quantity
    return {
        venue: removed.get(venue, 0) / (removed.get(venue, 0) + routed.get(venue, 0))
        for venue in set(removed) | set(routed)
    }


def realized_cost(record: DecisionRecord, fills: Sequence[FillRecord]) -> tuple[int, Decimal]:
    """Return filled shares and the all-in cost per share of ``fills`` vs the arrival mid."""
    sign = 1 if record.side is Side.BUY else -1
    shares = 0
    total = ZERO
    for fill in fills:
        shares += fill.quantity
        total += (sign * (fill.price - record.arrival_mid) + fill.fee_per_share) * fill.quantity
    if shares == 0:
        return 0, ZERO
    return shares, total / shares


def choice_cost(
    record: DecisionRecord,
    fills: Sequence[FillRecord],
    fees: Mapping[str, VenueFees],
    fill_rates: Mapping[str, float],
) -> Decimal:
    """Return the decision's cost per share with each venue's fades at its hindsight rate."""
    sign = 1 if record.side is Side.BUY else -1
    mid = record.arrival_mid
    shares = 0
    total = ZERO
    taken: dict[str, list[tuple[FillRecord, Decimal]]] = {}
    for fill in fills:
        shares += fill.quantity
        cost = sign * (fill.price - mid) + fill.fee_per_share
        if fill.liquidity in (Liquidity.REMOVED, Liquidity.ROUTED) and fill.venue in fees:
            taken.setdefault(fill.venue, []).append((fill, cost))
        else:
            total += cost * fill.quantity
    for venue, items in taken.items():
        venue_fees = fees[venue]
        rate = Decimal(str(round(fill_rates.get(venue, 1.0), 6)))
        quantity = sum(f.quantity for f, _c in items)
        removed = [(f, c) for f, c in items if f.liquidity is Liquidity.REMOVED]
        routed = [(f, c) for f, c in items if f.liquidity is Liquidity.ROUTED]
        if removed:
            at_quote = _mean_cost(removed)
            price = removed[0][0].price
        else:
            first = routed[0][0]
            tick = PENNY if first.price >= 1 else SUB_PENNY
            price = first.price - tick if sign > 0 else first.price + tick
            at_quote = sign * (price - mid) + venue_fees.take_fee(price)
        if routed:
            faded = _mean_cost(routed)
        else:
            tick = PENNY if price >= 1 else SUB_PENNY
            faded = at_quote + tick + venue_fees.routed_fee_per_share - venue_fees.take_fee(price)
        total += (rate * at_quote + (1 - rate) * faded) * quantity
    return total / shares if shares else ZERO


def _mean_cost(items: Sequence[tuple[FillRecord, Decimal]]) -> Decimal:
    total = ZERO
    shares = 0
    for fill, cost in items:
        total += cost * fill.quantity
        shares += fill.quantity
    return total / shares


def counterfactual_cost(
    record: DecisionRecord,
    venue: str,
    quantity: int,
    fees: Mapping[str, VenueFees],
    fill_rates: Mapping[str, float],
) -> Decimal | None:
    """Cost per share of sending ``quantity`` to ``venue`` from the snapshot; None if it showed
    nothing on the side the order takes."""
    is_buy = record.side is Side.BUY
    quotes = {q.venue: q for q in record.snapshot}
    own = quotes.get(venue)
    venue_fees = fees.get(venue)
    if own is None or venue_fees is None:
        return None
    price = own.ask_price if is_buy else own.bid_price
    size = own.ask_size if is_buy else own.bid_size
    if price is None or size <= 0:
        return None
    sign = 1 if is_buy else -1
    mid = record.arrival_mid
    tick = PENNY if price >= 1 else SUB_PENNY
    at_quote = min(quantity, size)
    faded = round(at_quote * (1.0 - fill_rates.get(venue, 1.0)))
    filled_here = at_quote - faded
    total = (sign * (price - mid) + venue_fees.take_fee(price)) * filled_here
    # Faded shares and the quantity beyond the displayed size are routed out by the venue.
    remaining = quantity - filled_here
    faded_price = price + tick if is_buy else price - tick
    total += (sign * (faded_price - mid) + venue_fees.routed_fee_per_share) * faded
    remaining -= faded
    if remaining:
        # Routed out to the next-best displayed quotes, which fade at their own hindsight rates.
        others = sorted(
            (
                (
                    q.ask_price if is_buy else q.bid_price,
                    q.ask_size if is_buy else q.bid_size,
                    q.venue,
                )
                for q in record.snapshot
                if q.venue != venue
                and (q.ask_price if is_buy else q.bid_price) is not None
                and (q.ask_size if is_buy else q.bid_size) > 0
            ),
            key=lambda level: sign * level[0],  # type: ignore[operator]
        )
        routed_fee = venue_fees.routed_fee_per_share
        last = faded_price
        for level_price, level_size, level_venue in others:
            assert level_price is not None
            take = min(remaining, level_size)
            rate = Decimal(str(round(fill_rates.get(level_venue, 1.0), 6)))
            worse = level_price + tick if is_buy else level_price - tick
            expected_price = rate * level_price + (1 - rate) * worse
            total += (sign * (expected_price - mid) + routed_fee) * take
            remaining -= take
            last = level_price
            if not remaining:
                break
        if remaining:  # beyond the displayed book: one tick past the last level
            worse = last + tick if is_buy else last - tick
            total += (sign * (worse - mid) + routed_fee) * remaining
    return total / quantity


def analyse_decision(
    record: DecisionRecord,
    fills: Sequence[FillRecord],
    fees: Mapping[str, VenueFees],
    fill_rates: Mapping[str, float],
    settings: AnalysisSettings,
) -> DecisionCost | None:
    """Return the decision's hindsight costs, or None when it has no fills."""
    filled, realized = realized_cost(record, fills)
    if filled == 0:
        return None
    counterfactual: dict[str, Decimal] = {}
    for venue in fees:
        cost = counterfactual_cost(record, venue, filled, fees, fill_rates)
        if cost is not None:
            counterfactual[venue] = cost
    others = {v: c for v, c in counterfactual.items() if v != record.venue}
    chosen = choice_cost(record, fills, fees, fill_rates)
    best_other = min(others.values()) if others else chosen
    hindsight_best = record.venue if chosen <= best_other else min(others, key=lambda v: others[v])
    listing = counterfactual.get(record.listing_venue, realized)
    lowest_fee_venue = min(
        counterfactual, key=lambda v: (fees[v].take_fee_per_share, v), default=None
    )
    lowest_fee = counterfactual[lowest_fee_venue] if lowest_fee_venue else realized
    return DecisionCost(
        record.decision_id,
        record.venue,
        filled,
        realized,
        counterfactual,
        hindsight_best,
        chosen <= best_other + settings.tolerance_per_share,
        listing,
        lowest_fee,
    )


def routing_report(
    records: Iterable[DecisionRecord],
    fills: Iterable[FillRecord],
    fees: Mapping[str, VenueFees],
    settings: AnalysisSettings | None = None,
) -> RoutingReport:
    """Analyse every decision linked to fills (by decision id) into a report."""
    settings = settings or AnalysisSettings()
    fills = list(fills)
    by_decision: dict[str, list[FillRecord]] = {}
    for fill in fills:
        by_decision.setdefault(fill.decision_id, []).append(fill)
    rates = hindsight_fill_rates(fills)
    count = 0
    costs: list[DecisionCost] = []
    for record in records:
        count += 1
        linked = by_decision.get(record.decision_id)
        if linked:
            cost = analyse_decision(record, linked, fees, rates, settings)
            if cost is not None:
                costs.append(cost)
    shares = sum(c.filled for c in costs)
    realized = _weighted(costs, shares, lambda c: c.realized_cost_per_share)
    listing = _weighted(costs, shares, lambda c: c.listing_cost_per_share)
    lowest_fee = _weighted(costs, shares, lambda c: c.lowest_fee_cost_per_share)
    per_venue: dict[str, list[DecisionCost]] = {}
    for c in costs:
        per_venue.setdefault(c.venue, []).append(c)
    venues = tuple(
        VenueReport(
            venue,
            len(items),
            sum(c.filled for c in items),
            sum(c.accurate for c in items) / len(items),
            _weighted(items, sum(c.filled for c in items), lambda c: c.realized_cost_per_share),
            _money(
                sum(
                    (
                        (c.listing_cost_per_share - c.realized_cost_per_share) * c.filled
                        for c in items
                    ),
                    ZERO,
                )
            ),
        )
        for venue, items in sorted(per_venue.items())
    )
    return RoutingReport(
        decisions=count,
        decisions_with_fills=len(costs),
        accuracy=sum(c.accurate for c in costs) / len(costs) if costs else 0.0,
        tolerance_per_share=settings.tolerance_per_share,
        realized_cost_per_share=realized,
        baseline_listing_cost_per_share=listing,
        baseline_lowest_fee_cost_per_share=lowest_fee,
        slippage_reduction_vs_listing_pct=_reduction(listing, realized),
        slippage_reduction_vs_lowest_fee_pct=_reduction(lowest_fee, realized),
        total_cost_savings=sum((v.cost_savings for v in venues), ZERO),
        venues=venues,
    )


def _weighted(
    costs: Sequence[DecisionCost], shares: int, value: Callable[[DecisionCost], Decimal]
) -> Decimal:
    if shares == 0:
        return ZERO
    total = sum((value(c) * c.filled for c in costs), ZERO)
    return (total / shares).quantize(QUANTUM, ROUND_HALF_UP)


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(PENNY, ROUND_HALF_UP)


def _reduction(baseline: Decimal, realized: Decimal) -> float:
    """(baseline - realized) / |baseline| in percent."""
    if baseline == 0:
        return 0.0
    return float((baseline - realized) / abs(baseline) * 100)
