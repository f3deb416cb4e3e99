"""Online fill probability: starts at the prior, learns from outcomes, decays back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.domain.fill_probability import FillProbabilityModel, FillProbabilitySettings
from gateway.domain.scoring import SizeTier

from .market import NOW, default_venues

SETTINGS = FillProbabilitySettings(
    half_life=timedelta(minutes=10),
    prior_weight=1_000,
    symbol_buckets={"AAPL": "MEGA", "MSFT": "MEGA"},
)


def _model() -> FillProbabilityModel:
    return FillProbabilityModel(default_venues(), SETTINGS)


def test_no_events_then_profile_prior_scaled_by_tier() -> None:
    model = _model()
    prior = default_venues()["NASDAQ"].fill_probability_prior
    assert model.probability("NASDAQ", "AAPL", SizeTier.SMALL) == pytest.approx(prior)
    assert model.probability("NASDAQ", "AAPL", SizeTier.BLOCK) == pytest.approx(prior * 0.7)


def test_misses_then_estimate_falls_and_bucket_shares_it() -> None:
    model = _model()
    before = model.probability("NYSE", "AAPL", SizeTier.SMALL)
    for i in range(20):
        model.record(
            "NYSE", "AAPL", SizeTier.SMALL, offered=200, filled=0, at=NOW + timedelta(seconds=i)
        )
    after = model.probability("NYSE", "AAPL", SizeTier.SMALL)
    assert after < before / 2
    assert model.probability("NYSE", "MSFT", SizeTier.SMALL) == after  # same bucket
    assert model.probability("NYSE", "IBM", SizeTier.SMALL) == pytest.approx(before)
    assert model.probability("NYSE", "AAPL", SizeTier.LARGE) < before  # tier prior only


def test_old_evidence_then_decays_towards_prior() -> None:
    model = _model()
    prior = model.probability("IEX", "AAPL", SizeTier.SMALL)
    for i in range(50):
        model.record(
            "IEX", "AAPL", SizeTier.SMALL, offered=100, filled=100, at=NOW + timedelta(seconds=i)
        )
    learned = model.probability("IEX", "AAPL", SizeTier.SMALL)
    assert learned > prior + 0.1
    later = NOW + timedelta(hours=2)
    assert model.estimate_at("IEX", "AAPL", SizeTier.SMALL, later) == pytest.approx(prior, abs=0.01)
    # A new event after the gap: the old fills count for little.
    updated = model.record("IEX", "AAPL", SizeTier.SMALL, offered=100, filled=0, at=later)
    assert updated < prior


def test_half_life_then_evidence_weighs_half() -> None:
    model = FillProbabilityModel(default_venues(), FillProbabilitySettings(prior_weight=1e-9))
    model.record("NASDAQ", "X", SizeTier.SMALL, offered=100, filled=100, at=NOW)
    value = model.record(
        "NASDAQ", "X", SizeTier.SMALL, offered=100, filled=0, at=NOW + timedelta(minutes=30)
    )
    assert value == pytest.approx(50 / 150)


def test_bad_outcome_then_value_error() -> None:
    with pytest.raises(ValueError, match="filled"):
        _model().record("NASDAQ", "X", SizeTier.SMALL, offered=100, filled=101, at=NOW)
