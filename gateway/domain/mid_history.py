"""NBBO midpoint history: the mid of a symbol at any moment, from recorded changes.

Each entry says "the mid is ``mid`` from ``at`` on", until the next entry of the symbol. The mid at
a moment is the latest entry at or before it (the later one when two share a time). History is
known only up to ``as_of`` (the exchange time it was read at): a moment after that has no mid yet,
so a markout whose horizon has not passed is left out rather than taken from an earlier mid.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal


class MidHistory:
    """Recorded mids per symbol (a ``gateway.domain.pnl.MidSource``).

    Args:
        entries: (symbol, at, mid) in any order.
        as_of: the latest moment the history describes; later moments have no mid.
    """

    __slots__ = ("_as_of", "_mids", "_times")

    def __init__(self, entries: Iterable[tuple[str, datetime, Decimal]], as_of: datetime) -> None:
        by_symbol: dict[str, list[tuple[datetime, int, Decimal]]] = {}
        for n, (symbol, at, mid) in enumerate(entries):
            by_symbol.setdefault(symbol, []).append((at, n, mid))
        self._times: dict[str, list[datetime]] = {}
        self._mids: dict[str, list[Decimal]] = {}
        for symbol, items in by_symbol.items():
            items.sort(key=lambda item: (item[0], item[1]))
            self._times[symbol] = [at for at, _, _ in items]
            self._mids[symbol] = [mid for _, _, mid in items]
        self._as_of = as_of

    @property
    def as_of(self) -> datetime:
        return self._as_of

    def mid_at(self, symbol: str, at: datetime) -> Decimal | None:
        """Return the mid of ``symbol`` at ``at``; None before its first entry, after ``as_of``."""
        if at > self._as_of:
            return None
        times = self._times.get(symbol)
        if not times:
            return None
        index = bisect_right(times, at)
        return self._mids[symbol][index - 1] if index else None
