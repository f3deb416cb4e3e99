"""Venue profiles: shipped defaults, validation, the Rule 610(c) cap, runtime status."""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.access_fees import AccessFeeCapTable, TickRule, TickTable
from gateway.domain.venues import VenueStatus, load_venues, parse_venues
from gateway.errors import ConfigurationError, NotFound

from .market import NOW, VENUES

TRADE_DATE = date(2026, 11, 25)


def _document() -> dict[str, Any]:
    text = (Path(__file__).parents[3] / "gateway" / "data" / "venues.toml").read_text()
    return tomllib.loads(text)


def test_load_defaults_then_six_venues_with_iex_speed_bump() -> None:
    venues = load_venues(trade_date=TRADE_DATE)
    assert tuple(p.venue for p in venues) == VENUES
    assert venues["IEX"].access_delay_us == 350
    assert venues["IEX"].effective_latency_us > venues["NASDAQ"].effective_latency_us
    assert all(p.status is VenueStatus.UP for p in venues)


def test_take_fee_above_cap_then_refused_at_load_with_every_problem() -> None:
    document = _document()
    document["venues"]["NASDAQ"]["fees"]["take_fee_per_share"] = "0.0031"
    document["venues"]["EDGX"]["fees"]["take_fee_rate_below_1"] = "0.004"
    document["venues"]["NYSE"]["latency_typical_us"] = -1
    with pytest.raises(ConfigurationError) as caught:
        parse_venues(document, trade_date=TRADE_DATE, fee_caps=AccessFeeCapTable())
    problems = "\n".join(caught.value.problems)
    assert "venues.NASDAQ.fees.take_fee_per_share: 0.0031 exceeds" in problems
    assert "Rule 610(c)" in problems
    assert "venues.EDGX.fees.take_fee_rate_below_1" in problems
    assert "venues.NYSE.latency_typical_us" in problems
    assert caught.value.reason == "INVALID_CONFIGURATION"


def test_amended_cap_in_force_then_default_fees_refused() -> None:
    caps = AccessFeeCapTable.with_amendment(date(2027, 1, 1))
    load_venues(trade_date=date(2026, 12, 31), fee_caps=caps)
    with pytest.raises(ConfigurationError) as caught:
        load_venues(trade_date=date(2027, 1, 1), fee_caps=caps)
    assert any("0.001 in force on 2027-01-01" in p for p in caught.value.problems)


def test_amendment_postponed_then_2005_cap_applies() -> None:
    cap = AccessFeeCapTable.with_amendment(None).in_force(date(2030, 1, 1))
    assert cap.per_share == Decimal("0.003")
    assert cap.cap_for_price(Decimal("0.50")) == Decimal("0.0015")


def test_unknown_keys_and_bad_status_then_listed() -> None:
    document = _document()
    document["venues"]["IEX"]["speed"] = 1
    document["venues"]["IEX"]["status"] = "TRIPPED"
    document["extra"] = {}
    with pytest.raises(ConfigurationError) as caught:
        parse_venues(document, trade_date=TRADE_DATE, fee_caps=AccessFeeCapTable())
    problems = caught.value.problems
    assert "extra: unknown key" in problems
    assert "venues.IEX.speed: unknown key" in problems
    assert any("venues.IEX.status" in p for p in problems)


def test_set_status_down_then_new_version_and_reason() -> None:
    venues = load_venues(trade_date=TRADE_DATE)
    changed = venues.with_status("NYSE", VenueStatus.DOWN, "session lost", NOW)
    assert changed.version == venues.version + 1
    assert changed["NYSE"].status is VenueStatus.DOWN
    assert changed["NYSE"].status_reason == "session lost"
    assert venues["NYSE"].status is VenueStatus.UP
    with pytest.raises(NotFound):
        venues.with_status("MEMX", VenueStatus.DOWN, "x", NOW)


def test_inverted_venue_then_negative_fees_accepted() -> None:
    document = _document()
    document["venues"]["EDGX"]["fees"]["take_fee_per_share"] = "-0.0002"
    document["venues"]["EDGX"]["fees"]["make_rebate_per_share"] = "-0.0003"
    venues = parse_venues(document, trade_date=TRADE_DATE, fee_caps=AccessFeeCapTable())
    assert venues["EDGX"].fees.take_fee(Decimal("10")) == Decimal("-0.0002")


@pytest.mark.parametrize(
    ("symbol", "price", "on", "tick"),
    [
        ("AAPL", "10.00", date(2026, 11, 25), "0.01"),
        ("AAPL", "0.50", date(2026, 11, 25), "0.0001"),
        ("XYZ", "10.00", date(2028, 1, 1), "0.005"),
        ("XYZ", "10.00", date(2027, 12, 31), "0.01"),
        ("AAPL", "10.00", date(2028, 1, 1), "0.01"),
    ],
)
def test_tick_table_then_dated_per_symbol_increment(
    symbol: str, price: str, on: date, tick: str
) -> None:
    table = TickTable([TickRule(date(2028, 1, 1), Decimal("0.005"), symbol="XYZ")])
    assert table.tick(symbol, Decimal(price), on) == Decimal(tick)
