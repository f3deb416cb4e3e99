"""Trading calendar: which days the US equity markets trade, and their regular-hours session.

Holidays and early-close days come from ``gateway/data/calendar.toml`` (the exchanges' published
calendar), never from a rule of thumb (market rules section 5). Every time is an aware datetime in
``EXCHANGE_TZ``; the calendar never reads the clock, callers pass ``now``.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from gateway.errors import ConfigurationError, ExecgwError

EXCHANGE_TZ = ZoneInfo("America/New_York")
REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)

_ONE_DAY = timedelta(days=1)
_SATURDAY = 5
_SOURCE = "gateway/data/calendar.toml"


class CalendarError(ExecgwError, ValueError):
    """A date outside the years the calendar covers: the data file needs extending."""

    reason = "CALENDAR_NOT_COVERED"


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class Session:
    """The regular-hours session of one trading day (09:30 to 16:00 ET, or to 13:00 ET).

    Attributes:
        trade_date: The exchange (ET) date of the session.
        open_at: Start of regular hours, aware, in ``EXCHANGE_TZ``.
        close_at: End of regular hours, aware, in ``EXCHANGE_TZ``.
        early_close: Whether this is a 13:00 close.
    """

    trade_date: date
    open_at: datetime
    close_at: datetime
    early_close: bool

    def __post_init__(self) -> None:
        _require_aware(self.open_at, "open_at")
        _require_aware(self.close_at, "close_at")
        if self.close_at <= self.open_at:
            raise ValueError(f"session {self.trade_date}: close_at must be after open_at")

    @property
    def close_shift(self) -> timedelta:
        """Offset of this close from the regular 16:00 close: zero, or -3 h on an early close."""
        return self.close_at - self.at(REGULAR_CLOSE)

    def at(self, t: time, close_relative: bool = False) -> datetime:
        """Return wall-clock time ``t`` (ET) on the session day.

        Args:
            t: A naive wall-clock time in ET, e.g. ``time(15, 50)``.
            close_relative: Shift by ``close_shift``: times defined relative to a 16:00 close move
                with an early close (market rules section 5: NYSE MOC cut-off 15:50 -> 12:50).
        """
        moment = datetime.combine(self.trade_date, t, tzinfo=EXCHANGE_TZ)
        if close_relative:
            # Aware + timedelta is wall-clock arithmetic, as the exchanges define the shift.
            moment += self.close_shift
        return moment

    def is_open(self, now: datetime) -> bool:
        """Return whether ``now`` is within regular hours (open <= now < close)."""
        _require_aware(now, "now")
        return self.open_at <= now < self.close_at


class TradingCalendar:
    """Full-day holidays and early closes for a range of covered years.

    Every weekday of a covered year that is not a holiday is a trading day. Asking about a date in
    a year that is not covered raises ``CalendarError`` rather than guessing.
    """

    __slots__ = ("_early_closes", "_first_year", "_holidays", "_last_year")

    def __init__(
        self,
        holidays: Iterable[date],
        early_closes: Iterable[date] = (),
        *,
        first_year: int | None = None,
        last_year: int | None = None,
    ) -> None:
        """Build a calendar; the covered years default to those of the dates given.

        Raises:
            ValueError: A holiday on a weekend, an early close that is not a trading day, a date
                outside the covered years, or no years at all.
        """
        self._holidays = frozenset(holidays)
        self._early_closes = frozenset(early_closes)
        years = {d.year for d in self._holidays | self._early_closes}
        first = first_year if first_year is not None else min(years, default=None)
        last = last_year if last_year is not None else max(years, default=None)
        if first is None or last is None or first > last:
            raise ValueError("a trading calendar needs a non-empty range of covered years")
        self._first_year = first
        self._last_year = last
        problems = [
            f"date {d} is outside the covered years {first}..{last}"
            for d in sorted(self._holidays | self._early_closes)
            if not first <= d.year <= last
        ]
        problems += [
            f"holiday {d} falls on a weekend"
            for d in sorted(self._holidays)
            if d.weekday() >= _SATURDAY
        ]
        problems += [
            f"early close {d} is not a trading day"
            for d in sorted(self._early_closes)
            if d.weekday() >= _SATURDAY or d in self._holidays
        ]
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def default(cls) -> TradingCalendar:
        """Return the calendar shipped in ``gateway/data/calendar.toml`` (loaded once)."""
        return _default_calendar()

    @classmethod
    def from_document(cls, document: Mapping[str, Any], source: str = _SOURCE) -> TradingCalendar:
        """Build a calendar from a parsed calendar TOML document.

        Raises:
            ConfigurationError: Listing every problem found in the document.
        """
        problems: list[str] = []
        unknown = set(document) - {"first_year", "last_year", "holidays", "early_closes"}
        problems += [f"{source}: {key}: unknown key" for key in sorted(unknown)]
        years: list[int] = []
        for key in ("first_year", "last_year"):
            value = document.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                years.append(value)
            else:
                problems.append(f"{source}: {key}: must be an integer year")
        holidays = _dates(document, "holidays", source, problems)
        early_closes = _dates(document, "early_closes", source, problems)
        if not problems:
            try:
                return cls(holidays, early_closes, first_year=years[0], last_year=years[1])
            except ValueError as exc:
                problems.append(f"{source}: {exc}")
        raise ConfigurationError(problems)

    @property
    def first_year(self) -> int:
        return self._first_year

    @property
    def last_year(self) -> int:
        return self._last_year

    def covers(self, d: date) -> bool:
        """Return whether ``d`` is in a year this calendar knows."""
        return self._first_year <= d.year <= self._last_year

    def is_trading_day(self, d: date) -> bool:
        """Return whether the markets trade on ``d`` (a weekday that is not a holiday).

        Raises:
            CalendarError: ``d`` is outside the covered years.
        """
        self._check(d)
        return d.weekday() < _SATURDAY and d not in self._holidays

    def is_early_close(self, d: date) -> bool:
        """Return whether ``d`` is a trading day that closes at 13:00 ET."""
        return self.is_trading_day(d) and d in self._early_closes

    def session(self, d: date) -> Session | None:
        """Return the regular-hours session of ``d``, or None when the markets are closed."""
        if not self.is_trading_day(d):
            return None
        early = d in self._early_closes
        return Session(
            trade_date=d,
            open_at=datetime.combine(d, REGULAR_OPEN, tzinfo=EXCHANGE_TZ),
            close_at=datetime.combine(
                d, EARLY_CLOSE if early else REGULAR_CLOSE, tzinfo=EXCHANGE_TZ
            ),
            early_close=early,
        )

    def next_trading_day(self, d: date) -> date:
        """Return the first trading day strictly after ``d``.

        Raises:
            CalendarError: The answer would lie outside the covered years.
        """
        candidate = d + _ONE_DAY
        while not self.is_trading_day(candidate):
            candidate += _ONE_DAY
        return candidate

    def previous_trading_day(self, d: date) -> date:
        """Return the last trading day strictly before ``d``.

        Raises:
            CalendarError: The answer would lie outside the covered years.
        """
        candidate = d - _ONE_DAY
        while not self.is_trading_day(candidate):
            candidate -= _ONE_DAY
        return candidate

    @staticmethod
    def trade_date_of(now: datetime) -> date:
        """Return the exchange (ET) calendar date of the aware instant ``now``."""
        _require_aware(now, "now")
        return now.astimezone(EXCHANGE_TZ).date()

    def _check(self, d: date) -> None:
        if not self.covers(d):
            raise CalendarError(
                f"{d} is outside the trading calendar, which covers "
                f"{self._first_year}-01-01 to {self._last_year}-12-31"
            )


def _dates(document: Mapping[str, Any], key: str, source: str, problems: list[str]) -> list[date]:
    entries = document.get(key, [])
    if not isinstance(entries, list):
        problems.append(f"{source}: {key}: must be an array of tables")
        return []
    found: list[date] = []
    for i, entry in enumerate(entries):
        where = f"{source}: {key}[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: must be a table")
            continue
        problems += [f"{where}.{k}: unknown key" for k in sorted(set(entry) - {"date", "name"})]
        value = entry.get("date")
        # A TOML local date parses to date; a local date-time would parse to datetime (a subclass).
        if isinstance(value, date) and not isinstance(value, datetime):
            found.append(value)
        else:
            problems.append(f"{where}.date: must be a TOML local date (YYYY-MM-DD)")
        if not isinstance(entry.get("name"), str):
            problems.append(f"{where}.name: must be a string")
    return found


@functools.cache
def _default_calendar() -> TradingCalendar:
    text = resources.files("gateway").joinpath("data/calendar.toml").read_text("utf-8")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError([f"{_SOURCE}: {exc}"]) from exc
    return TradingCalendar.from_document(document)
