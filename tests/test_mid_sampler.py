"""The mid sampler records each symbol's NBBO mid when it changes, and nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from gateway.domain.calendar import TradingCalendar
from gateway.domain.feed import QuoteUpdate
from gateway.domain.market_state import MarketStateEngine
from gateway.mid_sampler import MidSampler
from storage.nbbo_mids import MidRow

OPEN = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("America/New_York"))


class Rows:
    """A sink that keeps what it is given (a fake of the recorder)."""

    def __init__(self) -> None:
        self.rows: list[MidRow] = []

    def record_mid(self, row: MidRow) -> None:
        self.rows.append(row)

    async def flush(self, timeout: float) -> None:
        return None


def quote(at: datetime, venue: str, bid: str | None, ask: str | None) -> QuoteUpdate:
    return QuoteUpdate(
        "AAPL",
        at,
        venue,
        None if bid is None else Decimal(bid),
        0 if bid is None else 100,
        None if ask is None else Decimal(ask),
        0 if ask is None else 100,
    )


def test_sample_when_mid_changes_then_one_row_stamped_with_the_quote_time() -> None:
    engine = MarketStateEngine(TradingCalendar.default())
    sink = Rows()
    sampler = MidSampler(engine, lambda: OPEN, sink)
    assert sampler.sample() == 0  # no symbol yet
    engine.apply(quote(OPEN, "NASDAQ", None, "10.02"))
    assert sampler.sample() == 0  # one-sided: no mid
    engine.apply(quote(OPEN + timedelta(seconds=1), "NASDAQ", "10.00", "10.02"))
    assert sampler.sample() == 1
    assert sampler.sample() == 0  # nothing changed
    # A venue joining the NBBO at the same prices changes the book, not the mid.
    engine.apply(quote(OPEN + timedelta(seconds=2), "NYSE", "10.00", "10.02"))
    assert sampler.sample() == 0
    engine.apply(quote(OPEN + timedelta(seconds=3), "NYSE", "10.02", "10.04"))
    engine.apply(quote(OPEN + timedelta(seconds=4), "NASDAQ", "10.03", "10.05"))
    assert sampler.sample() == 1  # two quotes between samples: the mid in force when sampled
    assert [(r.at - OPEN, r.mid) for r in sink.rows] == [
        (timedelta(seconds=1), Decimal("10.01")),
        (timedelta(seconds=4), Decimal("10.035")),
    ]
