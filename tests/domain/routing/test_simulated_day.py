"""A simulated day through the router: fills linked to decisions, then hindsight analysis."""

from __future__ import annotations

from gateway.domain.venue_simulator import SimulationSettings, simulate_day

from .market import default_venues


def test_simulated_day_then_accuracy_slippage_and_savings_computed() -> None:
    day = simulate_day(default_venues(), SimulationSettings(orders=2_000, symbols=50))
    report = day.report
    assert report.decisions == len(day.decisions) == 2_000 - sum(day.refusals.values())
    assert report.decisions_with_fills > 0.9 * report.decisions
    decision_ids = {d.decision_id for d in day.decisions}
    assert all(f.decision_id in decision_ids for f in day.fills)
    assert 0.0 <= report.accuracy <= 1.0
    assert report.accuracy > 0.9
    assert report.slippage_reduction_vs_listing_pct > 0
    assert report.venues and sum(v.decisions for v in report.venues) == report.decisions_with_fills
    # The scheduled NASDAQ outage trips the breaker: some decisions name their fallback.
    assert day.fallbacks > 0


def test_same_seed_then_same_day() -> None:
    settings = SimulationSettings(orders=300, symbols=10, seed=7)
    first = simulate_day(default_venues(), settings).report
    second = simulate_day(default_venues(), settings).report
    assert first == second
