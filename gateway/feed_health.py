"""Whether the market data the pre-trade checks rely on is live.

A gateway whose feed is gone keeps the last state it saw: a halt published after the feed
dropped never arrives, so orders checked against that state could go out into a halted market.
The checks therefore refuse every order (``MARKET_DATA_STALE``, restriction NO_NEW_ORDERS) while
the market data is stale, and accept again on the first event after it is fresh.

Stale means either:
- the feed disconnected: the last open PublishMarketData stream ended without the publisher
  closing it (a dropped connection, a cancelled call, an error), and no event has arrived since;
  a publisher that closes its stream normally (a batch, a replay) leaves the data fresh;
- the feed went quiet: a publisher stream is open but no event has been accepted for
  ``stale_after`` seconds (0 turns this off). A feed handler streams quotes for the whole
  universe, so seconds of silence during the day mean it is stuck, not that the market is calm.

The clock is the process's monotonic clock (time.monotonic), also with market_clock=feed: this is
about the feed connection being alive, not about exchange time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.domain.orders import Reason

MARKET_DATA_STALE = "MARKET_DATA_STALE"


class FeedHealth:
    """Publisher streams and the last accepted event, and what they say about staleness."""

    def __init__(self, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self._open = 0
        self._last: float | None = None
        self._lost_at: float | None = None  # the feed disconnected (monotonic), until an event

    def opened(self) -> None:
        """A PublishMarketData stream started."""
        self._open += 1

    def closed(self, *, cleanly: bool) -> None:
        """A PublishMarketData stream ended (``cleanly``: its publisher closed it)."""
        self._open -= 1
        if not cleanly and self._open == 0:
            self._lost_at = self._clock()

    def received(self) -> None:
        """An event was accepted: the data is fresh."""
        self._last = self._clock()
        self._lost_at = None

    @property
    def stale(self) -> bool:
        return self.reason() is not None

    def reason(self) -> Reason | None:
        """Why orders must be refused now, or None while the market data is live."""
        if self._lost_at is None and not self._open:
            return None  # every check asks: the usual answer first
        if self._lost_at is not None:
            ago = self._clock() - self._lost_at
            return Reason(
                MARKET_DATA_STALE,
                f"the market data feed disconnected {ago:.1f} s ago; orders are refused until "
                "fresh data arrives",
            )
        if self._open and self.stale_after > 0 and self._last is not None:
            quiet = self._clock() - self._last
            if quiet > self.stale_after:
                return Reason(
                    MARKET_DATA_STALE,
                    f"no market data for {quiet:.1f} s (more than {self.stale_after:g} s) from "
                    "a connected feed; orders are refused until fresh data arrives",
                )
        return None
