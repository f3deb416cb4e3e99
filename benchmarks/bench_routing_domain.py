"""Routing decision in-process: p50/p99 of ``Router.decide`` with six venues.

Two cases: a small marketable order (NBBO check, one child) and a large marketable order split
across six venues (sweep + posted remainder). Plain script; prints figures.

    python -m benchmarks.bench_routing_domain [--decisions 50000]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.domain.fill_probability import FillProbabilityModel
from gateway.domain.orders import OrderRequest, OrderType, Side
from gateway.domain.quotes import QuoteBook, VenueQuote
from gateway.domain.router import Router, RouterSettings
from gateway.domain.venue_health import VenueHealth
from gateway.domain.venues import VenueSet, load_venues

VENUES = ("NASDAQ", "NYSE", "NYSE_ARCA", "IEX", "BATS_BZX", "EDGX")
TARGETS_US = {"nbbo_check": 30.0, "split_six_venues": 60.0}


def _books(count: int, now: datetime, rng: random.Random) -> list[QuoteBook]:
    books = []
    for _ in range(count):
        book = QuoteBook()
        mid_cents = rng.randint(2_000, 40_000)
        for venue in VENUES:
            bid = mid_cents - rng.choice((1, 1, 1, 2, 3))
            ask = mid_cents + rng.choice((1, 1, 1, 2, 3))
            book.update(
                VenueQuote(
                    venue,
                    Decimal(bid) / 100,
                    rng.randrange(100, 2_000, 100),
                    Decimal(ask) / 100,
                    rng.randrange(100, 2_000, 100),
                    now - timedelta(milliseconds=rng.randint(0, 500)),
                )
            )
        books.append(book)
    return books


def _measure(
    router: Router,
    cases: list[tuple[OrderRequest, QuoteBook]],
    venues: VenueSet,
    now: datetime,
) -> dict[str, float]:
    samples = []
    clock = time.perf_counter_ns
    decide = router.decide
    for order, book in cases:
        start = clock()
        decide(order, book, venues, now)
        samples.append(clock() - start)
    samples.sort()
    n = len(samples)
    return {
        "p50": samples[n // 2] / 1000,
        "p90": samples[int(n * 0.90)] / 1000,
        "p99": samples[int(n * 0.99)] / 1000,
        "p99.9": samples[int(n * 0.999)] / 1000,
        "mean": sum(samples) / n / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    now = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 11:00 ET
    venues = load_venues(trade_date=now.date())
    router = Router(RouterSettings(), FillProbabilityModel(venues), VenueHealth(venues))
    books = _books(1_000, now, rng)
    cases: dict[str, list[tuple[OrderRequest, QuoteBook]]] = {
        "nbbo_check": [],
        "split_six_venues": [],
    }
    for i in range(args.decisions):
        book = books[i % len(books)]
        side = Side.BUY if i % 2 == 0 else Side.SELL
        nbbo = book.nbbo
        assert nbbo.bid_price is not None and nbbo.ask_price is not None
        far = nbbo.ask_price if side is Side.BUY else nbbo.bid_price
        # Small: marketable limit at the NBBO, 100-300 shares (one child after the NBBO check).
        cases["nbbo_check"].append(
            (OrderRequest(f"s{i}", "A", "SYM", side, OrderType.LIMIT, 100 * (1 + i % 3), far), book)
        )
        # Large: 6,000-9,000 shares, limit 5 cents through: sweeps every top, posts the rest.
        through = far + Decimal("0.05") if side is Side.BUY else far - Decimal("0.05")
        cases["split_six_venues"].append(
            (
                OrderRequest(
                    f"l{i}", "A", "SYM", side, OrderType.LIMIT, 6_000 + 1_000 * (i % 4), through
                ),
                book,
            )
        )
    # Warm up (caches per venue-set version, tick rules, fill tables), then freeze the heap so
    # the collector does not walk the setup objects during the measurement.
    for items in cases.values():
        _measure(router, items[:2_000], venues, now)
    gc.collect()
    gc.freeze()
    print(
        f"Router.decide, six venues, {args.decisions} decisions per case "
        f"(Python {sys.version.split()[0]})"
    )
    for name, items in cases.items():
        result = _measure(router, items, venues, now)
        children = router.decide(items[0][0], items[0][1], venues, now).child_orders
        verdict = "OK" if result["p99"] <= TARGETS_US[name] else "OVER TARGET"
        print(
            f"  {name:18s} p50 {result['p50']:6.1f} us  p90 {result['p90']:6.1f} us  "
            f"p99 {result['p99']:6.1f} us  p99.9 {result['p99.9']:6.1f} us  "
            f"mean {result['mean']:6.1f} us  (children in first case: {len(children)})  "
            f"target p99 <= {TARGETS_US[name]:.0f} us: {verdict}"
        )


if __name__ == "__main__":
    main()
