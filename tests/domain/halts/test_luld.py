"""LULD: worked examples of market rules section 1, band properties, RP updates, limit state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.calendar import EXCHANGE_TZ, Session, TradingCalendar
from gateway.domain.luld import (
    DEFAULT_SETTINGS,
    Bands,
    BandSource,
    LimitState,
    LimitStateTracker,
    LuldSettings,
    ReferencePrice,
    Tier,
    band_width,
    compute_bands,
    doubles_in_closing_period,
    effective_bands,
    in_closing_period,
    pause_ends_at,
    percentage_parameter,
    published_bands,
    reopens_before_close,
)

D = Decimal
T1, T2 = Tier.TIER_1, Tier.TIER_2
REGULAR_DAY = date(2026, 11, 25)
EARLY_CLOSE_DAY = date(2026, 11, 27)  # day after Thanksgiving, 13:00 close in calendar.toml


def _session(day: date) -> Session:
    session = TradingCalendar.default().session(day)
    assert session is not None
    return session


def _et(day: date, hour: int, minute: int = 0, second: float = 0) -> datetime:
    whole = int(second)
    micro = round((second - whole) * 1_000_000)
    return datetime.combine(day, time(hour, minute, whole, micro), tzinfo=EXCHANGE_TZ)


def _bands(lower: str, upper: str, rp: str = "100.00") -> Bands:
    return Bands(D(lower), D(upper), D(rp), D("0.05"), BandSource.COMPUTED)


@dataclass(frozen=True)
class Example:
    """One worked example of market rules section 1 (``rp`` is the RP in effect at ``hm``)."""

    name: str
    tier: Tier
    prior_close: str
    rp: str
    hm: tuple[int, int]
    parameter: str | None
    width: str
    lower: str
    upper: str
    day: date = REGULAR_DAY
    opening: str | None = None  # for the reference-price rows: the RP before the trades
    trades: tuple[str, ...] = ()  # eligible trades at ``hm``, their mean is the row's new mean


# Band rows: the RP is the opening price, in effect at the row's time. Reference-price rows: RP
# 100.00 from 10:59, then trades at 11:00 whose 5-minute mean is the row's "new mean".
WORKED_EXAMPLES = [
    Example("t1-1000", T1, "100.20", "100.00", (10, 0), "0.05", "5", "95.00", "105.00"),
    Example("t1-1540-doubled", T1, "100.20", "100.00", (15, 40), "0.10", "10", "90.00", "110.00"),
    Example("t2-0935-no-open-doubling", T2, "50.00", "50.00", (9, 35), "0.10", "5", "45", "55"),
    Example("t2-above-3-1545-not-doubled", T2, "50.00", "50.00", (15, 45), "0.10", "5", "45", "55"),
    Example("t2-20pct-1100", T2, "2.50", "2.40", (11, 0), "0.20", "0.48", "1.92", "2.88"),
    Example("t2-20pct-1550-doubled", T2, "2.50", "2.40", (15, 50), "0.40", "0.96", "1.44", "3.36"),
    Example("t2-sub-75c-1000", T2, "0.50", "0.40", (10, 0), None, "0.15", "0.25", "0.55"),
    Example("t2-sub-75c-1545-doubled", T2, "0.50", "0.40", (15, 45), None, "0.30", "0.10", "0.70"),
    Example(
        "t2-bracket-from-prior-close", T2, "3.10", "2.80", (10, 0), "0.10", "0.28", "2.52", "3.08"
    ),
    Example(
        "t1-early-close-1240-doubled",
        T1,
        "250.00",
        "250.17",
        (12, 40),
        "0.10",
        "25.017",
        "225.15",
        "275.19",
        day=EARLY_CLOSE_DAY,
    ),
    Example(
        "rp-mean-100.90-no-change",
        T1,
        "100.20",
        "100.00",
        (11, 0),
        "0.05",
        "5",
        "95.00",
        "105.00",
        opening="100.00",
        trades=("100.80", "101.00"),
    ),
    Example(
        "rp-mean-101.00-new-rp",
        T1,
        "100.20",
        "101.00",
        (11, 0),
        "0.05",
        "5.05",
        "95.95",
        "106.05",
        opening="100.00",
        trades=("100.50", "101.50"),
    ),
    Example(
        "rp-mean-99.00-new-rp",
        T1,
        "100.20",
        "99.00",
        (11, 0),
        "0.05",
        "4.95",
        "94.05",
        "103.95",
        opening="100.00",
        trades=("99.50", "98.50"),
    ),
]


@pytest.mark.parametrize("example", WORKED_EXAMPLES, ids=lambda e: e.name)
def test_worked_example_then_parameter_width_and_bands_as_in_the_rules(example: Example) -> None:
    session = _session(example.day)
    now = _et(example.day, *example.hm)
    reference = ReferencePrice()
    if example.opening is None:
        reference.set_opening(D(example.rp), session.open_at)
    else:
        reference.set_opening(D(example.opening), now - timedelta(minutes=1))
    for price in example.trades:
        reference.add_trade(D(price), now)
    assert reference.current == D(example.rp)
    rp, prior_close, tier = D(example.rp), D(example.prior_close), example.tier
    doubled = in_closing_period(now, session)
    parameter = None if example.parameter is None else D(example.parameter)
    assert percentage_parameter(tier, prior_close, doubled=doubled) == parameter
    assert band_width(tier, prior_close, rp, doubled=doubled) == D(example.width)
    bands = compute_bands(tier, prior_close, rp, doubled=doubled)
    assert (bands.lower, bands.upper) == (D(example.lower), D(example.upper))
    assert (bands.reference_price, bands.parameter) == (rp, parameter)
    assert bands.source is BandSource.COMPUTED


# ---- band properties -------------------------------------------------------------------------

tiers = st.sampled_from(Tier)
prices = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
# Reference prices are penny values: ReferencePrice rounds every RP it holds.
reference_prices = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
leverages = st.decimals(min_value=D(1), max_value=D(3), places=2)


@given(tiers, prices, reference_prices, st.booleans(), leverages)
def test_computed_bands_any_inputs_then_contain_rp_and_lower_at_least_a_penny(
    tier: Tier, prior_close: Decimal, rp: Decimal, doubled: bool, leverage: Decimal
) -> None:
    bands = compute_bands(tier, prior_close, rp, doubled=doubled, leverage=leverage)
    assert bands.contains(rp)
    assert bands.lower >= D("0.01")
    assert bands.lower == bands.lower.quantize(D("0.01"))
    assert bands.upper == bands.upper.quantize(D("0.01"))
    assert bands.source is BandSource.COMPUTED
    assert bands.parameter == percentage_parameter(
        tier, prior_close, doubled=doubled, leverage=leverage
    )


@given(prices, reference_prices, st.booleans(), leverages)
def test_tier2_bands_same_inputs_then_never_narrower_than_tier1(
    prior_close: Decimal, rp: Decimal, doubled: bool, leverage: Decimal
) -> None:
    tier1 = compute_bands(T1, prior_close, rp, doubled=doubled, leverage=leverage)
    tier2 = compute_bands(T2, prior_close, rp, doubled=doubled, leverage=leverage)
    assert tier2.lower <= tier1.lower
    assert tier2.upper >= tier1.upper


@given(prices, prices, reference_prices)
def test_published_bands_then_marked_published_without_parameter(
    a: Decimal, b: Decimal, rp: Decimal
) -> None:
    bands = published_bands(min(a, b), max(a, b), rp)
    assert bands.source is BandSource.PUBLISHED
    assert bands.parameter is None


def test_published_and_computed_bands_then_published_win_unless_setting_says_otherwise() -> None:
    computed = compute_bands(T1, D("100"), D("100"), doubled=False)
    published = published_bands(D("95.01"), D("104.99"), D("100"))
    assert effective_bands(computed, published) is published
    assert effective_bands(computed, None) is computed
    local = LuldSettings(published_bands_authoritative=False)
    assert effective_bands(computed, published, local) is computed
    assert effective_bands(None, published, local) is published


def test_tier2_above_3_in_closing_period_then_not_doubled() -> None:
    assert not doubles_in_closing_period(T2, D("3.01"))
    assert doubles_in_closing_period(T2, D("3.00"))
    assert doubles_in_closing_period(T1, D("500"))
    assert percentage_parameter(T2, D("3.01"), doubled=True) == D("0.10")


def test_leveraged_etp_then_parameter_and_dollar_width_scaled() -> None:
    assert percentage_parameter(T1, D("40"), doubled=False, leverage=D(3)) == D("0.15")
    assert band_width(T2, D("0.50"), D("0.40"), doubled=False, leverage=D(2)) == D("0.30")


def test_lower_band_below_zero_then_floored_at_a_penny() -> None:
    # 20% doubled x3 leverage = 120% of RP: the lower band would be negative.
    bands = compute_bands(T1, D("2.00"), D("2.00"), doubled=True, leverage=D(3))
    assert (bands.lower, bands.upper) == (D("0.01"), D("4.40"))


def test_band_half_cent_then_rounded_half_up() -> None:
    # 5% of 100.10 = 5.005: 95.095 -> 95.10 and 105.105 -> 105.11.
    bands = compute_bands(T1, D("100"), D("100.10"), doubled=False)
    assert (bands.lower, bands.upper) == (D("95.10"), D("105.11"))


def test_limit_orders_against_bands_then_outside_not_executable() -> None:
    bands = _bands("95.00", "105.00")
    assert bands.buy_limit_executable(D("105.00")) and not bands.buy_limit_executable(D("105.01"))
    assert bands.sell_limit_executable(D("95.00")) and not bands.sell_limit_executable(D("94.99"))


def test_non_positive_reference_price_then_refused() -> None:
    with pytest.raises(ValueError, match="reference_price must be positive"):
        compute_bands(T1, D("100"), D("0"), doubled=False)


def test_closing_period_boundaries_then_1535_in_and_1600_out() -> None:
    regular, early = _session(REGULAR_DAY), _session(EARLY_CLOSE_DAY)
    assert not in_closing_period(_et(REGULAR_DAY, 15, 34, 59.999), regular)
    assert in_closing_period(_et(REGULAR_DAY, 15, 35), regular)
    assert not in_closing_period(_et(REGULAR_DAY, 16), regular)
    assert not in_closing_period(_et(EARLY_CLOSE_DAY, 12, 34, 59), early)
    assert in_closing_period(_et(EARLY_CLOSE_DAY, 12, 35), early)


# ---- reference price -------------------------------------------------------------------------


def test_one_percent_move_10s_after_rp_then_waits_until_30s_at_next_evaluate() -> None:
    start = _et(REGULAR_DAY, 10)
    reference = ReferencePrice()
    reference.set_opening(D("100.00"), start)
    assert not reference.add_trade(D("102.00"), start + timedelta(seconds=10))
    assert reference.current == D("100.00")
    assert not reference.evaluate(start + timedelta(seconds=29, microseconds=999_999))
    assert reference.evaluate(start + timedelta(seconds=30))
    assert reference.current == D("102.00")
    assert reference.since == start + timedelta(seconds=30)


def test_new_rp_then_its_own_30s_rule_applies() -> None:
    start = _et(REGULAR_DAY, 10)
    reference = ReferencePrice()
    reference.set_opening(D("100.00"), start)
    assert reference.add_trade(D("102.00"), start + timedelta(seconds=40))
    assert not reference.add_trade(D("110.00"), start + timedelta(seconds=50))
    assert reference.current == D("102.00")


def test_trades_older_than_5_minutes_then_leave_the_mean() -> None:
    start = _et(REGULAR_DAY, 10)
    reference = ReferencePrice()
    reference.set_opening(D("100.00"), start)
    assert not reference.add_trade(D("100.50"), start + timedelta(seconds=40))
    later = start + timedelta(seconds=40, minutes=5)  # the 100.50 trade is now exactly 5 min old
    assert reference.add_trade(D("101.60"), later)
    assert reference.current == D("101.60")  # with the old trade the mean would be 101.05


def test_no_trade_in_window_then_rp_stays() -> None:
    start = _et(REGULAR_DAY, 10)
    reference = ReferencePrice()
    reference.set_opening(D("100.00"), start)
    reference.add_trade(D("100.40"), start + timedelta(seconds=5))
    assert reference.has_window_trades
    assert not reference.evaluate(start + timedelta(hours=1))
    assert reference.current == D("100.00")
    assert not reference.has_window_trades


def test_reopening_then_new_rp_and_window_cleared() -> None:
    start = _et(REGULAR_DAY, 10)
    reference = ReferencePrice()
    reference.set_opening(D("100.00"), start)
    reference.add_trade(D("100.60"), start + timedelta(seconds=40))
    reopen = start + timedelta(minutes=1)
    reference.set_reopening(D("90.00"), reopen)
    assert (reference.current, reference.since) == (D("90.00"), reopen)
    assert not reference.has_window_trades
    # Only trades after the reopening count: a 0.5% move is no new RP.
    assert not reference.add_trade(D("90.45"), reopen + timedelta(seconds=40))


def test_mean_with_half_cent_then_rp_rounded_half_up_to_the_penny() -> None:
    start = _et(REGULAR_DAY, 10)
    reference = ReferencePrice()
    reference.set_opening(D("10.00"), start)
    assert not reference.add_trade(D("10.05"), start + timedelta(seconds=31))
    assert reference.add_trade(D("10.36"), start + timedelta(seconds=32))
    assert reference.current == D("10.21")  # mean 10.205


def test_trade_before_first_rp_then_no_rp() -> None:
    reference = ReferencePrice()
    assert not reference.add_trade(D("10.00"), _et(REGULAR_DAY, 9, 30))
    assert reference.current is None


def test_naive_reopening_time_then_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ReferencePrice().set_reopening(D("10"), datetime(2026, 11, 25, 10))


# ---- limit state -----------------------------------------------------------------------------


def test_nbo_at_lower_band_then_limit_down_and_pause_inferred_at_15s() -> None:
    bands = _bands("95.00", "105.00")
    tracker = LimitStateTracker()
    start = _et(REGULAR_DAY, 11)
    assert tracker.evaluate(D("94.90"), D("95.00"), bands, start) is LimitState.LIMIT_DOWN
    assert tracker.since == start
    assert not tracker.pause_inferred(start + timedelta(seconds=14.9))
    assert tracker.pause_inferred(start + timedelta(seconds=15))


def test_repeated_quotes_in_limit_state_then_clock_not_restarted() -> None:
    bands = _bands("95.00", "105.00")
    tracker = LimitStateTracker()
    start = _et(REGULAR_DAY, 11)
    tracker.evaluate(None, D("95.00"), bands, start)
    tracker.evaluate(D("94.50"), D("95.00"), bands, start + timedelta(seconds=10))
    assert tracker.since == start
    assert tracker.pause_inferred(start + timedelta(seconds=15))


def test_nbb_at_upper_band_then_limit_up() -> None:
    tracker = LimitStateTracker()
    state = tracker.evaluate(
        D("105.00"), D("105.10"), _bands("95.00", "105.00"), _et(REGULAR_DAY, 11)
    )
    assert state is LimitState.LIMIT_UP


def test_quotes_back_inside_band_then_none_and_clock_reset() -> None:
    bands = _bands("95.00", "105.00")
    tracker = LimitStateTracker()
    start = _et(REGULAR_DAY, 11)
    tracker.evaluate(D("94.90"), D("95.00"), bands, start)
    left = start + timedelta(seconds=10)
    assert tracker.evaluate(D("95.00"), D("95.05"), bands, left) is LimitState.NONE
    assert tracker.since == left
    assert not tracker.pause_inferred(start + timedelta(seconds=20))
    again = start + timedelta(seconds=12)
    tracker.evaluate(D("94.90"), D("95.00"), bands, again)
    assert not tracker.pause_inferred(start + timedelta(seconds=20))
    assert tracker.pause_inferred(again + timedelta(seconds=15))


def test_straddle_then_never_infers_a_pause() -> None:
    bands = _bands("95.00", "105.00")
    tracker = LimitStateTracker()
    start = _et(REGULAR_DAY, 11)
    assert tracker.evaluate(D("94.00"), D("106.00"), bands, start) is LimitState.STRADDLE
    assert not tracker.pause_inferred(start + timedelta(minutes=5))


def test_offer_below_lower_band_then_non_executable_side_ignored() -> None:
    bands = _bands("95.00", "105.00")
    tracker = LimitStateTracker()
    now = _et(REGULAR_DAY, 11)
    # The offer is non-executable, so only the bid counts: inside the bands, no state.
    assert tracker.evaluate(D("96.00"), D("94.00"), bands, now) is LimitState.NONE
    # The bid is non-executable; the offer above the upper band makes a straddle.
    assert tracker.evaluate(D("106.00"), D("105.50"), bands, now) is LimitState.STRADDLE


def test_no_quotes_then_none() -> None:
    tracker = LimitStateTracker()
    assert tracker.evaluate(None, None, _bands("95.00", "105.00"), _et(REGULAR_DAY, 11)) is (
        LimitState.NONE
    )


def test_crossed_at_both_bands_then_running_limit_state_kept() -> None:
    bands = _bands("95.00", "105.00")
    tracker = LimitStateTracker()
    start = _et(REGULAR_DAY, 11)
    tracker.evaluate(D("105.00"), None, bands, start)
    assert tracker.evaluate(D("105.00"), D("95.00"), bands, start + timedelta(seconds=5)) is (
        LimitState.LIMIT_UP
    )
    assert tracker.pause_inferred(start + timedelta(seconds=15))


def test_reset_then_none_without_since() -> None:
    tracker = LimitStateTracker()
    tracker.evaluate(None, D("95.00"), _bands("95.00", "105.00"), _et(REGULAR_DAY, 11))
    tracker.reset()
    assert (tracker.state, tracker.since) == (LimitState.NONE, None)


# ---- pause timing ----------------------------------------------------------------------------


def test_pause_with_extensions_then_five_minute_steps() -> None:
    declared = _et(REGULAR_DAY, 11)
    assert pause_ends_at(declared, 0, DEFAULT_SETTINGS) == _et(REGULAR_DAY, 11, 5)
    assert pause_ends_at(declared, 2, DEFAULT_SETTINGS) == _et(REGULAR_DAY, 11, 15)
    with pytest.raises(ValueError, match="extensions"):
        pause_ends_at(declared, -1, DEFAULT_SETTINGS)


@pytest.mark.parametrize(
    ("day", "hms", "reopens"),
    [
        (REGULAR_DAY, (15, 49, 59), True),
        (REGULAR_DAY, (15, 50, 0), False),
        (EARLY_CLOSE_DAY, (12, 49, 59), True),
        (EARLY_CLOSE_DAY, (12, 50, 0), False),
    ],
)
def test_pause_declared_near_close_then_reopens_only_before_last_10_minutes(
    day: date, hms: tuple[int, int, int], reopens: bool
) -> None:
    assert reopens_before_close(_et(day, *hms), _session(day), DEFAULT_SETTINGS) is reopens


def test_settings_with_zero_timeout_then_refused() -> None:
    with pytest.raises(ValueError, match="durations"):
        LuldSettings(limit_state_timeout=timedelta(0))
