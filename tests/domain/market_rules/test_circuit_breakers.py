"""Market-wide circuit breakers (NYSE 7.12): triggers, 15:25 cut-off, once-a-day halts, Level 3."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.circuit_breakers import (
    BreakerEvent,
    CircuitBreakerSettings,
    Level,
    MarketWideBreaker,
    trigger_levels,
)
from gateway.domain.halt_codes import UnknownHaltCode

from .sessions import DAY, EARLY_CLOSE_DAY, NY, at, session

PRIOR = Decimal("5000.00")
L1, L2, L3 = Decimal("4650.00"), Decimal("4350.00"), Decimal("4000.00")


def breaker(day: date = DAY, *, early: bool = False) -> MarketWideBreaker:
    return MarketWideBreaker(day, PRIOR, session(day, early=early))


@pytest.mark.parametrize(
    ("prior_close", "level_1", "level_2", "level_3"),
    [
        ("5000.00", "4650.00", "4350.00", "4000.00"),  # section 2 worked example
        ("4123.45", "3834.81", "3587.40", "3298.76"),
        ("1234.50", "1148.09", "1074.02", "987.60"),  # 1148.085 rounds half up
    ],
)
def test_trigger_levels_when_prior_close_then_rounded_half_up_to_two_decimals(
    prior_close: str, level_1: str, level_2: str, level_3: str
) -> None:
    assert trigger_levels(Decimal(prior_close)) == {
        Level.LEVEL_1: Decimal(level_1),
        Level.LEVEL_2: Decimal(level_2),
        Level.LEVEL_3: Decimal(level_3),
    }


def test_trigger_levels_when_prior_close_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        trigger_levels(Decimal("0"))


def test_day_when_level_1_then_level_2_then_second_7pct_decline_then_two_halts_only() -> None:
    mwcb = breaker()
    assert mwcb.on_index_level(Decimal("4700.00"), at("09:45")) is None

    first = mwcb.on_index_level(L1, at("10:00"))
    assert first == BreakerEvent(Level.LEVEL_1, at("10:00"), True, at("10:15"), False, "MWC1")
    assert mwcb.halted(at("10:14:59.999999"))
    assert not mwcb.halted(at("10:15"))
    assert mwcb.reopening(at("10:15"))

    assert mwcb.on_index_level(Decimal("4800.00"), at("10:30")) is None  # recovers

    second = mwcb.on_index_level(L2, at("11:00"))
    assert second == BreakerEvent(Level.LEVEL_2, at("11:00"), True, at("11:15"), False, "MWC2")
    assert mwcb.halted(at("11:10"))
    assert not mwcb.halted(at("11:15"))

    assert mwcb.on_index_level(Decimal("4700.00"), at("12:00")) is None  # recovers again
    assert mwcb.on_index_level(Decimal("4600.00"), at("13:00")) is None  # a second 7% decline
    assert not mwcb.halted(at("13:00"))
    assert mwcb.halted_until == at("11:15")
    assert mwcb.levels_triggered == (Level.LEVEL_1, Level.LEVEL_2)
    assert mwcb.level is Level.LEVEL_2
    assert not mwcb.halted_for_day


def test_level_2_when_during_level_1_halt_then_halts_15_minutes_from_level_2() -> None:
    mwcb = breaker()
    mwcb.on_index_level(L1, at("10:00"))
    event = mwcb.on_index_level(L2, at("10:05"))
    assert event is not None and event.halted
    assert mwcb.halted_until == at("10:20")
    assert mwcb.halted(at("10:19:59"))
    assert not mwcb.reopening(at("10:15"))
    assert mwcb.reopening(at("10:20"))


def test_index_when_falls_straight_to_13pct_then_one_level_2_halt_and_level_1_used_up() -> None:
    mwcb = breaker()
    event = mwcb.on_index_level(Decimal("4300.00"), at("10:00"))
    assert event is not None
    assert (event.level, event.halted, event.code) == (Level.LEVEL_2, True, "MWC2")
    assert mwcb.levels_triggered == (Level.LEVEL_1, Level.LEVEL_2)
    assert mwcb.on_index_level(L1, at("11:00")) is None


@pytest.mark.parametrize(
    ("clock", "halts"),
    [
        ("15:24:59", True),
        ("15:25:00", True),
        ("15:25:00.000001", False),
        ("15:26:00", False),
    ],
)
def test_level_1_when_near_1525_then_halts_only_at_or_before_the_cutoff(
    clock: str, halts: bool
) -> None:
    mwcb = breaker()
    event = mwcb.on_index_level(L1, at(clock))
    assert event is not None
    assert event.level is Level.LEVEL_1
    assert event.halted is halts
    assert mwcb.halted(at(clock)) is halts
    assert mwcb.levels_triggered == (Level.LEVEL_1,)
    expected_until = at(clock) + timedelta(minutes=15) if halts else None
    assert event.halted_until == expected_until


@pytest.mark.parametrize(("clock", "halts"), [("12:25:00", True), ("12:26:00", False)])
def test_level_2_when_early_close_then_cutoff_is_1225(clock: str, halts: bool) -> None:
    mwcb = breaker(EARLY_CLOSE_DAY, early=True)
    event = mwcb.on_index_level(L2, at(clock, EARLY_CLOSE_DAY))
    assert event is not None and event.halted is halts


def test_levels_1_2_when_after_cutoff_then_recorded_without_halt_and_level_3_still_halts() -> None:
    mwcb = breaker()
    assert mwcb.on_index_level(L1, at("15:30")) is not None
    late = mwcb.on_index_level(L2, at("15:35"))
    assert late is not None and not late.halted
    assert not mwcb.halted(at("15:35"))
    final = mwcb.on_index_level(L3, at("15:40"))
    assert final == BreakerEvent(Level.LEVEL_3, at("15:40"), True, None, True, "MWC3")
    assert mwcb.halted(at("15:59:59"))


def test_level_3_when_reached_then_halted_for_rest_of_day() -> None:
    mwcb = breaker()
    event = mwcb.on_index_level(Decimal("3999.99"), at("10:30"))
    assert event is not None
    assert (event.level, event.halted, event.for_rest_of_day) == (Level.LEVEL_3, True, True)
    assert event.halted_until is None
    assert mwcb.halted_for_day
    assert mwcb.halted_until is None
    assert mwcb.halted(at("15:59:59"))
    assert mwcb.level is Level.LEVEL_3
    assert not mwcb.on_resume(at("11:00"))
    assert mwcb.halted(at("11:00"))
    assert not mwcb.reopening(at("12:00"))


@pytest.mark.parametrize("clock", ["09:29:59", "16:00:00", "17:00:00"])
def test_index_level_when_outside_regular_hours_then_ignored(clock: str) -> None:
    mwcb = breaker()
    assert mwcb.on_index_level(L3, at(clock)) is None
    assert mwcb.levels_triggered == ()
    assert mwcb.level is Level.NONE


def test_halt_message_when_index_never_crossed_then_exchange_declaration_applies() -> None:
    mwcb = breaker()
    event = mwcb.on_halt_message("MWC1", at("10:00"))
    assert event == BreakerEvent(Level.LEVEL_1, at("10:00"), True, at("10:15"), False, "MWC1")
    assert mwcb.halted(at("10:10"))
    # The computed trigger a moment later is the same halt, not a second one.
    assert mwcb.on_index_level(L1, at("10:00:01")) is None
    assert mwcb.halted_until == at("10:15")


def test_halt_message_when_after_computed_trigger_then_idempotent() -> None:
    mwcb = breaker()
    mwcb.on_index_level(L1, at("10:00"))
    assert mwcb.on_halt_message("mwc1", at("10:00:00.200000")) is None
    assert mwcb.halted_until == at("10:15")


def test_halt_message_when_after_cutoff_then_still_halts() -> None:
    mwcb = breaker()
    mwcb.on_index_level(L1, at("15:30"))  # recorded, no halt
    event = mwcb.on_halt_message("MWC1", at("15:30:01"))
    assert event is not None and event.halted
    assert mwcb.halted(at("15:40"))


def test_halt_message_when_mwc3_then_halted_for_day_and_resume_ignored() -> None:
    mwcb = breaker()
    event = mwcb.on_halt_message("MWC3", at("11:00"))
    assert event is not None and event.for_rest_of_day
    assert mwcb.on_halt_message("MWC3", at("11:00:01")) is None
    assert mwcb.on_index_level(L3, at("11:01")) is None
    assert mwcb.on_halt_message("MWCQ", at("11:30")) is None
    assert mwcb.halted(at("15:00"))


def test_halt_message_when_mwc0_then_halted_until_quotation_resumption() -> None:
    mwcb = breaker()
    event = mwcb.on_halt_message("MWC0", at("09:00"))
    assert event == BreakerEvent(Level.LEVEL_3, at("09:00"), True, None, False, "MWC0")
    assert mwcb.carried_over
    assert mwcb.halted(at("09:45"))
    assert not mwcb.halted_for_day
    assert mwcb.levels_triggered == ()
    assert mwcb.on_resume(at("09:50"))
    assert not mwcb.halted(at("09:50"))
    assert mwcb.reopening(at("09:50"))


def test_halt_message_when_mwc2_declared_then_level_1_can_no_longer_halt() -> None:
    mwcb = breaker()
    assert mwcb.on_halt_message("MWC2", at("10:00")) is not None
    assert mwcb.levels_triggered == (Level.LEVEL_1, Level.LEVEL_2)
    assert mwcb.on_index_level(L1, at("11:00")) is None
    assert mwcb.on_halt_message("MWC1", at("11:00")) is None
    assert not mwcb.halted(at("11:00"))


def test_resume_when_mwcq_before_15_minutes_then_halt_ends_early() -> None:
    mwcb = breaker()
    mwcb.on_index_level(L1, at("10:00"))
    assert mwcb.on_halt_message("MWCQ", at("10:10")) is None
    assert not mwcb.halted(at("10:10"))
    assert mwcb.halted_until == at("10:10")
    assert mwcb.reopening(at("10:10"))


def test_resume_when_nothing_halted_then_false() -> None:
    mwcb = breaker()
    assert not mwcb.on_resume(at("10:00"))
    assert not mwcb.reopening(at("10:00"))


def test_halt_message_when_not_market_wide_then_value_error() -> None:
    with pytest.raises(ValueError, match="not a market-wide"):
        breaker().on_halt_message("LUDP", at("10:00"))


def test_halt_message_when_unknown_code_then_unknown_halt_code() -> None:
    with pytest.raises(UnknownHaltCode):
        breaker().on_halt_message("MWC9", at("10:00"))


def test_breaker_when_session_of_another_day_then_value_error() -> None:
    with pytest.raises(ValueError, match="session is for"):
        MarketWideBreaker(DAY, PRIOR, session(EARLY_CLOSE_DAY))


@pytest.mark.parametrize(
    "thresholds",
    [
        (Decimal("0.13"), Decimal("0.07"), Decimal("0.20")),
        (Decimal("0"), Decimal("0.13"), Decimal("0.20")),
        (Decimal("0.07"), Decimal("0.13"), Decimal("1")),
    ],
)
def test_settings_when_thresholds_not_increasing_fractions_then_value_error(
    thresholds: tuple[Decimal, Decimal, Decimal],
) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        CircuitBreakerSettings(thresholds=thresholds)


OPEN = datetime.combine(DAY, time(9, 30), tzinfo=NY)
SESSION_SECONDS = int(timedelta(hours=6, minutes=30).total_seconds())

prior_closes = st.decimals(min_value="100.00", max_value="20000.00", places=2)
declines = st.decimals(min_value="0", max_value="0.30", places=4)
messages = st.sampled_from(["", "", "", "MWC1", "MWC2", "MWC3", "MWC0", "MWCQ"])
steps = st.lists(
    st.tuples(st.integers(min_value=0, max_value=600), declines, messages),
    max_size=40,
)


@given(prior_close=prior_closes, path=steps)
def test_any_index_path_when_replayed_then_levels_1_and_2_each_halt_at_most_once(
    prior_close: Decimal, path: list[tuple[int, Decimal, str]]
) -> None:
    mwcb = MarketWideBreaker(DAY, prior_close, session())
    events: list[BreakerEvent] = []
    offset = 0
    for gap, decline, message in path:
        offset = min(offset + gap, SESSION_SECONDS - 1)
        now = OPEN + timedelta(seconds=offset)
        for event in (
            mwcb.on_index_level(prior_close * (1 - decline), now),
            mwcb.on_halt_message(message, now) if message else None,
        ):
            if event is not None:
                events.append(event)
    for level in (Level.LEVEL_1, Level.LEVEL_2):
        assert sum(1 for e in events if e.level is level and e.halted) <= 1
    for event in events:
        if event.code == "MWC3":
            assert event.for_rest_of_day and mwcb.halted_for_day
        elif event.halted and event.level is not Level.LEVEL_3:
            assert event.halted_until == event.at + timedelta(minutes=15)
    computed_or_declared = {e.level for e in events if e.code != "MWC0"}
    assert set(mwcb.levels_triggered) >= computed_or_declared
