"""The NBBO mid history P&L attribution reads: sampled from market state, kept in PostgreSQL.

Why sampling. Markouts and timing cost need the mid at each fill and a horizon after it, for fills
that may be reported long after they happened, and they must survive a restart. The market-data
path (a quote is applied in about a microsecond) and the fill path (``RecordFill``) gain nothing:
an owned task (``run``) wakes every ``interval`` seconds (the ``mid_sample_seconds`` setting),
reads the NBBO of every symbol the market-state engine holds and queues, for each symbol whose mid
changed since the last sample, one row (symbol, time of the quote that set the book, mid) with
the ``storage.nbbo_mids`` recorder, which writes them in batches off the hot path. A symbol whose
book object has not changed costs one identity comparison. Crossed books and one-sided books
(no mid) are not recorded.

What it means for attribution. The mid at a moment is the latest recorded mid at or before it, so
its resolution is the sampling interval: a mid that lasted less than one interval may be missed,
and a change is stamped with the time of the latest quote in the book when it was sampled. Before
P&L is computed, ``flush`` samples once more and waits for the queue to be written, so the history
is complete up to the moment of the request (``as_of``). Across a restart the rows stay; the
sampler starts again from an empty memory, so the first sample records every symbol's mid again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from gateway.domain.market_state import MarketStateEngine
from gateway.domain.quotes import Nbbo
from storage.nbbo_mids import MidRow

log = logging.getLogger(__name__)


class MidSink(Protocol):
    """Where sampled mids go (``storage.nbbo_mids.NbboMidRecorder``)."""

    def record_mid(self, row: MidRow) -> None: ...
    async def flush(self, timeout: float) -> None: ...


class MidSampler:
    """Samples the NBBO mid of every symbol of ``engine`` and records the changes."""

    def __init__(
        self, engine: MarketStateEngine, now: Callable[[], datetime], recorder: MidSink
    ) -> None:
        self._engine = engine
        self._now = now
        self._recorder = recorder
        self._books: dict[str, Nbbo] = {}
        self._mids: dict[str, Decimal] = {}
        self.recorded = 0

    def sample(self) -> int:
        """Queue the mids that changed since the last sample; return how many."""
        seen, mids = self._books, self._mids
        changed = 0
        now: datetime | None = None
        for symbol, state in self._engine.symbols.items():
            nbbo = state.book.nbbo
            if seen.get(symbol) is nbbo:
                continue
            seen[symbol] = nbbo
            mid = nbbo.mid
            if mid is None or nbbo.is_crossed or mid == mids.get(symbol):
                continue
            mids[symbol] = mid
            at = nbbo.time
            if at is None:
                at = now = now or self._now()
            self._recorder.record_mid(MidRow(symbol, at, mid))
            changed += 1
        self.recorded += changed
        return changed

    async def flush(self, timeout: float) -> datetime:
        """Sample now and wait until every sampled mid is written; return the time sampled at.

        Raises DatabaseUnavailable when writing takes more than ``timeout`` seconds.
        """
        at = self._now()
        self.sample()
        await self._recorder.flush(timeout)
        return at

    async def run(self, interval: float) -> None:
        """Sample every ``interval`` seconds until cancelled (an owned task of the lifespan)."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.sample()
            except Exception:  # one bad sample must not stop the history
                log.exception("mid sample failed")
