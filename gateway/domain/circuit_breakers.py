"""Market-wide circuit breakers (NYSE 7.12, Nasdaq 4121): S&P 500 declines of 7%, 13% and 20%.

A Level 1 or Level 2 decline at or before 15:25 (close-relative: 12:25 on a 13:00 close) halts all
stocks for 15 minutes; after that they reopen through the listing exchanges' reopening auctions.
Each of Level 1 and Level 2 halts at most once a day; a Level 2 can follow a Level 1, also during
the Level 1 halt. After the cut-off Levels 1 and 2 are recorded but do not halt. Level 3 halts
trading for the rest of the day at any time.

Decisions:
- "At or before 15:25" is inclusive to the microsecond: 15:25:00 halts, 15:25:00.000001 does not.
- A level is reached when the index is at or below its trigger, the prior close times (1 -
  threshold) rounded half up to the index's 2 decimals. Index levels outside regular hours are
  ignored (the rule applies to declines during regular trading hours).
- A halt message from the feed (MWC1/2/3) is authoritative: it is applied even when the index
  never crossed, and even after the cut-off, but never twice with a computed trigger.
- MWC0 (Level 3 carried over from the previous day) halts until a resumption (MWCQ) arrives; it
  does not make today a Level 3 day. A resumption never lifts a Level 3 halt of the same day.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from gateway.domain.auctions import SessionTimes
from gateway.domain.halt_codes import lookup
from gateway.domain.prices import PENNY


class Level(enum.IntEnum):
    NONE = 0
    LEVEL_1 = 1
    LEVEL_2 = 2
    LEVEL_3 = 3

    @property
    def code(self) -> str:
        """UTP halt code of the level ("MWC1"...); empty for NONE."""
        return f"MWC{self.value}" if self else ""


@dataclass(frozen=True, slots=True)
class CircuitBreakerSettings:
    """Thresholds (fractions of the prior close) and timing of the market-wide breakers."""

    thresholds: tuple[Decimal, Decimal, Decimal] = (
        Decimal("0.07"),
        Decimal("0.13"),
        Decimal("0.20"),
    )
    # On the 16:00 clock; moves with an early close (12:25 on a 13:00 close).
    halt_cutoff: time = time(15, 25)
    halt_duration: timedelta = timedelta(minutes=15)
    index: str = "SPX"
    index_increment: Decimal = PENNY

    def __post_init__(self) -> None:
        low, mid, high = self.thresholds
        if not Decimal(0) < low < mid < high < Decimal(1):
            raise ValueError("thresholds must be increasing fractions between 0 and 1")
        if self.halt_duration <= timedelta(0):
            raise ValueError("halt_duration must be positive")


DEFAULT_SETTINGS = CircuitBreakerSettings()
_LEVELS = (Level.LEVEL_1, Level.LEVEL_2, Level.LEVEL_3)


def trigger_levels(
    prior_close: Decimal, settings: CircuitBreakerSettings = DEFAULT_SETTINGS
) -> dict[Level, Decimal]:
    """Return the index value of each level: 5,000.00 -> 4,650.00 / 4,350.00 / 4,000.00.

    NYSE 7.12(a): the decline is measured from the prior day's closing value of the index.
    """
    if prior_close <= 0:
        raise ValueError("prior close of the index must be positive")
    return {
        level: (prior_close * (1 - threshold)).quantize(
            settings.index_increment, rounding=ROUND_HALF_UP
        )
        for level, threshold in zip(_LEVELS, settings.thresholds, strict=True)
    }


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """A level newly reached or declared, and what it does to trading."""

    level: Level
    at: datetime
    halted: bool
    halted_until: datetime | None
    for_rest_of_day: bool
    code: str


class MarketWideBreaker:
    """The market-wide breaker state of one trading day (the engine owns one per day)."""

    __slots__ = (
        "_carried_over",
        "_cutoff",
        "_halt_ended_at",
        "_halted_for_day",
        "_halted_levels",
        "_halted_until",
        "_reached",
        "_session",
        "_settings",
        "_triggers",
        "prior_close",
        "trade_date",
    )

    def __init__(
        self,
        trade_date: date,
        prior_close: Decimal,
        session: SessionTimes,
        settings: CircuitBreakerSettings = DEFAULT_SETTINGS,
    ) -> None:
        if session.trade_date != trade_date:
            raise ValueError(f"session is for {session.trade_date}, not {trade_date}")
        self.trade_date = trade_date
        self.prior_close = prior_close
        self._session = session
        self._settings = settings
        self._triggers = trigger_levels(prior_close, settings)
        wall = datetime.combine(trade_date, settings.halt_cutoff, tzinfo=session.close_at.tzinfo)
        self._cutoff = wall + session.close_shift
        self._reached: set[Level] = set()
        self._halted_levels: set[Level] = set()
        self._halted_until: datetime | None = None
        self._halted_for_day = False
        self._carried_over = False
        self._halt_ended_at: datetime | None = None

    @property
    def triggers(self) -> dict[Level, Decimal]:
        """Index value of each level for the day."""
        return dict(self._triggers)

    def on_index_level(self, level: Decimal, now: datetime) -> BreakerEvent | None:
        """Record an index value; return the highest newly reached level's event, if any."""
        if not self._session.open_at <= now < self._session.close_at:
            return None
        new = [lv for lv in _LEVELS if level <= self._triggers[lv] and lv not in self._reached]
        if not new:
            return None
        self._reached.update(new)
        return self._apply(max(new), now, declared=False)

    def on_halt_message(self, code: str, now: datetime) -> BreakerEvent | None:
        """Apply a market-wide halt declared by the feed (MWC1, MWC2, MWC3, MWC0).

        MWCQ is passed on to ``on_resume``. Returns None when the halt is already in force.

        Raises:
            ValueError: ``code`` is not a market-wide code (``UnknownHaltCode`` when unknown).
        """
        halt = lookup(code)
        if not halt.is_market_wide:
            raise ValueError(f"{halt.code} is not a market-wide circuit breaker code")
        if halt.code == "MWCQ":
            self.on_resume(now)
            return None
        if halt.code == "MWC0":
            if self._carried_over or self._halted_for_day:
                return None
            self._carried_over = True
            return BreakerEvent(Level.LEVEL_3, now, True, None, False, halt.code)
        level = Level(int(halt.code[-1]))
        if any(done >= level for done in self._halted_levels):
            return None  # already halted at this level or above (a Level 1 never follows a 2)
        # A declared decline has passed every lower level too.
        self._reached.update(lv for lv in _LEVELS if lv <= level)
        return self._apply(level, now, declared=True)

    def on_resume(self, now: datetime) -> bool:
        """End the market-wide halt in force at ``now`` (MWCQ); return whether anything ended.

        A Level 3 halt of the same day is never lifted: it lasts for the rest of the day.
        """
        if self._halted_for_day:
            return False
        ended = False
        if self._carried_over:
            self._carried_over = False
            ended = True
        if self._halted_until is not None and now < self._halted_until:
            self._halted_until = now
            ended = True
        if ended:
            self._halt_ended_at = now
        return ended

    def _apply(self, level: Level, now: datetime, *, declared: bool) -> BreakerEvent:
        code = level.code
        if level is Level.LEVEL_3:
            # NYSE 7.12(a)(3): Level 3 halts trading for the remainder of the day.
            self._halted_levels.add(level)
            self._halted_for_day = True
            return BreakerEvent(level, now, True, None, True, code)
        halts = (declared or now <= self._cutoff) and not self._halted_for_day
        if not halts or level in self._halted_levels:
            # NYSE 7.12(a)(1)-(2): after 15:25 (or once already used) Levels 1/2 do not halt.
            return BreakerEvent(level, now, False, None, False, code)
        self._halted_levels.add(level)
        until = now + self._settings.halt_duration
        if self._halted_until is not None and self._halted_until > until:
            until = self._halted_until
        self._halted_until = until
        self._halt_ended_at = until
        return BreakerEvent(level, now, True, until, False, code)

    def halted(self, now: datetime) -> bool:
        """Whether a market-wide halt is in force at ``now``."""
        if self._halted_for_day or self._carried_over:
            return True
        return self._halted_until is not None and now < self._halted_until

    @property
    def halted_until(self) -> datetime | None:
        """End of the latest 15-minute halt (possibly past); None if none or for the day."""
        return None if self._halted_for_day else self._halted_until

    @property
    def halted_for_day(self) -> bool:
        """Whether Level 3 halted trading for the rest of the day."""
        return self._halted_for_day

    @property
    def carried_over(self) -> bool:
        """Whether a Level 3 halt carried over from the previous day (MWC0) is still in force."""
        return self._carried_over

    @property
    def levels_triggered(self) -> tuple[Level, ...]:
        """Every level reached or declared today, lowest first."""
        return tuple(sorted(self._reached))

    @property
    def level(self) -> Level:
        """The highest level reached or declared today (NONE when none)."""
        return max(self._reached, default=Level.NONE)

    def reopening(self, now: datetime) -> bool:
        """Whether a market-wide halt has ended by ``now`` and trading is not halted.

        From then on stocks reopen through their listing exchanges' reopening auctions; the engine
        decides per symbol whether its reopening has happened.
        """
        ended = self._halt_ended_at
        return ended is not None and ended <= now and not self.halted(now)
