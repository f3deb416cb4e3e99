"""A minimal trading session for the rule modules' tests (any object with these attributes will
do: the rule modules take a ``SessionTimes`` protocol, not the calendar)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
DAY = date(2026, 11, 18)  # a Wednesday
EARLY_CLOSE_DAY = date(2026, 11, 27)  # the day after Thanksgiving, 13:00 close


@dataclass(frozen=True, slots=True)
class FakeSession:
    trade_date: date
    open_at: datetime
    close_at: datetime
    early_close: bool = False

    @property
    def close_shift(self) -> timedelta:
        return self.close_at - datetime.combine(self.trade_date, time(16), tzinfo=NY)


def session(day: date = DAY, *, early: bool = False) -> FakeSession:
    close = time(13) if early else time(16)
    return FakeSession(
        day,
        datetime.combine(day, time(9, 30), tzinfo=NY),
        datetime.combine(day, close, tzinfo=NY),
        early,
    )


def at(clock: str, day: date = DAY) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=NY)
