"""Trading calendar: shipped holidays and early closes, sessions, navigation, coverage."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.calendar import EXCHANGE_TZ, CalendarError, Session, TradingCalendar
from gateway.errors import ConfigurationError

CALENDAR = TradingCalendar.default()

HOLIDAYS_2026 = (
    date(2026, 1, 1),
    date(2026, 1, 19),
    date(2026, 2, 16),
    date(2026, 4, 3),
    date(2026, 5, 25),
    date(2026, 6, 19),
    date(2026, 7, 3),
    date(2026, 9, 7),
    date(2026, 11, 26),
    date(2026, 12, 25),
)
EARLY_CLOSES_2026 = (date(2026, 11, 27), date(2026, 12, 24))


def _et(d: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(d, time(hour, minute, second), tzinfo=EXCHANGE_TZ)


def _weekdays(year: int) -> list[date]:
    day, days = date(year, 1, 1), []
    while day.year == year:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _early_closes(year: int) -> list[date]:
    return [d for d in _weekdays(year) if CALENDAR.is_early_close(d)]


def test_default_calendar_then_covers_2025_to_2027_and_loaded_once() -> None:
    assert (CALENDAR.first_year, CALENDAR.last_year) == (2025, 2027)
    assert TradingCalendar.default() is CALENDAR


def test_2026_weekdays_then_exactly_the_published_holidays_are_closed() -> None:
    closed = [d for d in _weekdays(2026) if not CALENDAR.is_trading_day(d)]
    assert closed == list(HOLIDAYS_2026)


def test_2026_sessions_then_exactly_the_published_early_closes_end_at_1300() -> None:
    early = [
        d for d in _weekdays(2026) if CALENDAR.is_trading_day(d) and CALENDAR.is_early_close(d)
    ]
    assert early == list(EARLY_CLOSES_2026)


@pytest.mark.parametrize(
    ("day", "trading"),
    [
        (date(2025, 1, 9), False),  # national day of mourning, President Carter
        (date(2025, 7, 3), True),  # early close
        (date(2025, 12, 26), True),  # federal closure, exchanges open
        (date(2026, 7, 2), True),  # no early close before an observed Independence Day
        (date(2026, 7, 3), False),  # July 4 is a Saturday
        (date(2027, 6, 18), False),  # Juneteenth observed, June 19 is a Saturday
        (date(2027, 7, 5), False),  # July 4 is a Sunday
        (date(2027, 12, 24), False),  # Christmas observed, December 25 is a Saturday
        (date(2027, 12, 31), True),  # New Year's Day 2028 (Saturday) is not observed on Friday
    ],
)
def test_observed_and_unscheduled_days_then_as_published(day: date, trading: bool) -> None:
    assert CALENDAR.is_trading_day(day) is trading


def test_early_closes_of_2025_and_2027_then_as_published() -> None:
    for year, expected in (
        (2025, [date(2025, 7, 3), date(2025, 11, 28), date(2025, 12, 24)]),
        (2027, [date(2027, 11, 26)]),
    ):
        early = [
            d for d in _weekdays(year) if CALENDAR.is_trading_day(d) and CALENDAR.is_early_close(d)
        ]
        assert early == expected


def test_early_close_day_then_session_0930_to_1300_with_minus_3h_shift() -> None:
    session = CALENDAR.session(date(2026, 11, 27))
    assert session is not None
    assert session.early_close
    assert session.open_at == _et(date(2026, 11, 27), 9, 30)
    assert session.close_at == _et(date(2026, 11, 27), 13)
    assert session.close_shift == timedelta(hours=-3)
    # Market rules section 5: the NYSE MOC/LOC cut-off 15:50 moves to 12:50.
    assert session.at(time(15, 50), close_relative=True) == _et(date(2026, 11, 27), 12, 50)
    assert session.at(time(9, 28)) == _et(date(2026, 11, 27), 9, 28)


def test_regular_day_then_session_0930_to_1600_without_shift() -> None:
    session = CALENDAR.session(date(2026, 11, 25))
    assert session is not None
    assert not session.early_close
    assert session.close_at == _et(date(2026, 11, 25), 16)
    assert session.close_shift == timedelta(0)
    assert session.at(time(15, 50), close_relative=True) == _et(date(2026, 11, 25), 15, 50)


def test_holiday_and_weekend_then_no_session() -> None:
    assert CALENDAR.session(date(2026, 11, 26)) is None
    assert CALENDAR.session(date(2026, 11, 28)) is None


def test_session_is_open_then_half_open_interval_in_any_timezone() -> None:
    session = CALENDAR.session(date(2026, 11, 27))
    assert session is not None
    day = session.trade_date
    assert not session.is_open(_et(day, 9, 29, 59))
    assert session.is_open(_et(day, 9, 30))
    assert session.is_open(_et(day, 12, 59, 59))
    assert not session.is_open(_et(day, 13))
    assert session.is_open(datetime(2026, 11, 27, 17, 0, tzinfo=ZoneInfo("UTC")))  # 12:00 EST


def test_session_with_naive_now_then_refused() -> None:
    session = CALENDAR.session(date(2026, 11, 25))
    assert session is not None
    with pytest.raises(ValueError, match="timezone-aware"):
        session.is_open(datetime(2026, 11, 25, 10, 0))


def test_session_summer_day_then_open_at_1330_utc() -> None:
    session = CALENDAR.session(date(2026, 7, 1))
    assert session is not None
    assert session.open_at.astimezone(ZoneInfo("UTC")).time() == time(13, 30)


def test_next_trading_day_across_thanksgiving_then_early_close_friday() -> None:
    assert CALENDAR.next_trading_day(date(2026, 11, 25)) == date(2026, 11, 27)


def test_next_and_previous_across_independence_day_weekend_then_skip_friday_holiday() -> None:
    # 2026-07-03 (Fri) is the observed holiday, then a weekend.
    assert CALENDAR.next_trading_day(date(2026, 7, 2)) == date(2026, 7, 6)
    assert CALENDAR.previous_trading_day(date(2026, 7, 6)) == date(2026, 7, 2)
    # 2027-07-05 (Mon) is the observed holiday after a weekend.
    assert CALENDAR.next_trading_day(date(2027, 7, 2)) == date(2027, 7, 6)
    assert CALENDAR.previous_trading_day(date(2027, 7, 6)) == date(2027, 7, 2)


def test_previous_trading_day_after_new_year_then_last_trading_day_of_old_year() -> None:
    assert CALENDAR.previous_trading_day(date(2026, 1, 2)) == date(2025, 12, 31)


def test_date_in_2030_then_calendar_error_naming_the_covered_range() -> None:
    assert not CALENDAR.covers(date(2030, 3, 4))
    with pytest.raises(CalendarError, match="2025-01-01 to 2027-12-31") as caught:
        CALENDAR.is_trading_day(date(2030, 3, 4))
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason == "CALENDAR_NOT_COVERED"
    with pytest.raises(CalendarError):
        CALENDAR.session(date(2030, 3, 4))


def test_next_trading_day_past_last_covered_year_then_calendar_error() -> None:
    with pytest.raises(CalendarError):
        CALENDAR.next_trading_day(date(2027, 12, 31))


def test_trade_date_of_late_evening_utc_then_et_date() -> None:
    now = datetime(2026, 11, 28, 2, 30, tzinfo=ZoneInfo("UTC"))  # 21:30 ET on the 27th
    assert TradingCalendar.trade_date_of(now) == date(2026, 11, 27)
    with pytest.raises(ValueError, match="timezone-aware"):
        TradingCalendar.trade_date_of(datetime(2026, 11, 28, 2, 30))


def test_calendar_built_in_a_test_then_uses_given_dates() -> None:
    calendar = TradingCalendar([date(2031, 1, 1)], [date(2031, 1, 2)])
    assert not calendar.is_trading_day(date(2031, 1, 1))
    session = calendar.session(date(2031, 1, 2))
    assert session is not None and session.early_close
    assert calendar.covers(date(2031, 12, 31)) and not calendar.covers(date(2032, 1, 1))


def test_calendar_with_weekend_holiday_or_early_close_on_holiday_then_refused() -> None:
    with pytest.raises(ValueError, match="2026-07-04 falls on a weekend"):
        TradingCalendar([date(2026, 7, 4)])
    with pytest.raises(ValueError, match="early close 2026-12-25 is not a trading day"):
        TradingCalendar([date(2026, 12, 25)], [date(2026, 12, 25)])
    with pytest.raises(ValueError, match="covered years"):
        TradingCalendar([])


def test_session_with_naive_times_then_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Session(
            date(2026, 11, 25), datetime(2026, 11, 25, 9, 30), datetime(2026, 11, 25, 16), False
        )


def test_document_with_bad_entries_then_every_problem_listed() -> None:
    document: dict[str, Any] = {
        "first_year": "2025",
        "last_year": 2027,
        "holidays": [{"date": "2025-01-01", "name": "New Year"}, {"date": date(2025, 1, 20)}],
        "early_closes": [{"date": date(2025, 7, 3), "name": "x", "close": "13:00"}],
        "typo": 1,
    }
    with pytest.raises(ConfigurationError) as caught:
        TradingCalendar.from_document(document, "calendar.toml")
    problems = "\n".join(caught.value.problems)
    assert "calendar.toml: typo: unknown key" in problems
    assert "calendar.toml: first_year: must be an integer year" in problems
    assert "holidays[0].date: must be a TOML local date" in problems
    assert "holidays[1].name: must be a string" in problems
    assert "early_closes[0].close: unknown key" in problems
