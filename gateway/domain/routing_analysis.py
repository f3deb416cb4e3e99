"""Hindsight analysis of routing decisions linked to fills (``GetRoutingReport``).

Pure functions over plain records. Costs are per share, positive = worse for the order, measured
against the arrival mid: ``side x (price - mid) + fee`` (a rebate is a negative fee).

- Realised cost of a decision: its fills, fees and rebates included.
- Counterfactual cost at venue V: the decision's taken shares sent to V as a taking order, from
  the stored snapshot. V trades nothing through a better displayed quote elsewhere (Reg NMS Rule
  611): it routes out to those first at its routed fee, then fills V's displayed size at V's
  price plus V's take fee, then routes the rest out to the next-best displayed prices. The
  decision's posted (ADDED) shares rest at V at the same price with V's make rebate: a resting
  order is compared with resting elsewhere, never with crossing the spread (its unfilled shares
  carry no cost in either).
- What a taking leg meets on the way, two ways:

  - given the venue profiles (``profiles=``; the simulated day): the market model of
    ``gateway.domain.market_model`` with ``AnalysisSettings.market``, in expectation: midpoint
    liquidity, fades that grow with the exposure (latency, the route-out hops of an exchange
    that routes the order on, the quote's age), print-triggered fades of legs that arrive after
    another leg of the order printed, misses re-routed one tick worse and maybe one more. The
    decision's own route (its children, sent together) is costed the same way from the same
    snapshot;
  - without them (live reports, whose venue behaviour is not modelled): the hindsight fill rate
    of each venue, measured from the fills of the period; the shares a quote would have faded on
    cost one tick worse, routed out.

- Accurate: the decision's cost <= the cheapest counterfactual at any other venue + tolerance,
  where the decision's cost is its expected cost on the same terms as the alternatives (the luck
  of fades taken out). Slippage and savings use the realised cost as it came.
- Baselines: the listing exchange always; the lowest take fee always. Both route under Rule 611
  and meet the same fades as any other route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from gateway.domain.market_model import Leg, MarketModel, expected_leg, spray_timing
from gateway.domain.orders import OrderType, Side
from gateway.domain.prices import PENNY, SUB_PENNY
from gateway.domain.quotes import VenueQuote
from gateway.domain.router import RoutingDecision
from gateway.domain.splitting import ChildOrder, ChildRole
from gateway.domain.venues import VenueFees, VenueProfile
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
    # For the market-model analysis: when the decision was made (quote ages) and its children.
    decided_at: datetime | None = None
    children: tuple[ChildOrder, ...] = ()


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
        decision.decided_at,
        decision.child_orders,
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
    """Accuracy tolerance, and the market model the counterfactuals face when the analysis is
    given the venue profiles (``gateway.domain.market_model``)."""

    tolerance_per_share: Decimal = Decimal("0.0010")
    market: MarketModel = field(default_factory=MarketModel)


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
    # The decision's own route as accuracy judged it (fades at their expected rate).
    chosen_cost_per_share: Decimal | None = None


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
    """Cost per share of sending ``quantity`` to ``venue`` as a taking order, from the snapshot;
    None if it showed nothing on the side the order takes.

    ``venue`` trades no share through a better displayed quote elsewhere (Reg NMS Rule 611): it
    routes the order out to those first at its routed fee, then fills against its own quote, then
    routes the rest out to the next levels. Routed shares fade at their venue's hindsight rate,
    one tick worse.
    """
    is_buy = record.side is Side.BUY
    own = next((q for q in record.snapshot if q.venue == venue), None)
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
    routed_fee = venue_fees.routed_fee_per_share
    levels: list[tuple[Decimal, int, str]] = []
    for q in record.snapshot:
        level_price, level_size = (q.ask_price, q.ask_size) if is_buy else (q.bid_price, q.bid_size)
        if q.venue != venue and level_price is not None and level_size > 0:
            levels.append((level_price, level_size, q.venue))
    levels.sort(key=lambda level: sign * level[0])
    better = [level for level in levels if sign * (level[0] - price) < 0]
    total = ZERO
    remaining = quantity
    last = price

    def route_out(out: Sequence[tuple[Decimal, int, str]]) -> None:
        nonlocal total, remaining, last
        for level_price, level_size, level_venue in out:
            if not remaining:
                return
            take = min(remaining, level_size)
            rate = Decimal(str(round(fill_rates.get(level_venue, 1.0), 6)))
            worse = level_price + tick if is_buy else level_price - tick
            expected_price = rate * level_price + (1 - rate) * worse
            total += (sign * (expected_price - mid) + routed_fee) * take
            remaining -= take
            last = level_price

    route_out(better)
    if remaining:
        at_quote = min(remaining, size)
        faded = round(at_quote * (1.0 - fill_rates.get(venue, 1.0)))
        total += (sign * (price - mid) + venue_fees.take_fee(price)) * (at_quote - faded)
        # Faded shares are routed out by the venue one tick worse.
        faded_price = price + tick if is_buy else price - tick
        total += (sign * (faded_price - mid) + routed_fee) * faded
        remaining -= at_quote
        last = faded_price if faded else price
        route_out(levels[len(better) :])
    if remaining:  # beyond the displayed book: one tick past the last level
        worse = last + tick if is_buy else last - tick
        total += (sign * (worse - mid) + routed_fee) * remaining
    return total / quantity


# --- the market-model analysis (venue profiles given) -----------------------------------------


@dataclass(frozen=True, slots=True)
class _LegCost:
    """A leg with what its shares cost: at the quote (price, fee) and when missed (fee)."""

    venue: str
    price: Decimal
    leg: Leg
    fee_at_quote: Decimal
    miss_fee: Decimal
    miss_profile: VenueProfile


def _age_ms(record: DecisionRecord, quote: VenueQuote | None) -> float | None:
    if record.decided_at is None or quote is None:
        return None
    return (record.decided_at - quote.time).total_seconds() * 1000.0


def _expected_cost(
    record: DecisionRecord,
    legs: Sequence[_LegCost],
    profiles: Mapping[str, VenueProfile],
    model: MarketModel,
) -> Decimal:
    """Total expected cost (not per share) of ``legs`` vs the arrival mid."""
    sign = 1 if record.side is Side.BUY else -1
    mid = record.arrival_mid
    total = ZERO
    for item in legs:
        outcome = expected_leg(model, profiles[item.venue], item.leg)
        tick = PENNY if item.price >= 1 else SUB_PENNY
        # Midpoint fills cost only the fee; the rest cost the displayed price and the fee.
        total += _dec(outcome.midpoint) * item.fee_at_quote
        total += _dec(outcome.at_quote) * (sign * (item.price - mid) + item.fee_at_quote)
        miss = sign * (item.price - mid) + tick * (1 + _dec(outcome.extra_ticks)) + item.miss_fee
        total += _dec(outcome.missed) * miss
    return total


def _dec(value: float) -> Decimal:
    return Decimal(repr(round(value, 9)))


def _far(quote: VenueQuote, is_buy: bool) -> tuple[Decimal | None, int]:
    return (quote.ask_price, quote.ask_size) if is_buy else (quote.bid_price, quote.bid_size)


def model_counterfactual_cost(
    record: DecisionRecord,
    venue: str,
    quantity: int,
    profiles: Mapping[str, VenueProfile],
    model: MarketModel,
) -> Decimal | None:
    """Expected cost per share of sending ``quantity`` to ``venue`` as one taking order, under
    the market model, from the snapshot; None if it showed nothing on the side the order takes.

    The venue trades nothing through a better displayed quote (Reg NMS Rule 611): it routes the
    order out to those first (after its own latency and access delay, plus ``route_out_us`` per
    hop, at its routed fee), waits for them, executes against its own quote, then routes the rest
    out to the next-best quotes. Every leg meets midpoint liquidity, fades and misses like a
    router's child, and a leg that reaches its venue after another leg of the order printed is
    exposed to the print (``market_model``).
    """
    is_buy = record.side is Side.BUY
    sign = 1 if is_buy else -1
    own = next((q for q in record.snapshot if q.venue == venue), None)
    home = profiles.get(venue)
    if own is None or home is None:
        return None
    price, size = _far(own, is_buy)
    if price is None or size <= 0:
        return None
    levels: list[tuple[Decimal, int, VenueQuote]] = []
    for q in record.snapshot:
        level_price, level_size = _far(q, is_buy)
        if q.venue != venue and q.venue in profiles and level_price is not None and level_size > 0:
            levels.append((level_price, level_size, q))
    levels.sort(key=lambda level: sign * level[0])
    better = [level for level in levels if sign * (level[0] - price) < 0]
    routed_fee = home.fees.routed_fee_per_share
    home_tail = model.tail_us(home)
    # Time the order reaches the venue's matching engine (its own access delay included).
    at_home = float(home.latency_typical_us + home.access_delay_us)
    legs: list[_LegCost] = []
    first_print: float | None = None
    remaining = quantity
    last = price

    def route_out(out: Sequence[tuple[Decimal, int, VenueQuote]], start: float) -> float:
        """Route to ``out`` from the venue at ``start``; return when the last response is back."""
        nonlocal remaining, last, first_print
        back = start
        for level_price, level_size, quote in out:
            if not remaining:
                break
            take = min(remaining, level_size)
            dest = profiles[quote.venue]
            exposure = start + model.route_out_us + dest.latency_typical_us
            reactive = first_print is not None and exposure > first_print + model.reaction_us
            legs.append(
                _LegCost(
                    quote.venue,
                    level_price,
                    Leg(
                        take,
                        level_size,
                        exposure,
                        (home_tail, model.tail_us(dest)),
                        reactive,
                        _age_ms(record, quote),
                    ),
                    routed_fee,
                    routed_fee,
                    home,
                )
            )
            remaining -= take
            last = level_price
            ready = exposure + dest.access_delay_us
            back = max(back, ready + dest.latency_typical_us)
        return back

    start = at_home
    if better:
        back = route_out(better, at_home)
        first_print = min(leg.leg.exposure_us + profiles[leg.venue].access_delay_us for leg in legs)
        start = back
    if remaining:
        take = min(remaining, size)
        exposure = start - home.access_delay_us
        reactive = first_print is not None and exposure > first_print + model.reaction_us
        legs.append(
            _LegCost(
                venue,
                price,
                Leg(take, size, exposure, (home_tail,), reactive, _age_ms(record, own)),
                home.fees.take_fee(price),
                routed_fee,
                home,
            )
        )
        remaining -= take
        first_print = start if first_print is None else min(first_print, start)
        route_out(levels[len(better) :], start)
    total = _expected_cost(record, legs, profiles, model)
    if remaining:  # beyond the displayed book: one tick past the last level, routed out
        tick = PENNY if last >= 1 else SUB_PENNY
        total += (sign * (last + sign * tick - record.arrival_mid) + routed_fee) * remaining
    return total / quantity


def model_choice_cost(
    record: DecisionRecord,
    fills: Sequence[FillRecord],
    profiles: Mapping[str, VenueProfile],
    model: MarketModel,
) -> Decimal:
    """Expected cost per share of the decision's own route under the market model: its taking
    children sent together, costed like the counterfactuals; posted and auction fills as they
    came (they are costed the same way at every venue)."""
    is_buy = record.side is Side.BUY
    sign = 1 if is_buy else -1
    mid = record.arrival_mid
    quotes = {q.venue: q for q in record.snapshot}
    shares = sum(f.quantity for f in fills)
    total = sum(
        (
            (sign * (f.price - mid) + f.fee_per_share) * f.quantity
            for f in fills
            if f.liquidity in (Liquidity.ADDED, Liquidity.AUCTION)
        ),
        ZERO,
    )
    takes = [
        c for c in record.children if c.role is ChildRole.TAKE and c.venue in profiles
    ] or _takes_from_fills(record, fills, profiles)
    priced = [c for c in takes if c.limit_price is not None]
    timing = spray_timing(model, [profiles[c.venue] for c in priced])
    legs: list[_LegCost] = []
    for child, (exposure, reactive) in zip(priced, timing, strict=True):
        assert child.limit_price is not None
        profile = profiles[child.venue]
        quote = quotes.get(child.venue)
        shown = 0
        if quote is not None and _far(quote, is_buy)[0] == child.limit_price:
            shown = _far(quote, is_buy)[1]
        legs.append(
            _LegCost(
                child.venue,
                child.limit_price,
                Leg(
                    child.quantity,
                    shown,
                    exposure,
                    (model.tail_us(profile),),
                    reactive,
                    _age_ms(record, quote),
                ),
                profile.fees.take_fee(child.limit_price),
                profile.fees.routed_fee_per_share,
                profile,
            )
        )
    total += _expected_cost(record, legs, profiles, model)
    for child in takes:
        if child.limit_price is None:  # a market remainder: one tick past the far side, routed
            far = _best_far(record)
            if far is not None:
                tick = PENNY if far >= 1 else SUB_PENNY
                fee = profiles[child.venue].fees.routed_fee_per_share
                total += (sign * (far + sign * tick - mid) + fee) * child.quantity
    return total / shares if shares else ZERO


def _best_far(record: DecisionRecord) -> Decimal | None:
    is_buy = record.side is Side.BUY
    prices = [p for q in record.snapshot if (p := _far(q, is_buy)[0]) is not None]
    if not prices:
        return None
    return min(prices) if is_buy else max(prices)


def _takes_from_fills(
    record: DecisionRecord, fills: Sequence[FillRecord], profiles: Mapping[str, VenueProfile]
) -> list[ChildOrder]:
    """Without stored children: one child per venue with taking fills, at its displayed price."""
    is_buy = record.side is Side.BUY
    quantities: dict[str, int] = {}
    for fill in fills:
        if fill.liquidity in (Liquidity.REMOVED, Liquidity.ROUTED) and fill.venue in profiles:
            quantities[fill.venue] = quantities.get(fill.venue, 0) + fill.quantity
    children = []
    for venue, quantity in quantities.items():
        quote = next((q for q in record.snapshot if q.venue == venue), None)
        price = _far(quote, is_buy)[0] if quote is not None else None
        children.append(
            ChildOrder(venue, quantity, price, _kind(price), False, ChildRole.TAKE, ZERO)
        )
    return children


def _kind(price: Decimal | None) -> OrderType:
    return OrderType.MARKET if price is None else OrderType.LIMIT


def posted_cost(
    record: DecisionRecord, fills: Sequence[FillRecord], venue_fees: VenueFees
) -> Decimal:
    """Total cost of the decision's posted (ADDED) fills had they rested at another venue: the
    same prices and shares, that venue's make rebate."""
    sign = 1 if record.side is Side.BUY else -1
    mid = record.arrival_mid
    return sum(
        (
            (sign * (f.price - mid) - venue_fees.make_rebate(f.price)) * f.quantity
            for f in fills
            if f.liquidity is Liquidity.ADDED
        ),
        ZERO,
    )


