"""The market-state engine: LULD pauses, circuit breakers, bands, Reg SHO and refused events.

Every scenario runs on real trading days from the shipped calendar; time is an argument (events
carry it, ``tick`` takes it), so nothing here sleeps or reads a clock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.circuit_breakers import Level
from gateway.domain.feed import EventRefused, FeedEvent, ResumptionPhase, TradeType
from gateway.domain.luld import BandSource, LimitState, Tier
from gateway.domain.market_state import ChangeKind, MarketStateEngine, Phase
from gateway.domain.orders import Side
from gateway.domain.pretrade import check_order
from tests.domain.halts.feed import (
    EARLY_CLOSE,
    SYMBOL,
    TUESDAY,
    VENUES,
    WEDNESDAY,
    D,
    band_notice,
    engine,
    et,
    halt,
    index,
    move,
    opened,
    order,
    quote,
    reference,
    resume,
    snapshot,
    trade,
)


def _codes(target: MarketStateEngine, now: datetime, **fields: object) -> set[str]:
    decision = check_order(target, order(**fields), now)  # type: ignore[arg-type]
    return {r.code for r in decision.reasons}


def _limit_down(day: date = TUESDAY, clock: str = "10:00") -> MarketStateEngine:
    """Opened at 100.00 (bands 95.00 / 105.00); from ``clock`` the NBO sits on the lower band."""
    target = opened(day)
    move(target, et(day, clock), "94.95", "95.00")
    return target


# --- LULD: limit state, inferred pause, declared pause, reopening ------------------------------


def test_offer_on_lower_band_then_limit_down_recorded_with_its_start() -> None:
    target = opened()
    changes = move(target, et(TUESDAY, "10:00"), "94.95", "95.00")
    (change,) = [c for c in changes if ChangeKind.LIMIT_STATE in c.kinds]
    assert (change.reason_code, change.record, change.cancel) == (
        "LIMIT_DOWN",
        "LIMIT_STATE",
        False,
    )
    state = target.get(SYMBOL)
    assert state is not None
    assert (state.limit.state, state.limit.since) == (LimitState.LIMIT_DOWN, et(TUESDAY, "10:00"))
    assert target.phase(state, et(TUESDAY, "10:00:01")) is Phase.CONTINUOUS


def test_limit_down_for_14_9s_then_no_pause_yet_and_sell_limit_allowed() -> None:
    target = _limit_down()
    assert target.tick(et(TUESDAY, "10:00:14.9")) == []
    decision = check_order(target, order(side=Side.SELL, limit="95.00"), et(TUESDAY, "10:00:14.9"))
    assert decision.allowed and decision.phase is Phase.CONTINUOUS


def test_limit_down_for_15s_then_pause_inferred_and_orders_refused() -> None:
    target = _limit_down()
    (change,) = target.tick(et(TUESDAY, "10:00:15"))
    assert change.kinds == (ChangeKind.PAUSE,)
    assert (change.reason_code, change.record, change.cancel) == ("LUDP", "PAUSE_INFERRED", True)
    assert dict(change.detail)["limit_state"] == "LIMIT_DOWN"
    state = target.get(SYMBOL)
    assert state is not None and state.halt is not None
    assert state.halt.inferred and state.halt.is_pause and state.halt.reopens
    assert state.halt.since == et(TUESDAY, "10:00:15")
    assert state.halt.expected_resumption == et(TUESDAY, "10:05:15")
    assert target.phase(state, et(TUESDAY, "10:00:15")) is Phase.PAUSED
    assert _codes(target, et(TUESDAY, "10:00:16"), side=Side.SELL, limit="95.00") == {
        "PAUSE_INFERRED"
    }
    # The inferred pause is not inferred twice.
    assert target.tick(et(TUESDAY, "10:00:30")) == []


def test_limit_up_for_15s_then_pause_inferred() -> None:
    target = opened()
    move(target, et(TUESDAY, "10:00"), "105.00", "105.05")
    state = target.get(SYMBOL)
    assert state is not None and state.limit.state is LimitState.LIMIT_UP
    (change,) = target.tick(et(TUESDAY, "10:00:15"))
    assert change.record == "PAUSE_INFERRED" and dict(change.detail)["limit_state"] == "LIMIT_UP"


def test_late_tick_then_inferred_pause_dated_when_the_15s_ran_out() -> None:
    target = _limit_down()
    (change,) = target.tick(et(TUESDAY, "10:00:40"))
    state = target.get(SYMBOL)
    assert state is not None and state.halt is not None
    assert change.at == state.halt.since == et(TUESDAY, "10:00:15")


def test_limit_state_ended_within_15s_then_no_pause() -> None:
    target = _limit_down()
    changes = move(target, et(TUESDAY, "10:00:10"), "95.00", "95.02")
    assert any(dict(c.detail).get("to") == "NONE" for c in changes)
    assert target.tick(et(TUESDAY, "10:00:15")) == []
    assert target.tick(et(TUESDAY, "10:01")) == []


def test_straddle_for_a_minute_then_never_an_inferred_pause() -> None:
    target = opened()
    changes = move(target, et(TUESDAY, "10:00"), "94.00", "106.00")
    assert [c.record for c in changes if ChangeKind.LIMIT_STATE in c.kinds] == ["STRADDLE"]
    assert target.tick(et(TUESDAY, "10:01")) == []


def test_declared_pause_after_inferred_then_replaces_it_without_second_cancel() -> None:
    target = _limit_down()
    target.tick(et(TUESDAY, "10:00:15"))
    (change,) = target.apply(halt(et(TUESDAY, "10:00:16"), "LUDP"))
    assert change.kinds == (ChangeKind.PAUSE,)
    assert (change.reason_code, change.record, change.cancel) == ("LUDP", "PAUSE", False)
    assert dict(change.detail) == {"replaces": "PAUSE_INFERRED"}
    state = target.get(SYMBOL)
    assert state is not None and state.halt is not None
    assert not state.halt.inferred and state.halt.since == et(TUESDAY, "10:00:16")
    assert _codes(target, et(TUESDAY, "10:00:17")) == {"SYMBOL_PAUSED"}


def test_pause_declared_without_inference_then_cancels_orders() -> None:
    target = opened()
    (change,) = target.apply(halt(et(TUESDAY, "10:00"), "LUDP"))
    assert change.cancel and change.record == "PAUSE"


def test_reopening_print_after_pause_then_new_reference_price_bands_and_orders_allowed() -> None:
    target = _limit_down()
    target.tick(et(TUESDAY, "10:00:15"))
    target.apply(halt(et(TUESDAY, "10:00:16"), "LUDP"))
    changes = target.apply(
        trade(et(TUESDAY, "10:05:16"), "94.00", kind=TradeType.REOPENING, eligible=True)
    )
    assert ChangeKind.RESUME in changes[0].kinds and changes[0].reason_code == "REOPENING_PRINT"
    assert any(ChangeKind.BAND in c.kinds for c in changes)
    state = target.get(SYMBOL)
    assert state is not None and state.halt is None
    assert state.rp.current == D("94.00")
    assert state.bands is not None
    assert (state.bands.lower, state.bands.upper) == (D("89.30"), D("98.70"))
    move(target, et(TUESDAY, "10:05:17"), "93.99", "94.01")
    now = et(TUESDAY, "10:05:18")
    assert target.phase(state, now) is Phase.CONTINUOUS
    assert check_order(target, order(limit="94.01"), now).allowed
    assert _codes(target, now, limit="98.71") == {"LIMIT_PRICE_ABOVE_UPPER_BAND"}


def test_resume_message_after_inferred_pause_then_orders_allowed_on_the_old_bands() -> None:
    target = _limit_down()
    target.tick(et(TUESDAY, "10:00:15"))
    (change,) = target.apply(resume(et(TUESDAY, "10:05:15"), "R4"))
    assert change.kinds == (ChangeKind.RESUME,) and dict(change.detail) == {"phase": "TRADING"}
    state = target.get(SYMBOL)
    assert state is not None and state.halt is None
    assert state.limit.state is LimitState.NONE
    assert state.bands is not None and state.bands.reference_price == D("100.00")
    assert check_order(target, order(), et(TUESDAY, "10:05:16")).allowed
    # A second resume changes nothing.
    assert target.apply(resume(et(TUESDAY, "10:05:17"), "R4")) == []


def test_limit_state_after_reopening_then_timed_from_scratch() -> None:
    target = _limit_down()
    target.tick(et(TUESDAY, "10:00:15"))
    target.apply(resume(et(TUESDAY, "10:05:15")))
    move(target, et(TUESDAY, "10:05:20"), "94.95", "95.00")
    assert target.tick(et(TUESDAY, "10:05:34")) == []
    (change,) = target.tick(et(TUESDAY, "10:05:35"))
    assert change.record == "PAUSE_INFERRED"


@pytest.mark.parametrize(
    ("day", "clock", "reopens"),
    [
        (TUESDAY, "15:49:59", True),
        (TUESDAY, "15:50", False),
        (TUESDAY, "15:51", False),
        (EARLY_CLOSE, "12:49:59", True),
        (EARLY_CLOSE, "12:51", False),
    ],
)
def test_pause_declared_in_last_10_minutes_then_does_not_reopen(
    day: date, clock: str, reopens: bool
) -> None:
    target = opened(day)
    target.apply(halt(et(day, clock), "LUDP"))
    state = target.get(SYMBOL)
    assert state is not None and state.halt is not None
    assert state.halt.reopens is reopens


@pytest.mark.parametrize(
    ("day", "clock", "close"), [(TUESDAY, "15:51", "16:00"), (EARLY_CLOSE, "12:51", "13:00")]
)
def test_pause_declared_at_51_then_stays_paused_to_the_close(
    day: date, clock: str, close: str
) -> None:
    target = opened(day)
    target.apply(halt(et(day, clock), "LUDP"))
    state = target.get(SYMBOL)
    assert state is not None
    start = et(day, clock)
    for minutes in (5, 6, 8):  # past the 5-minute pause, to the last second of the session
        now = start + timedelta(minutes=minutes, seconds=59)
        target.tick(now)
        assert target.phase(state, now) is Phase.PAUSED
        assert "SYMBOL_PAUSED" in _codes(target, now, limit="100.00")
    assert et(day, close) - start == timedelta(minutes=9)


def test_limit_state_for_15s_at_1551_then_inferred_pause_does_not_reopen() -> None:
    target = _limit_down(TUESDAY, "15:51")
    target.tick(et(TUESDAY, "15:51:15"))
    state = target.get(SYMBOL)
    assert state is not None and state.halt is not None
    assert state.halt.inferred and not state.halt.reopens


def test_limit_state_reaching_15s_only_after_the_close_then_no_pause() -> None:
    target = _limit_down(TUESDAY, "15:59:50")
    changes = target.tick(et(TUESDAY, "16:00:05"))
    assert [c for c in changes if ChangeKind.PAUSE in c.kinds] == []
    state = target.get(SYMBOL)
    assert state is not None and state.halt is None


def test_quote_at_band_before_the_open_then_no_limit_state() -> None:
    target = engine()
    target.apply(reference(et(TUESDAY, "07:00")))
    target.apply(quote(et(TUESDAY, "09:00"), "94.95", "95.00"))
    state = target.get(SYMBOL)
    assert state is not None and state.bands is None
    assert state.limit.state is LimitState.NONE


def test_first_quote_in_regular_hours_without_opening_print_then_prior_close_is_reference() -> None:
    target = engine()
    target.apply(reference(et(TUESDAY, "07:00"), prior="50.00", tier=Tier.TIER_2))
    target.apply(quote(et(TUESDAY, "09:30:01"), "49.99", "50.01"))
    state = target.get(SYMBOL)
    assert state is not None and state.bands is not None
    assert (state.bands.lower, state.bands.upper) == (D("45.00"), D("55.00"))


def test_pre_market_trades_then_not_part_of_the_reference_price() -> None:
    target = engine()
    target.apply(reference(et(TUESDAY, "07:00")))
    target.apply(trade(et(TUESDAY, "09:29"), "80.00"))
    target.apply(trade(et(TUESDAY, "09:30"), "100.00", kind=TradeType.OPENING))
    target.tick(et(TUESDAY, "09:31"))
    state = target.get(SYMBOL)
    assert state is not None and state.rp.current == D("100.00")


def test_after_hours_trades_then_reference_price_and_bands_unchanged() -> None:
    target = opened()
    state = target.get(SYMBOL)
    assert state is not None
    before = state.bands
    for minute in range(10, 20):
        target.apply(trade(et(TUESDAY, f"16:{minute}"), "80.00"))
        target.tick(et(TUESDAY, f"16:{minute}:30"))
    assert state.rp.current == D("100.00") and state.bands == before


def test_closing_period_then_tier1_bands_double_on_tick() -> None:
    target = opened()
    target.tick(et(TUESDAY, "15:34:59"))
    changes = target.tick(et(TUESDAY, "15:35"))
    assert any(ChangeKind.BAND in c.kinds for c in changes)
    state = target.get(SYMBOL)
    assert state is not None and state.bands is not None
    assert (state.bands.lower, state.bands.upper) == (D("90.00"), D("110.00"))


def test_scheduled_phases_then_announced_once_each_on_tick() -> None:
    target = engine()
    target.apply(reference(et(TUESDAY, "07:00")))
    first = target.tick(et(TUESDAY, "08:00"))
    assert [c.reason_code for c in first if c.record == "AUCTION_PHASE"] == ["PRE_OPEN"]
    assert target.tick(et(TUESDAY, "08:01")) == []
    opening = target.tick(et(TUESDAY, "09:29:30"))
    assert [c.reason_code for c in opening] == ["OPENING_AUCTION"]
    assert [c.reason_code for c in target.tick(et(TUESDAY, "09:30"))] == ["CONTINUOUS"]
    assert target.tick(et(TUESDAY, "10:01")) == []
    assert target.tick(et(TUESDAY, "15:54:59")) == []
    closing = target.tick(et(TUESDAY, "15:55"))  # Nasdaq: the MOC cut-off
    assert [c.reason_code for c in closing if c.record == "AUCTION_PHASE"] == ["CLOSING_AUCTION"]


# --- operational halts and quotation-only periods ----------------------------------------------


def test_operational_halt_then_only_that_venue_recorded_and_cancelled() -> None:
    target = opened()
    (change,) = target.apply(halt(et(TUESDAY, "10:00"), "O1", venue="NYSE"))
    assert change.kinds == (ChangeKind.OPERATIONAL_HALT,)
    assert (change.venue, change.cancel, change.record) == ("NYSE", True, "OPERATIONAL_HALT")
    state = target.get(SYMBOL)
    assert state is not None and state.halt is None and set(state.operational) == {"NYSE"}
    assert target.phase(state, et(TUESDAY, "10:00:01")) is Phase.CONTINUOUS
    (ended,) = target.apply(resume(et(TUESDAY, "10:10"), "R4", venue="NYSE"))
    assert (ended.record, ended.venue) == ("OPERATIONAL_RESUME", "NYSE")
    assert state.operational == {}


def test_halt_then_quotes_resume_then_quotation_only_until_trading_resumes() -> None:
    target = opened()
    target.apply(halt(et(TUESDAY, "10:00"), "T1"))
    state = target.get(SYMBOL)
    assert state is not None
    assert target.phase(state, et(TUESDAY, "10:00")) is Phase.HALTED
    (quotes,) = target.apply(resume(et(TUESDAY, "10:30"), "T3", ResumptionPhase.QUOTES))
    assert quotes.kinds == (ChangeKind.RESUME, ChangeKind.AUCTION_PHASE)
    assert target.phase(state, et(TUESDAY, "10:30")) is Phase.QUOTATION_ONLY
    target.apply(resume(et(TUESDAY, "10:35"), "R4"))
    assert target.phase(state, et(TUESDAY, "10:35")) is Phase.CONTINUOUS


def test_t7_halt_then_quotation_only_at_once() -> None:
    target = opened()
    target.apply(halt(et(TUESDAY, "10:00"), "T7"))
    state = target.get(SYMBOL)
    assert state is not None
    assert target.phase(state, et(TUESDAY, "10:00")) is Phase.QUOTATION_ONLY


def test_regulatory_halt_then_outlasts_the_day_but_a_pause_does_not() -> None:
    target = opened()
    target.apply(halt(et(TUESDAY, "15:00"), "H10"))
    target.apply(halt(et(TUESDAY, "15:00"), "LUDP", symbol="MSFT"))
    for symbol in (SYMBOL, "MSFT"):
        target.apply(reference(et(WEDNESDAY, "07:00"), symbol=symbol))
    aapl, msft = target.get(SYMBOL), target.get("MSFT")
    assert aapl is not None and msft is not None
    assert target.phase(aapl, et(WEDNESDAY, "10:00")) is Phase.HALTED
    assert target.phase(msft, et(WEDNESDAY, "10:00")) is Phase.CONTINUOUS


def test_new_trading_day_then_venues_quoting_only_yesterday_leave_the_nbbo() -> None:
    target = opened()
    target.apply(quote(et(WEDNESDAY, "04:00"), "99.50", "99.60", venue="EDGX"))
    target.apply(reference(et(WEDNESDAY, "07:00")))
    state = target.get(SYMBOL)
    assert state is not None
    assert [q.venue for q in state.book] == ["EDGX"]
    nbbo = state.book.nbbo
    assert (nbbo.bid_price, nbbo.ask_price) == (D("99.50"), D("99.60"))


# --- published bands ---------------------------------------------------------------------------


def test_published_bands_then_take_precedence_over_computed_ones() -> None:
    target = opened()
    (change, *_) = target.apply(band_notice(et(TUESDAY, "10:00"), "96.00", "104.00"))
    assert change.kinds == (ChangeKind.BAND,)
    state = target.get(SYMBOL)
    assert state is not None and state.bands is not None
    assert state.bands.source is BandSource.PUBLISHED
    assert (state.bands.lower, state.bands.upper) == (D("96.00"), D("104.00"))
    assert state.computed is not None and state.computed.upper == D("105.00")
    now = et(TUESDAY, "10:00:01")
    assert _codes(target, now, limit="104.01") == {"LIMIT_PRICE_ABOVE_UPPER_BAND"}
    assert check_order(target, order(limit="104.00"), now).allowed
    # A new computed reference price does not displace the published bands.
    target.apply(trade(et(TUESDAY, "10:01"), "102.00"))
    assert state.computed.reference_price == D("102.00")
    assert state.bands.source is BandSource.PUBLISHED and state.bands.upper == D("104.00")


def test_offer_on_published_lower_band_then_limit_down() -> None:
    target = opened()
    target.apply(band_notice(et(TUESDAY, "10:00"), "96.00", "104.00"))
    move(target, et(TUESDAY, "10:00:01"), "95.95", "96.00")
    state = target.get(SYMBOL)
    assert state is not None and state.limit.state is LimitState.LIMIT_DOWN


def test_reopening_print_then_published_bands_give_way_to_computed() -> None:
    target = opened()
    target.apply(band_notice(et(TUESDAY, "10:00"), "96.00", "104.00"))
    target.apply(halt(et(TUESDAY, "10:01"), "LUDP"))
    target.apply(trade(et(TUESDAY, "10:06"), "100.00", kind=TradeType.REOPENING))
    state = target.get(SYMBOL)
    assert state is not None and state.bands is not None
    assert state.bands.source is BandSource.COMPUTED


@pytest.mark.parametrize(("lower", "upper"), [("104.00", "96.00"), ("100.00", "100.00")])
def test_band_message_with_lower_not_below_upper_then_refused_and_state_unchanged(
    lower: str, upper: str
) -> None:
    target = opened()
    now = et(TUESDAY, "10:00")
    before = snapshot(target, SYMBOL, now)
    with pytest.raises(EventRefused) as refused:
        target.apply(band_notice(now, lower, upper))
    assert refused.value.reason == "BAND_INVALID"
    assert snapshot(target, SYMBOL, now) == before


# --- market-wide circuit breakers ---------------------------------------------------------------


def _with_index(day: date = TUESDAY) -> MarketStateEngine:
    target = opened(day)
    assert target.apply(index(et(day, "09:30"), "5000.00", "5000.00")) == []
    return target


def test_level1_then_level2_then_second_7pct_decline_through_index_events() -> None:
    target = _with_index()
    state = target.get(SYMBOL)
    assert state is not None
    (level1,) = target.apply(index(et(TUESDAY, "10:00"), "4650.00"))
    assert level1.kinds == (ChangeKind.CIRCUIT_BREAKER, ChangeKind.HALT)
    assert (level1.symbol, level1.reason_code, level1.cancel) == ("", "MWC1", True)
    assert target.breaker is not None
    assert target.breaker.halted_until == et(TUESDAY, "10:15")
    assert target.phase(state, et(TUESDAY, "10:05")) is Phase.HALTED
    assert _codes(target, et(TUESDAY, "10:05")) == {"MARKET_WIDE_HALT"}
    assert target.tick(et(TUESDAY, "10:14:59")) == []
    resumed = [c for c in target.tick(et(TUESDAY, "10:15")) if ChangeKind.RESUME in c.kinds]
    assert [(c.symbol, c.reason_code) for c in resumed] == [("", "MWCQ")]
    assert check_order(target, order(), et(TUESDAY, "10:15")).allowed

    assert target.apply(index(et(TUESDAY, "11:00"), "4700.00")) == []
    (level2,) = target.apply(index(et(TUESDAY, "11:30"), "4350.00"))
    assert (level2.reason_code, level2.cancel) == ("MWC2", True)
    assert target.breaker.halted_until == et(TUESDAY, "11:45")
    assert _codes(target, et(TUESDAY, "11:44:59")) == {"MARKET_WIDE_HALT"}
    target.tick(et(TUESDAY, "11:45"))
    assert check_order(target, order(), et(TUESDAY, "11:45")).allowed

    # The index recovers and falls 7% again: Level 1 halts at most once a day.
    assert target.apply(index(et(TUESDAY, "12:00"), "4800.00")) == []
    assert target.apply(index(et(TUESDAY, "12:30"), "4650.00")) == []
    assert not target.market_halted(et(TUESDAY, "12:30"))
    assert target.levels_triggered() == (Level.LEVEL_1, Level.LEVEL_2)
    assert check_order(target, order(), et(TUESDAY, "12:31")).allowed


def test_level2_during_level1_halt_then_halt_runs_15_minutes_from_level2() -> None:
    target = _with_index()
    target.apply(index(et(TUESDAY, "10:00"), "4650.00"))
    (level2,) = target.apply(index(et(TUESDAY, "10:05"), "4350.00"))
    assert level2.reason_code == "MWC2"
    assert target.breaker is not None and target.breaker.halted_until == et(TUESDAY, "10:20")
    assert target.tick(et(TUESDAY, "10:15")) == []


@pytest.mark.parametrize(
    ("day", "clock", "halts"),
    [
        (TUESDAY, "15:25", True),
        (TUESDAY, "15:26", False),
        (EARLY_CLOSE, "12:25", True),
        (EARLY_CLOSE, "12:26", False),
    ],
)
def test_level1_at_or_before_1525_halts_and_after_does_not(
    day: date, clock: str, halts: bool
) -> None:
    target = _with_index(day)
    (change,) = target.apply(index(et(day, clock), "4650.00"))
    assert change.reason_code == "MWC1" and change.cancel is halts
    assert target.market_halted(et(day, clock)) is halts
    assert ("MARKET_WIDE_HALT" in _codes(target, et(day, clock))) is halts


def test_level3_then_halted_for_the_rest_of_the_day_with_no_new_orders() -> None:
    target = _with_index()
    state = target.get(SYMBOL)
    assert state is not None
    (change,) = target.apply(index(et(TUESDAY, "14:00"), "4000.00"))
    assert (change.reason_code, change.cancel) == ("MWC3", True)
    assert target.breaker is not None and target.breaker.halted_for_day
    for clock in ("14:15", "15:00", "15:59:59"):
        now = et(TUESDAY, clock)
        assert all(ChangeKind.RESUME not in c.kinds for c in target.tick(now))
        assert target.phase(state, now) is Phase.HALTED
        decision = check_order(target, order(), now)
        assert "MARKET_WIDE_HALT" in {r.code for r in decision.reasons}
        assert decision.restrictions[0].value == "NO_NEW_ORDERS"


def test_level3_yesterday_then_today_not_halted_without_a_carry_over() -> None:
    target = _with_index()
    target.apply(index(et(TUESDAY, "14:00"), "4000.00"))
    target.tick(et(TUESDAY, "16:30"))
    opened(WEDNESDAY, into=target)
    assert not target.market_halted(et(WEDNESDAY, "10:00"))
    assert all(ChangeKind.RESUME not in c.kinds for c in target.tick(et(WEDNESDAY, "10:00")))
    assert check_order(target, order(), et(WEDNESDAY, "10:00")).allowed


def test_mwc0_carried_over_then_halted_until_mwcq_resumption() -> None:
    target = _with_index()
    target.apply(halt(et(TUESDAY, "09:31"), "MWC0"))
    assert target.market_halted(et(TUESDAY, "12:00"))
    changes = target.apply(resume(et(TUESDAY, "12:00"), "MWCQ", ResumptionPhase.QUOTES))
    assert [(c.symbol, c.reason_code) for c in changes if not c.symbol] == [("", "MWCQ")]
    assert not target.market_halted(et(TUESDAY, "12:00"))
    state = target.get(SYMBOL)
    assert state is not None  # its own MWC0 halt is now in its quotation-only period
    assert target.phase(state, et(TUESDAY, "12:00")) is Phase.QUOTATION_ONLY


def test_mwcq_resume_then_never_lifts_a_level3_halt() -> None:
    target = _with_index()
    target.apply(index(et(TUESDAY, "14:00"), "4000.00"))
    target.apply(resume(et(TUESDAY, "14:30"), "MWCQ"))
    assert target.market_halted(et(TUESDAY, "14:30"))


def test_limit_state_before_market_wide_halt_then_no_pause_inferred_after_it() -> None:
    target = _with_index()
    move(target, et(TUESDAY, "09:59:55"), "94.95", "95.00")
    target.apply(index(et(TUESDAY, "10:00"), "4650.00"))
    assert target.tick(et(TUESDAY, "10:00:10")) == []
    move(target, et(TUESDAY, "10:05"), "94.95", "95.00")  # quotes during the halt do not count
    resumed = target.tick(et(TUESDAY, "10:15"))
    assert all(c.record != "PAUSE_INFERRED" for c in resumed)
    move(target, et(TUESDAY, "10:15:01"), "94.95", "95.00")
    (change,) = target.tick(et(TUESDAY, "10:15:16"))
    assert change.record == "PAUSE_INFERRED"


def test_index_level_without_prior_close_first_then_refused_and_nothing_recorded() -> None:
    target = opened()
    with pytest.raises(EventRefused) as refused:
        target.apply(index(et(TUESDAY, "10:00"), "4650.00"))
    assert refused.value.reason == "INDEX_PRIOR_CLOSE_MISSING"
    assert target.index_level == ("", "") and target.breaker is None


def test_index_levels_then_prior_close_kept_for_display() -> None:
    target = _with_index()
    target.apply(index(et(TUESDAY, "10:00"), "4990.00"))
    assert target.index_level == ("4990.00", "5000.00")


def test_index_level_older_than_the_last_then_refused_without_halting() -> None:
    target = _with_index()
    target.apply(index(et(TUESDAY, "10:00"), "4990.00"))
    with pytest.raises(EventRefused) as refused:
        target.apply(index(et(TUESDAY, "09:59"), "4600.00"))
    assert refused.value.reason == "EVENT_OUT_OF_ORDER"
    assert not target.market_halted(et(TUESDAY, "10:00"))
    assert target.index_level == ("4990.00", "5000.00")


def test_other_index_then_ignored() -> None:
    target = opened()
    assert target.apply(replace(index(et(TUESDAY, "10:00"), "1.00"), index="NDX")) == []
    assert target.breaker is None


# --- Reg SHO Rule 201 -----------------------------------------------------------------------------


def test_trade_at_90pct_of_prior_close_in_regular_hours_then_restricted_through_next_day() -> None:
    target = opened()
    changes = target.apply(trade(et(TUESDAY, "10:00"), "90.00"))
    (change,) = [c for c in changes if ChangeKind.SHORT_SALE_RESTRICTION in c.kinds]
    assert (change.reason_code, change.record) == ("REG_SHO_201", "SHORT_SALE_RESTRICTION")
    assert dict(change.detail) == {"price": "90.00", "restricted_until": "2026-11-25"}
    state = target.get(SYMBOL)
    assert state is not None
    assert state.ssr.is_restricted(TUESDAY) and state.ssr.is_restricted(WEDNESDAY)
    assert not state.ssr.is_restricted(EARLY_CLOSE)


def test_trigger_on_the_day_before_thanksgiving_then_restricted_through_friday() -> None:
    target = opened(WEDNESDAY)
    target.apply(trade(et(WEDNESDAY, "11:00"), "89.00"))
    state = target.get(SYMBOL)
    assert state is not None and state.ssr.restricted_until == EARLY_CLOSE


@pytest.mark.parametrize(
    ("clock", "price"),
    [("10:00", "90.01"), ("09:29:59", "80.00"), ("16:00", "80.00"), ("17:00", "80.00")],
)
def test_trade_above_trigger_or_outside_regular_hours_then_no_restriction(
    clock: str, price: str
) -> None:
    target = engine()
    target.apply(reference(et(TUESDAY, "07:00")))
    changes = target.apply(trade(et(TUESDAY, clock), price))
    assert all(ChangeKind.SHORT_SALE_RESTRICTION not in c.kinds for c in changes)
    state = target.get(SYMBOL)
    assert state is not None and not state.ssr.is_restricted(TUESDAY)


def test_reference_data_flagged_restricted_then_restricted_that_day_only() -> None:
    target = engine()
    (change,) = target.apply(reference(et(WEDNESDAY, "07:00"), restricted=True))
    assert ChangeKind.SHORT_SALE_RESTRICTION in change.kinds
    state = target.get(SYMBOL)
    assert state is not None
    assert state.ssr.is_restricted(WEDNESDAY) and not state.ssr.is_restricted(EARLY_CLOSE)


def test_carry_over_from_persisted_state_then_restricted_before_reference_data_arrives() -> None:
    target = engine()
    target.carry_over_short_sale(SYMBOL, WEDNESDAY)
    state = target.get(SYMBOL)
    assert state is not None and state.ssr.is_restricted(WEDNESDAY)
    (change,) = target.apply(reference(et(WEDNESDAY, "07:00")))
    assert change.kinds == (ChangeKind.REFERENCE_DATA,)
    assert state.ssr.is_restricted(WEDNESDAY)


# --- refused events change nothing --------------------------------------------------------------

NOW = et(TUESDAY, "10:00:05")

BAD_EVENTS: list[tuple[str, FeedEvent, str]] = [
    ("older-quote", quote(et(TUESDAY, "09:59"), "99.00", "99.10"), "EVENT_OUT_OF_ORDER"),
    ("older-halt", halt(et(TUESDAY, "09:59"), "T1"), "EVENT_OUT_OF_ORDER"),
    ("crossed-quote", quote(NOW, "100.05", "100.00", venue="IEX"), "QUOTE_CROSSED"),
    ("unknown-code", halt(NOW, "ZZ9"), "UNKNOWN_HALT_CODE"),
    ("resumption-as-halt", halt(NOW, "R4"), "NOT_A_HALT_CODE"),
    ("mwcq-as-halt", halt(NOW, "MWCQ"), "NOT_A_HALT_CODE"),
    ("t3-as-halt", halt(NOW, "T3"), "NOT_A_HALT_CODE"),
    ("o1-without-venue", halt(NOW, "O1"), "VENUE_REQUIRED"),
    ("band-inverted", band_notice(NOW, "104.00", "96.00"), "BAND_INVALID"),
    ("band-at-zero", band_notice(NOW, "0", "96.00"), "BAND_INVALID"),
    ("zero-trade", trade(NOW, "0"), "PRICE_NOT_POSITIVE"),
    ("negative-bid", quote(NOW, "-1", "100.00", venue="IEX"), "PRICE_NOT_POSITIVE"),
    ("zero-prior-close", reference(NOW, prior="0"), "PRICE_NOT_POSITIVE"),
    ("unknown-resumption", resume(NOW, "ZZ9"), "UNKNOWN_HALT_CODE"),
]


@pytest.mark.parametrize(
    ("event", "reason"), [(e, r) for _, e, r in BAD_EVENTS], ids=[n for n, _, _ in BAD_EVENTS]
)
def test_bad_event_then_refused_with_reason_and_symbol_state_exactly_as_before(
    event: FeedEvent, reason: str
) -> None:
    target = _limit_down()  # a limit state running since 10:00 on bands 95.00 / 105.00
    before = snapshot(target, SYMBOL, NOW)
    with pytest.raises(EventRefused) as refused:
        target.apply(event)
    assert refused.value.reason == reason and refused.value.message
    assert snapshot(target, SYMBOL, NOW) == before
    # The limit state's clock was not disturbed either.
    (change,) = target.tick(et(TUESDAY, "10:00:15"))
    assert change.record == "PAUSE_INFERRED"


def test_bad_event_for_unknown_symbol_then_refused_without_creating_it() -> None:
    target = opened()
    with pytest.raises(EventRefused):
        target.apply(quote(NOW, "10.05", "10.00", symbol="MSFT"))
    assert target.get("MSFT") is None and set(target.symbols) == {SYMBOL}


def test_refused_event_then_not_counted_as_last_event_time() -> None:
    target = opened()
    with pytest.raises(EventRefused):
        target.apply(halt(et(TUESDAY, "11:00"), "ZZ9"))
    target.apply(quote(et(TUESDAY, "10:30"), "99.99", "100.01"))  # still in order


# --- properties ----------------------------------------------------------------------------------

PRIOR_CLOSES = ["0.40", "0.75", "2.50", "3.00", "3.10", "50.00", "100.20", "250.17"]


@settings(max_examples=150, deadline=None)
@given(
    tier=st.sampled_from(Tier),
    prior=st.sampled_from(PRIOR_CLOSES),
    day=st.sampled_from([TUESDAY, EARLY_CLOSE]),
    moves=st.lists(
        st.tuples(st.integers(1, 900), st.integers(50, 150), st.booleans()), max_size=30
    ),
)
def test_property_computed_bands_in_force_always_contain_the_reference_price(
    tier: Tier, prior: str, day: date, moves: list[tuple[int, int, bool]]
) -> None:
    target = engine()
    target.apply(reference(et(day, "07:00"), prior=prior, tier=tier))
    state = target.get(SYMBOL)
    assert state is not None
    now = et(day, "09:29:50")
    base = D(prior)
    for seconds, percent, as_tick in moves:
        now += timedelta(seconds=seconds)
        if as_tick:
            target.tick(now)
        else:
            price = max((base * percent / 100).quantize(D("0.01")), D("0.01"))
            target.apply(trade(now, str(price)))
        bands = state.bands
        if bands is None:
            continue
        assert bands.source is BandSource.COMPUTED
        assert bands.reference_price == state.rp.current
        assert bands.contains(bands.reference_price)
        assert D("0.01") <= bands.lower <= bands.upper


def _world(target: MarketStateEngine, now: datetime) -> object:
    breaker = target.breaker
    return (
        {symbol: snapshot(target, symbol, now) for symbol in sorted(target.symbols)},
        target.index_level,
        target.market_halted(now),
        breaker.levels_triggered if breaker is not None else None,
    )


_GOOD_CODES = ["T1", "LUDP", "H10", "T7", "O1", "MWC1"]
_BAD_CODES = ["ZZ9", "R4", "T3", "MWCQ", "", "O1"]


@st.composite
def _event(draw: st.DrawFn, now: datetime) -> FeedEvent | None:
    """One event at ``now`` (or before it), good or bad; None means "tick"."""
    symbol = draw(st.sampled_from([SYMBOL, "MSFT"]))
    at = now - timedelta(seconds=draw(st.sampled_from([0, 0, 0, 0, 30])))
    price = D(draw(st.integers(9000, 11000))) / 100
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return None
    if kind == 1:
        spread = D(draw(st.integers(-3, 5))) / 100
        venue = draw(st.sampled_from(VENUES[:3]))
        return quote(at, str(price), str(price + spread), symbol=symbol, venue=venue)
    if kind == 2:
        trade_type = draw(st.sampled_from(TradeType))
        return trade(at, str(draw(st.sampled_from([price, D(0)]))), symbol=symbol, kind=trade_type)
    if kind == 3:
        code = draw(st.sampled_from(_GOOD_CODES + _BAD_CODES))
        venue = "NYSE" if code == "O1" and draw(st.booleans()) else ""
        return halt(at, code, symbol=symbol, venue=venue)
    if kind == 4:
        code = draw(st.sampled_from(["R4", "T3", "MWCQ", "ZZ9", ""]))
        return resume(at, code, draw(st.sampled_from(ResumptionPhase)), symbol=symbol)
    if kind == 5:
        width = D(draw(st.integers(-200, 800))) / 100
        return band_notice(at, str(price - width), str(price + width), symbol=symbol)
    if kind == 6:
        prior = draw(st.sampled_from([None, "5000.00"]))
        level = draw(st.sampled_from(["4990.00", "4650.00", "4350.00", "4000.00"]))
        return index(at, level, prior)
    if kind == 7:
        return reference(at, symbol=symbol, prior=draw(st.sampled_from(["100.00", "0"])))
    return quote(at, "100.00", "99.00", symbol=symbol)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), start=st.integers(0, 6 * 3600), steps=st.integers(1, 40))
def test_property_applying_a_refused_event_never_changes_the_state(
    data: st.DataObject, start: int, steps: int
) -> None:
    target = opened()
    opened(into=target, symbol="MSFT")
    now = et(TUESDAY, "09:30") + timedelta(seconds=start)
    for _ in range(steps):
        now += timedelta(seconds=data.draw(st.integers(0, 20)))
        event = data.draw(_event(now))
        if event is None:
            target.tick(now)
            continue
        before = _world(target, now)
        try:
            target.apply(event)
        except EventRefused:
            assert _world(target, now) == before
