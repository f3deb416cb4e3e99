"""Failover breaker: trips on rejects, timeouts and latency breaches; probation brings it back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.domain.venue_health import HealthSettings, VenueEvent, VenueEventKind, VenueHealth
from gateway.domain.venues import VenueStatus
from gateway.errors import ConfigurationError

from .market import NOW, default_venues

SETTINGS = HealthSettings(
    reject_threshold=3,
    timeout_threshold=2,
    latency_breach_threshold=2,
    window=timedelta(seconds=10),
    trip_duration=timedelta(seconds=30),
    probation=timedelta(seconds=60),
)


def _health() -> VenueHealth:
    return VenueHealth(default_venues(), SETTINGS)


def test_rejects_reach_threshold_then_venue_tripped_with_reason() -> None:
    health = _health()
    assert health.record(VenueEvent("NYSE", VenueEventKind.REJECT, NOW)) is None
    health.record(VenueEvent("NYSE", VenueEventKind.REJECT, NOW + timedelta(seconds=1)))
    state = health.record(VenueEvent("NYSE", VenueEventKind.REJECT, NOW + timedelta(seconds=2)))
    assert state is not None
    assert state.status is VenueStatus.TRIPPED
    assert state.reason.startswith("REJECTS: 3")
    assert set(health.unavailable(NOW + timedelta(seconds=3))) == {"NYSE"}


def test_rejects_spread_beyond_window_then_not_tripped() -> None:
    health = _health()
    for second in (0, 11, 22):
        health.record(VenueEvent("NYSE", VenueEventKind.REJECT, NOW + timedelta(seconds=second)))
    assert health.unavailable(NOW + timedelta(seconds=23)) == {}


def test_timeouts_then_tripped() -> None:
    health = _health()
    health.record(VenueEvent("IEX", VenueEventKind.TIMEOUT, NOW))
    state = health.record(VenueEvent("IEX", VenueEventKind.TIMEOUT, NOW + timedelta(seconds=1)))
    assert state is not None and state.reason.startswith("TIMEOUTS")


def test_latency_over_tail_multiple_then_breach_counts_else_not() -> None:
    health = _health()
    tail = default_venues()["NASDAQ"].latency_tail_us
    health.record(VenueEvent("NASDAQ", VenueEventKind.LATENCY, NOW, latency_us=tail))
    health.record(VenueEvent("NASDAQ", VenueEventKind.LATENCY, NOW, latency_us=tail * 2))
    assert health.unavailable(NOW) == {}
    health.record(VenueEvent("NASDAQ", VenueEventKind.LATENCY, NOW, latency_us=tail * 3))
    state = health.record(VenueEvent("NASDAQ", VenueEventKind.LATENCY, NOW, latency_us=tail * 3))
    assert state is not None and state.reason.startswith("LATENCY_BREACHES")


def test_trip_then_probation_then_up_after_clean_probation() -> None:
    health = _health()
    for second in range(3):
        health.record(VenueEvent("EDGX", VenueEventKind.REJECT, NOW + timedelta(seconds=second)))
    tripped_at = NOW + timedelta(seconds=2)
    assert health.state("EDGX", tripped_at + timedelta(seconds=29)).status is VenueStatus.TRIPPED
    back = tripped_at + timedelta(seconds=30)
    assert health.unavailable(back) == {}
    assert health.state("EDGX", back).status is VenueStatus.PROBATION
    assert health.state("EDGX", back + timedelta(seconds=60)).status is VenueStatus.UP


def test_failure_during_probation_then_tripped_again() -> None:
    health = _health()
    for second in range(3):
        health.record(VenueEvent("EDGX", VenueEventKind.REJECT, NOW + timedelta(seconds=second)))
    probation = NOW + timedelta(seconds=40)
    assert health.state("EDGX", probation).status is VenueStatus.PROBATION
    state = health.record(VenueEvent("EDGX", VenueEventKind.REJECT, probation))
    assert state is not None
    assert state.status is VenueStatus.TRIPPED
    assert state.reason.startswith("FAILED_PROBATION")


def test_acks_and_fills_then_no_effect() -> None:
    health = _health()
    for kind in (VenueEventKind.ACK, VenueEventKind.FILL):
        assert health.record(VenueEvent("NYSE", kind, NOW)) is None
    assert health.state("NYSE", NOW).status is VenueStatus.UP


def test_non_positive_thresholds_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        HealthSettings(reject_threshold=0, window=timedelta(0))
    assert len(caught.value.problems) == 2
