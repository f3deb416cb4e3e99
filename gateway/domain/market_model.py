"""How a taking order fares at a venue: the market model shared by simulator and hindsight.

The venue simulator draws outcomes from this model and the hindsight analysis takes their
expectation, from the same snapshot, with the same parameters: a counterfactual route faces
exactly the mechanics the router's route faced. Every per-venue number comes from the venue's
profile (latency, tail latency, access delay, liquidity score, capabilities); the parameters below
are market-wide, never per venue.

A taking leg sends ``quantity`` shares to one venue at a displayed ``price`` where the snapshot
showed ``shown`` shares. On arrival:

1. Hidden midpoint liquidity (venues with the midpoint-peg capability): with probability
   ``midpoint_presence x liquidity_score`` non-displayed midpoint orders rest there; their size
   in round lots is geometric with mean ``midpoint_mean_lots``. They execute first, at the
   arrival mid, at the venue's take fee (Rule 612 permits a midpoint execution in half a tick).
2. Quote fade while the leg is in flight. The quote is exposed from the moment the snapshot saw
   it until the leg reaches the matching engine: the leg's ``exposure_us`` (typical latency of
   every hop, the snapshot's own data path included, as ``latency_typical_us`` is a round trip)
   plus an exponential tail per hop with mean ``tail_share x (tail - typical)``. A venue's own
   access delay is NOT exposure: a speed bump delays every inbound message, the competing
   taker's order and the maker's cancel as much as ours, so the race for the quote is unchanged
   (IEX: "a 350-microsecond delay on all orders and other messages entering the exchange").
   Two Poisson events can take the quote first:

   - a competing taker, rate ``take_rate_per_ms x liquidity_score`` (taking flow follows the
     displayed liquidity), whose size is exponential with mean ``mean_take_shares``; it depletes
     the shown size, so a leg that needs all of a small quote misses more than one that needs
     part of a deep one;
   - a price move (the quote crumbles), rate ``move_rate_per_ms``, symbol-wide: the whole quote
     is gone.

   Both rates are multiplied by ``1 + flicker_boost x exp(-age / flicker_ms)``: a quote that
   has just changed is the likeliest to change again (fleeting orders; Reg NMS Rule 611 even
   exempts quotes that flickered within the last second), a long-standing quote the least.
3. Print-triggered fade (latency arbitrage). Once one leg of an order prints, fast traders see
   the trade and pull or take the same-side quotes elsewhere; a later leg whose exposure exceeds
   the first print's time plus ``reaction_us`` loses its displayed quote with probability
   ``reaction_fade``. Simultaneous child orders (the router's sweep) are exposed only when one
   venue is much slower than the first to print; an exchange that routes an order out after
   executing part of it (the listing exchange under Rule 611) always is. The first print counts
   its venue's access delay while the later leg's exposure does not: a speed bump also holds
   back the reaction, so a bumped venue's quote is the safer one.
4. Miss and re-route. Shares that found neither midpoint liquidity nor the displayed quote are
   routed out by the venue one tick worse at its routed fee; the re-route costs the venue's
   round trip, its access delay and ``route_out_us``, during which the price moves one further
   tick against the order with probability ``1 - exp(-move_rate x that time)``. This is where a
   speed bump costs a taker something: only on the shares it misses.

The parameters are illustrative, chosen so that a fast, deep venue fills a small order at its
displayed quote ~95-97% of the time and hidden midpoint liquidity is a minority of the volume;
they are settings, not a forecast.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from gateway.domain.venues import VenueProfile
from gateway.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class MarketModel:
    """Market-wide parameters of the model (see the module docstring).

    Attributes:
        take_rate_per_ms: competing takers per millisecond at a venue with liquidity score 1.
        mean_take_shares: mean size of a competing taker.
        move_rate_per_ms: price moves per millisecond (every venue's quote at the touch goes).
        tail_share: mean extra latency of a hop as a share of (tail - typical) latency.
        flicker_boost: extra fade hazard of a quote that has just changed.
        flicker_ms: time scale over which that extra hazard decays with the quote's age.
        reaction_us: time for a fast trader to act on another venue after a print.
        reaction_fade: chance that a leg exposed to a print loses its displayed quote.
        route_out_us: an exchange's outbound routing overhead (routing broker) per hop.
        midpoint_presence: chance of resting midpoint liquidity at a fully liquid venue.
        midpoint_mean_lots: mean size of that liquidity in round lots.
        inverted_queue_factor: queue length multiplier at an inverted venue (makers pay there
            to be first in line for the takers it pays, so more of them wait).
    """

    take_rate_per_ms: float = 0.6
    mean_take_shares: float = 300.0
    move_rate_per_ms: float = 0.25
    tail_share: float = 0.25
    flicker_boost: float = 1.0
    flicker_ms: float = 50.0
    reaction_us: float = 20.0
    reaction_fade: float = 0.5
    route_out_us: float = 100.0
    midpoint_presence: float = 0.15
    midpoint_mean_lots: float = 2.0
    inverted_queue_factor: float = 2.0

    def __post_init__(self) -> None:
        problems = [
            f"market model {name}: must be a finite number >= 0, not {value}"
            for name in self.__dataclass_fields__
            if not (math.isfinite(value := getattr(self, name)) and value >= 0)
        ]
        for name in ("reaction_fade", "midpoint_presence", "tail_share"):
            if getattr(self, name) > 1:
                problems.append(f"market model {name}: must be at most 1")
        if self.midpoint_mean_lots < 1:
            problems.append("market model midpoint_mean_lots: must be at least 1")
        if problems:
            raise ConfigurationError(problems)

    def hazards_per_us(self, profile: VenueProfile, age_ms: float | None) -> tuple[float, float]:
        """Return (competing take, price move) event rates per microsecond at ``profile``."""
        boost = 1.0
        if age_ms is not None and self.flicker_ms > 0:
            boost += self.flicker_boost * math.exp(-max(age_ms, 0.0) / self.flicker_ms)
        take = self.take_rate_per_ms * profile.liquidity_score * boost / 1000.0
        move = self.move_rate_per_ms * boost / 1000.0
        return take, move

    def tail_us(self, profile: VenueProfile) -> float:
        """Mean exponential tail added to a hop to ``profile``."""
        return self.tail_share * max(0, profile.latency_tail_us - profile.latency_typical_us)

    def midpoint_probability(self, profile: VenueProfile) -> float:
        """Chance that midpoint liquidity rests at ``profile`` when a leg arrives."""
        if not profile.capabilities.midpoint_peg:
            return 0.0
        return self.midpoint_presence * profile.liquidity_score

    def extra_tick_probability(self, profile: VenueProfile) -> float:
        """Chance that the price moves one more tick while ``profile`` re-routes a miss."""
        # From the snapshot to the re-routed shares' departure: the venue's access delay counts
        # here (the miss is only known once the order is through it).
        window = profile.latency_typical_us + profile.access_delay_us + self.route_out_us
        return 1.0 - math.exp(-self.move_rate_per_ms / 1000.0 * window)


@dataclass(frozen=True, slots=True)
class Leg:
    """One taking leg of a route.

    Attributes:
        quantity: shares sent.
        shown: displayed shares at the leg's price at the venue in the snapshot (0: none).
        exposure_us: fixed time the quote is exposed before the leg arrives (access delays of
            the destination excluded).
        tails_us: mean exponential tail of each hop on the way.
        reactive: an earlier leg of the same order printed more than ``reaction_us`` before.
        age_ms: the quote's age at decision time, None when unknown.
    """

    quantity: int
    shown: int
    exposure_us: float
    tails_us: tuple[float, ...]
    reactive: bool
    age_ms: float | None


@dataclass(frozen=True, slots=True)
class LegOutcome:
    """Shares of a leg filled at the midpoint, at the displayed quote, and missed (re-routed);
    ``extra_ticks`` is the number of further ticks the re-route paid (expected: a fraction)."""

    midpoint: float
    at_quote: float
    missed: float
    extra_ticks: float


def _midpoint_distribution(
    model: MarketModel, profile: VenueProfile, quantity: int
) -> list[tuple[float, int]]:
    """(probability, shares) of the midpoint liquidity a leg of ``quantity`` shares meets."""
    p = model.midpoint_probability(profile)
    lots = quantity // 100
    if p <= 0 or lots == 0:
        return [(1.0, 0)]
    # Geometric number of lots >= 1 with the given mean: P(k) = (1 - r) r^(k - 1).
    r = 1.0 - 1.0 / max(model.midpoint_mean_lots, 1.0)
    out = [(1.0 - p, 0)]
    tail = p  # P(k >= current k)
    k = 1
    while k < lots and tail > 1e-12:
        out.append((tail * (1.0 - r), 100 * k))
        tail *= r
        k += 1
    out.append((tail, 100 * k))  # k or more lots: the rest (the whole leg once k == lots)
    return out


def _survival(model: MarketModel, take: float, move: float, leg: Leg) -> float:
    """P(no competing event before arrival) = E[exp(-rate x exposure)] with exponential tails."""
    rate = take + move
    survival = math.exp(-rate * leg.exposure_us)
    for tail in leg.tails_us:
        survival /= 1.0 + rate * tail
    return survival


def expected_displayed_fill(need: int, shown: int, mean_take: float) -> float:
    """E[min(need, max(0, shown - X))] for a competing take X ~ Exponential(mean_take)."""
    if need <= 0 or shown <= 0:
        return 0.0
    need = min(need, shown)
    if mean_take <= 0:
        return float(need)
    return need - mean_take * (math.exp(-(shown - need) / mean_take) - math.exp(-shown / mean_take))


def expected_leg(model: MarketModel, profile: VenueProfile, leg: Leg) -> LegOutcome:
    """The expected outcome of ``leg`` at ``profile`` under the model."""
    take, move = model.hazards_per_us(profile, leg.age_ms)
    survival = _survival(model, take, move, leg)
    event = 1.0 - survival
    take_share = take / (take + move) if take + move > 0 else 0.0
    keep = 1.0 - model.reaction_fade if leg.reactive else 1.0
    midpoint = 0.0
    at_quote = 0.0
    for probability, mid_shares in _midpoint_distribution(model, profile, leg.quantity):
        need = min(leg.quantity - mid_shares, leg.shown)
        if need <= 0:
            midpoint += probability * mid_shares
            continue
        depleted = expected_displayed_fill(need, leg.shown, model.mean_take_shares)
        displayed = keep * (survival * need + event * take_share * depleted)
        midpoint += probability * mid_shares
        at_quote += probability * displayed
    missed = leg.quantity - midpoint - at_quote
    return LegOutcome(midpoint, at_quote, missed, model.extra_tick_probability(profile))


def draw_leg(
    rng: random.Random, model: MarketModel, profile: VenueProfile, leg: Leg
) -> tuple[int, int, int, int, float]:
    """Draw an outcome of ``leg``: (midpoint, at quote, missed shares, extra ticks of the
    re-route, the drawn in-flight time in microseconds). Its mean is ``expected_leg``."""
    mid_shares = 0
    p_mid = model.midpoint_probability(profile)
    if leg.quantity >= 100 and p_mid > 0 and rng.random() < p_mid:
        r = 1.0 - 1.0 / max(model.midpoint_mean_lots, 1.0)
        lots = 1
        while lots < leg.quantity // 100 and rng.random() < r:
            lots += 1
        mid_shares = 100 * lots
    need = min(leg.quantity - mid_shares, leg.shown)
    exposure = leg.exposure_us + sum(rng.expovariate(1.0 / t) for t in leg.tails_us if t > 0)
    at_quote = 0
    if need > 0:
        take, move = model.hazards_per_us(profile, leg.age_ms)
        pulled = leg.reactive and rng.random() < model.reaction_fade
        if not pulled:
            if rng.random() >= math.exp(-(take + move) * exposure):
                if rng.random() < take / (take + move):
                    left = leg.shown - rng.expovariate(1.0 / model.mean_take_shares)
                    at_quote = max(0, min(need, int(left)))
            else:
                at_quote = need
    missed = leg.quantity - mid_shares - at_quote
    extra = 1 if missed and rng.random() < model.extra_tick_probability(profile) else 0
    return mid_shares, at_quote, missed, extra, exposure


def spray_timing(model: MarketModel, profiles: list[VenueProfile]) -> list[tuple[float, bool]]:
    """Exposure and print-triggered flag of child orders sent together, one per profile.

    Every child leaves at once; the first to print is the one with the least typical latency
    plus access delay, and a child whose own exposure (its access delay excluded) exceeds that
    by more than ``reaction_us`` is exposed to the reaction.
    """
    if not profiles:
        return []
    first = min(p.latency_typical_us + p.access_delay_us for p in profiles)
    return [
        (float(p.latency_typical_us), p.latency_typical_us > first + model.reaction_us)
        for p in profiles
    ]