def analyse_decision(
    record: DecisionRecord,
    fills: Sequence[FillRecord],
    fees: Mapping[str, VenueFees],
    fill_rates: Mapping[str, float],
    settings: AnalysisSettings,
    *,
    profiles: Mapping[str, VenueProfile] | None = None,
) -> DecisionCost | None:
    """Return the decision's hindsight costs, or None when it has no fills.

    With ``profiles`` the taken shares are costed under ``settings.market`` (expected costs, the
    decision's own route included); without, at the hindsight ``fill_rates``.
    """
    filled, realized = realized_cost(record, fills)
    if filled == 0:
        return None
    # Taken shares go to each venue as a taking order; posted shares rest there at the same
    # price (a resting order is compared with resting orders, not with crossing the spread);
    # auction fills cost the same everywhere (only the listing exchange runs the auction).
    posted = sum(f.quantity for f in fills if f.liquidity is Liquidity.ADDED)
    auction = [f for f in fills if f.liquidity is Liquidity.AUCTION]
    _, auction_cost = realized_cost(record, auction)
    fixed = auction_cost * sum(f.quantity for f in auction)
    taken = filled - posted - sum(f.quantity for f in auction)
    counterfactual: dict[str, Decimal] = {}
    for venue, venue_fees in fees.items():
        total = fixed + posted_cost(record, fills, venue_fees)
        if taken:
            if profiles is None:
                cost = counterfactual_cost(record, venue, taken, fees, fill_rates)
            elif venue in profiles:
                cost = model_counterfactual_cost(record, venue, taken, profiles, settings.market)
            else:
                cost = None
            if cost is None:
                continue
            total += cost * taken
        counterfactual[venue] = total / filled
    others = {v: c for v, c in counterfactual.items() if v != record.venue}
    if profiles is None:
        chosen = choice_cost(record, fills, fees, fill_rates)
    else:
        chosen = model_choice_cost(record, fills, profiles, settings.market)
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
        chosen,
    )


