"""Scoring settings: weights, tiers, time-of-day adjustments."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from gateway.domain.scoring import ScoringSettings, ScoringWeights, SizeTier, SizeTierThresholds
from gateway.errors import ConfigurationError


def test_default_weights_then_spread_latency_fees_fill() -> None:
    assert ScoringWeights().as_tuple() == (0.40, 0.30, 0.20, 0.10)


@pytest.mark.parametrize(
    "weights", [(0.5, 0.3, 0.2, 0.1), (0.4, 0.3, 0.2, 0.0), (1.2, -0.2, 0.0, 0.0)]
)
def test_weights_not_summing_to_one_or_negative_then_rejected(
    weights: tuple[float, float, float, float],
) -> None:
    with pytest.raises(ConfigurationError):
        ScoringWeights(*weights)


@pytest.mark.parametrize(
    ("quantity", "price", "tier"),
    [
        (100, "50", SizeTier.SMALL),
        (600, "10", SizeTier.MEDIUM),
        (300, "100", SizeTier.MEDIUM),  # $30,000 notional
        (2_500, "5", SizeTier.LARGE),
        (1_500, "80", SizeTier.LARGE),  # $120,000 notional
        (10_000, "1", SizeTier.BLOCK),
        (2_100, "100", SizeTier.BLOCK),  # $210,000 notional
    ],
)
def test_size_tier_then_larger_of_shares_and_notional(
    quantity: int, price: str, tier: SizeTier
) -> None:
    assert SizeTierThresholds().tier(quantity, Decimal(price)) is tier


@pytest.mark.parametrize("tier", list(SizeTier))
@pytest.mark.parametrize("minute", [9 * 60 + 31, 12 * 60, 15 * 60 + 50])
def test_effective_weights_then_always_sum_to_one(tier: SizeTier, minute: int) -> None:
    assert math.isclose(sum(ScoringSettings().weights_for(tier, minute)), 1.0)


def test_near_open_then_fill_probability_weighs_more_and_fees_less() -> None:
    settings = ScoringSettings()
    midday = settings.weights_for(SizeTier.SMALL, 12 * 60)
    opening = settings.weights_for(SizeTier.SMALL, 9 * 60 + 35)
    assert midday == pytest.approx((0.40, 0.30, 0.20, 0.10))
    assert opening[3] > midday[3]
    assert opening[2] < midday[2]


def test_block_tier_then_fill_probability_weighs_more_than_for_small() -> None:
    settings = ScoringSettings()
    assert (
        settings.weights_for(SizeTier.BLOCK, 720)[3] > settings.weights_for(SizeTier.SMALL, 720)[3]
    )
    assert settings.tiers[SizeTier.BLOCK].post_remainder_hidden is True
