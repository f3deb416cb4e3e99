"""The venue simulator: a day through the router, and each market mechanism in a small scenario."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from gateway.domain.orders import OrderType, Side
from gateway.domain.quotes import QuoteBook
from gateway.domain.routing_analysis import FillRecord, Liquidity, model_choice_cost
from gateway.domain.scoring import SizeTier
from gateway.domain.splitting import ChildOrder, ChildRole
from gateway.domain.venue_simulator import SimulatedVenues, SimulationSettings, simulate_day
from gateway.domain.venues import VenueCapabilities, VenueFees, VenueProfile, VenueSet

from .market import NOW, book, default_venues

ASK = Decimal("100.02")
BID = Decimal("100.00")


@dataclass(frozen=True, slots=True)
class _Routed:
    decision_id: str
    symbol: str
    side: Side
    size_tier: SizeTier
    national_best_bid: Decimal | None
    national_best_offer: Decimal | None
    child_orders: tuple[ChildOrder, ...]


def _take(venue: str, quantity: int = 100, price: Decimal = ASK) -> ChildOrder:
    return ChildOrder(venue, quantity, price, OrderType.LIMIT, False, ChildRole.TAKE, Decimal(0))


def _post(venue: str, quantity: int = 300, price: Decimal = BID) -> ChildOrder:
    return ChildOrder(venue, quantity, price, OrderType.LIMIT, False, ChildRole.POST, Decimal(0))


def _routed(n: int, *children: ChildOrder) -> _Routed:
    return _Routed(f"d{n}", "AAPL", Side.BUY, SizeTier.SMALL, BID, ASK, children)


def _venues(*profiles: VenueProfile) -> VenueSet:
    return VenueSet(profiles)


def _profile(
    name: str,
    latency: int = 50,
    *,
    liquidity: float = 0.8,
    midpoint: bool = False,
    fees: VenueFees | None = None,
) -> VenueProfile:
    base = default_venues()["NASDAQ"]
    return replace(
        base,
        venue=name,
        latency_typical_us=latency,
        latency_tail_us=latency,
        liquidity_score=liquidity,
        capabilities=VenueCapabilities(midpoint_peg=midpoint),
        fees=fees or base.fees,
    )


def _quotes(*venues: str, size: int = 500) -> QuoteBook:
    return book([(v, "100.00", size, "100.02", size) for v in venues])


def _shares(fills: Sequence[FillRecord], liquidity: Liquidity) -> Counter[str]:
    out: Counter[str] = Counter()
    for fill in fills:
        if fill.liquidity is liquidity:
            out[fill.venue] += fill.quantity
    return out


def test_simulated_day_then_fills_linked_and_realised_cost_matches_the_model() -> None:
    venues = default_venues()
    day = simulate_day(venues, SimulationSettings(orders=2_000, symbols=50))
    report = day.report
    assert report.decisions == len(day.decisions) == 2_000 - sum(day.refusals.values())
    assert report.decisions_with_fills > 0.9 * report.decisions
    decision_ids = {d.decision_id for d in day.decisions}
    assert all(f.decision_id in decision_ids for f in day.fills)
    assert 0.0 <= report.accuracy <= 1.0
    assert report.venues and sum(v.decisions for v in report.venues) == report.decisions_with_fills
    # The scheduled NASDAQ outage trips the breaker: some decisions name their fallback.
    assert day.fallbacks > 0
    # Every mechanism shows up: midpoint fills, misses re-routed, posted fills.
    assert any(f.price % Decimal("0.01") for f in day.fills if f.liquidity is Liquidity.REMOVED)
    assert any(f.liquidity is Liquidity.ROUTED for f in day.fills)
    assert any(f.liquidity is Liquidity.ADDED for f in day.fills)
    # The simulator draws from the model the analysis takes the expectation of: over the day the
    # router's realised cost is its expected cost, up to the luck of the draws.
    profiles = {p.venue: p for p in venues}
    by_decision: dict[str, list[FillRecord]] = {}
    for fill in day.fills:
        by_decision.setdefault(fill.decision_id, []).append(fill)
    records = {d.decision_id: d for d in day.decisions}
    shares = sum(c.filled for c in day.costs)
    expected = sum(
        (
            model_choice_cost(
                records[c.decision_id],
                by_decision[c.decision_id],
                profiles,
                SimulationSettings().market,
            )
            * c.filled
            for c in day.costs
        ),
        Decimal(0),
    )
    assert abs(expected / shares - report.realized_cost_per_share) < Decimal("0.0002")


def test_same_seed_then_same_day() -> None:
    settings = SimulationSettings(orders=300, symbols=10, seed=7)
    first = simulate_day(default_venues(), settings)
    second = simulate_day(default_venues(), settings)
    assert first.report == second.report
    # Decision ids carry a per-router random prefix; everything else is the same.
    assert [replace(f, decision_id="") for f in first.fills] == [
        replace(f, decision_id="") for f in second.fills
    ]


def test_slow_venue_then_its_quote_fades_more_often_than_a_fast_ones() -> None:
    venues = _venues(_profile("FAST", 40), _profile("SLOW", 400))
    simulated = SimulatedVenues(venues, SimulationSettings(seed=3))
    fills: list[FillRecord] = []
    for n in range(1_000):
        fills += simulated.execute(_routed(n, _take("FAST")), _quotes("FAST", "SLOW"), NOW)
        fills += simulated.execute(_routed(n, _take("SLOW")), _quotes("FAST", "SLOW"), NOW)
    routed = _shares(fills, Liquidity.ROUTED)
    assert routed["SLOW"] > 3 * routed["FAST"] > 0


def test_sweep_then_the_much_slower_child_loses_its_quote_more_than_when_sent_alone() -> None:
    venues = _venues(_profile("FIRST", 45), _profile("LATE", 90))
    alone = SimulatedVenues(venues, SimulationSettings(seed=4))
    together = SimulatedVenues(venues, SimulationSettings(seed=4))
    quotes = _quotes("FIRST", "LATE")
    solo: list[FillRecord] = []
    swept: list[FillRecord] = []
    for n in range(1_000):
        solo += alone.execute(_routed(n, _take("LATE")), quotes, NOW)
        swept += together.execute(_routed(n, _take("FIRST"), _take("LATE")), quotes, NOW)
    assert _shares(swept, Liquidity.ROUTED)["LATE"] > 2 * _shares(solo, Liquidity.ROUTED)["LATE"]


def test_midpoint_venue_then_some_shares_fill_at_the_mid_and_never_elsewhere() -> None:
    venues = _venues(_profile("MID", midpoint=True), _profile("LIT"))
    simulated = SimulatedVenues(venues, SimulationSettings(seed=5))
    fills: list[FillRecord] = []
    for n in range(500):
        for venue in ("MID", "LIT"):
            fills += simulated.execute(_routed(n, _take(venue, 300)), _quotes("MID", "LIT"), NOW)
    at_mid = Counter(f.venue for f in fills if f.price == Decimal("100.01"))
    assert at_mid["MID"] > 0
    assert at_mid["LIT"] == 0


def test_inverted_venue_then_a_posted_order_fills_less_behind_its_longer_queue() -> None:
    inverted = VenueFees(Decimal("-0.0002"), Decimal("-0.0003"))
    venues = _venues(_profile("MAKER"), _profile("INVERTED", fees=inverted))
    simulated = SimulatedVenues(venues, SimulationSettings(seed=6))
    quotes = _quotes("MAKER", "INVERTED", size=300)
    fills: list[FillRecord] = []
    for n in range(1_000):
        fills += simulated.execute(_routed(n, _post("MAKER")), quotes, NOW)
        fills += simulated.execute(_routed(n, _post("INVERTED")), quotes, NOW)
    added = _shares(fills, Liquidity.ADDED)
    assert added["MAKER"] > added["INVERTED"]
