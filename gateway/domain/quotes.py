"""Per-venue top of book and the national best bid and offer (NBBO) of one symbol.

The market-state engine owns one ``QuoteBook`` per symbol; the halt checks read its NBBO and the
router reads both the NBBO and the per-venue quotes. There is exactly one book per symbol.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class VenueQuote:
    """Top of book of one venue. A side with no quote has price None and size 0."""

    venue: str
    bid_price: Decimal | None
    bid_size: int
    ask_price: Decimal | None
    ask_size: int
    time: datetime

    @property
    def is_crossed(self) -> bool:
        return (
            self.bid_price is not None
            and self.ask_price is not None
            and self.bid_price > self.ask_price
        )


@dataclass(frozen=True, slots=True)
class Nbbo:
    """National best bid and offer with the aggregate size displayed at each."""

    bid_price: Decimal | None
    bid_size: int
    ask_price: Decimal | None
    ask_size: int
    time: datetime | None

    @property
    def mid(self) -> Decimal | None:
        if self.bid_price is None or self.ask_price is None:
            return None
        return (self.bid_price + self.ask_price) / 2

    @property
    def is_crossed(self) -> bool:
        return (
            self.bid_price is not None
            and self.ask_price is not None
            and self.bid_price > self.ask_price
        )

    @property
    def is_locked(self) -> bool:
        return self.bid_price is not None and self.bid_price == self.ask_price


EMPTY_NBBO = Nbbo(None, 0, None, 0, None)


class QuoteBook:
    """Latest quote of every venue for one symbol, and the NBBO derived from them.

    Not a value: the engine that owns it updates it in place, event by event.
    """

    __slots__ = ("_nbbo", "_quotes")

    def __init__(self) -> None:
        self._quotes: dict[str, VenueQuote] = {}
        self._nbbo: Nbbo = EMPTY_NBBO

    @property
    def nbbo(self) -> Nbbo:
        return self._nbbo

    def quote(self, venue: str) -> VenueQuote | None:
        return self._quotes.get(venue)

    def __iter__(self) -> Iterator[VenueQuote]:
        return iter(self._quotes.values())

    def __len__(self) -> int:
        return len(self._quotes)

    def update(self, quote: VenueQuote) -> Nbbo:
        """Replace the venue's quote and return the new NBBO."""
        self._quotes[quote.venue] = quote
        self._nbbo = _best(self._quotes.values())
        return self._nbbo

    def remove(self, venue: str) -> Nbbo:
        """Drop a venue's quote (venue halted or down) and return the new NBBO."""
        if self._quotes.pop(venue, None) is not None:
            self._nbbo = _best(self._quotes.values())
        return self._nbbo


def _best(quotes: Iterable[VenueQuote]) -> Nbbo:
    bid: Decimal | None = None
    bid_size = 0
    ask: Decimal | None = None
    ask_size = 0
    latest: datetime | None = None
    for q in quotes:
        if latest is None or q.time > latest:
            latest = q.time
        if q.bid_price is not None and q.bid_size > 0:
            if bid is None or q.bid_price > bid:
                bid, bid_size = q.bid_price, q.bid_size
            elif q.bid_price == bid:
                bid_size += q.bid_size
        if q.ask_price is not None and q.ask_size > 0:
            if ask is None or q.ask_price < ask:
                ask, ask_size = q.ask_price, q.ask_size
            elif q.ask_price == ask:
                ask_size += q.ask_size
    return Nbbo(bid, bid_size, ask, ask_size, latest)
