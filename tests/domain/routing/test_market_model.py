"""The market model: each mechanism observable on its own, and draws that average to the model."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from gateway.domain.market_model import (
    Leg,
    MarketModel,
    draw_leg,
    expected_displayed_fill,
    expected_leg,
    spray_timing,
)
from gateway.domain.venues import VenueCapabilities, VenueProfile
from gateway.errors import ConfigurationError

from .market import default_venues

MODEL = MarketModel()
BASE = default_venues()["NASDAQ"]


def _profile(
    name: str = "X",
    latency: int = 50,
    *,
    delay: int = 0,
    liquidity: float = 0.8,
    midpoint: bool = False,
) -> VenueProfile:
    return replace(
        BASE,
        venue=name,
        latency_typical_us=latency,
        latency_tail_us=latency,  # no tail: only the typical latency counts
        access_delay_us=delay,
        liquidity_score=liquidity,
        capabilities=VenueCapabilities(midpoint_peg=midpoint),
    )


def _leg(
    profile: VenueProfile,
    quantity: int = 100,
    shown: int = 500,
    *,
    reactive: bool = False,
    age_ms: float | None = 100.0,
) -> Leg:
    exposure = float(profile.latency_typical_us)
    return Leg(quantity, shown, exposure, (MODEL.tail_us(profile),), reactive, age_ms)


def _at_quote_rate(profile: VenueProfile, leg: Leg) -> float:
    return expected_leg(MODEL, profile, leg).at_quote / leg.quantity


def test_slow_venue_then_its_quote_fades_more_often_than_a_fast_ones() -> None:
    fast, slow = _profile("FAST", 40), _profile("SLOW", 400)
    assert _at_quote_rate(slow, _leg(slow)) < _at_quote_rate(fast, _leg(fast)) < 1.0
    rng = random.Random(5)
    missed = {
        p.venue: sum(draw_leg(rng, MODEL, p, _leg(p))[2] for _ in range(4_000))
        for p in (fast, slow)
    }
    assert missed["SLOW"] > 3 * missed["FAST"] > 0


def test_speed_bump_then_no_more_fades_than_without_but_a_dearer_reroute() -> None:
    plain, bumped = _profile("PLAIN", 60), _profile("BUMPED", 60, delay=350)
    # The bump holds competitors' orders and the maker's cancels as long as ours.
    assert _at_quote_rate(bumped, _leg(bumped)) == _at_quote_rate(plain, _leg(plain))
    # A missed share is re-routed only once through the bump: more time for the price to move.
    assert MODEL.extra_tick_probability(bumped) > MODEL.extra_tick_probability(plain)


def test_children_sent_together_then_only_the_much_slower_unbumped_one_meets_the_reaction() -> None:
    first = _profile("FIRST", 45)
    slow = _profile("SLOW", 70)
    bumped = _profile("BUMPED", 60, delay=350)
    timing = spray_timing(MODEL, [first, slow, bumped])
    assert [reactive for _exposure, reactive in timing] == [False, True, False]
    assert spray_timing(MODEL, [slow]) == [(70.0, False)]  # one child: nothing printed before


def test_reactive_leg_then_loses_its_quote_at_the_reaction_rate() -> None:
    venue = _profile()
    calm = expected_leg(MODEL, venue, _leg(venue)).at_quote
    exposed = expected_leg(MODEL, venue, _leg(venue, reactive=True)).at_quote
    assert exposed == pytest.approx(calm * (1 - MODEL.reaction_fade))


def test_just_changed_quote_then_fades_more_than_a_long_standing_one() -> None:
    venue = _profile()
    fresh = _at_quote_rate(venue, _leg(venue, age_ms=0.0))
    standing = _at_quote_rate(venue, _leg(venue, age_ms=1_000.0))
    assert fresh < standing


def test_order_taking_all_of_a_thin_quote_then_fills_less_than_part_of_a_deep_one() -> None:
    venue = _profile()
    all_of_thin = _at_quote_rate(venue, _leg(venue, quantity=200, shown=200))
    part_of_deep = _at_quote_rate(venue, _leg(venue, quantity=200, shown=2_000))
    assert all_of_thin < part_of_deep
    assert expected_displayed_fill(200, 2_000, 300.0) == pytest.approx(200, abs=1)
    assert expected_displayed_fill(200, 0, 300.0) == 0.0


def test_midpoint_liquidity_then_only_on_midpoint_venues_and_more_where_liquid() -> None:
    none = _profile(midpoint=False)
    thin = _profile(midpoint=True, liquidity=0.3)
    deep = _profile(midpoint=True, liquidity=0.9)
    mids = [expected_leg(MODEL, p, _leg(p, quantity=500)).midpoint for p in (none, thin, deep)]
    assert mids[0] == 0.0 < mids[1] < mids[2]


@pytest.mark.parametrize("reactive", [False, True])
def test_draws_then_average_to_the_expected_outcome(reactive: bool) -> None:
    venue = replace(_profile(midpoint=True, liquidity=0.9), latency_tail_us=250)
    leg = _leg(venue, quantity=400, shown=600, reactive=reactive, age_ms=10.0)
    expected = expected_leg(MODEL, venue, leg)
    rng = random.Random(11)
    n = 40_000
    draws = [draw_leg(rng, MODEL, venue, leg) for _ in range(n)]
    assert sum(d[0] for d in draws) / n == pytest.approx(expected.midpoint, rel=0.05)
    assert sum(d[1] for d in draws) / n == pytest.approx(expected.at_quote, rel=0.02)
    assert sum(d[2] for d in draws) / n == pytest.approx(expected.missed, rel=0.05)
    assert all(d[0] + d[1] + d[2] == leg.quantity for d in draws)


def test_invalid_parameters_then_refused_with_every_problem() -> None:
    with pytest.raises(ConfigurationError) as refused:
        MarketModel(reaction_fade=1.5, take_rate_per_ms=-1.0)
    problems = refused.value.problems
    assert any("reaction_fade" in p for p in problems)
    assert any("take_rate_per_ms" in p for p in problems)