def routing_report(
    records: Iterable[DecisionRecord],
    fills: Iterable[FillRecord],
    fees: Mapping[str, VenueFees],
    settings: AnalysisSettings | None = None,
    *,
    profiles: Mapping[str, VenueProfile] | None = None,
) -> RoutingReport:
    """Analyse every decision linked to fills (by decision id) into a report; with the venue
    ``profiles``, under the market model (``analyse_decision``)."""
    settings = settings or AnalysisSettings()
    count, costs = decision_costs(records, fills, fees, settings, profiles=profiles)
    return report_of(count, costs, settings)


def decision_costs(
    records: Iterable[DecisionRecord],
    fills: Iterable[FillRecord],
    fees: Mapping[str, VenueFees],
    settings: AnalysisSettings,
    *,
    profiles: Mapping[str, VenueProfile] | None = None,
) -> tuple[int, list[DecisionCost]]:
    """Return the number of decisions and the hindsight costs of those with fills."""
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
            cost = analyse_decision(record, linked, fees, rates, settings, profiles=profiles)
            if cost is not None:
                costs.append(cost)
    return count, costs


def hindsight_best_cost(costs: Sequence[DecisionCost]) -> Decimal:
    """Cost per share of an oracle that took, for each decision, the cheapest of its own route
    and sending it all to any one venue: the most venue choice could have saved."""
    shares = sum(c.filled for c in costs)

    def best(c: DecisionCost) -> Decimal:
        own = [] if c.chosen_cost_per_share is None else [c.chosen_cost_per_share]
        return min([*c.counterfactual.values(), *own], default=ZERO)

    return _weighted(costs, shares, best)


def report_of(
    count: int, costs: Sequence[DecisionCost], settings: AnalysisSettings
) -> RoutingReport:
    """Aggregate per-decision costs (``decision_costs``) into a report."""
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
