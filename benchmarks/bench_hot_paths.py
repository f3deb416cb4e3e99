"""Hot paths in-process: p50/p99/p99.9 of each per-request domain operation, one call at a time.

No gRPC, no database. Each operation is timed alone with ``perf_counter_ns`` over inputs built
before the clock starts, after a warm-up, with the setup heap frozen (``gc.freeze``) so the
collector does not walk it while timing; the timer's own cost is printed and included.

    pretrade_check       ``check_order`` on an engine loaded with ``--symbols`` symbols; the order
                         mix of ``bench_halt_safety.py`` (allowed, above band, Reg SHO, halted)
    pretrade_guard       ``HaltGuard.check``: the same plus the metric and compliance record
    routing_nbbo         ``Router.decide``, six venues, 100-300 shares at the NBBO (one child)
    routing_split        ``Router.decide``, 6,000-9,000 shares through six venues (sweep + post)
    luld_trade           ``MarketStateEngine.apply`` of one trade print: LULD reference price over
                         its 5-minute window, bands recomputed when it moves, Reg SHO 201 check
    position_update      ``PositionBook.apply`` of one fill (average cost)
    fee_calculation      ``FeeCalculator.fees`` of one fill (venue schedule, SEC fee, FINRA TAF)

The setup comes from the other benchmarks (``bench_halt_safety``, ``bench_routing_domain``,
``bench_journal_domain``): the same universes and inputs, imported, not copied.

Usage:
    python benchmarks/bench_hot_paths.py [--iterations 50000] [--symbols 3000] [--seed 7]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# After the path is set (the script runs from anywhere).
from benchmarks import bench_halt_safety as halts  # noqa: E402
from benchmarks import bench_journal_domain as journal  # noqa: E402
from benchmarks import bench_routing_domain as routing  # noqa: E402
from gateway.domain.feed import TradeReport  # noqa: E402
from gateway.domain.fees import FeeCalculator, FeeSettings  # noqa: E402
from gateway.domain.fill_probability import FillProbabilityModel  # noqa: E402
from gateway.domain.orders import OrderRequest, OrderType, Side  # noqa: E402
from gateway.domain.positions import PositionBook  # noqa: E402
from gateway.domain.pretrade import PretradeSettings, check_order  # noqa: E402
from gateway.domain.quotes import QuoteBook  # noqa: E402
from gateway.domain.router import Router, RouterSettings  # noqa: E402
from gateway.domain.venue_health import VenueHealth  # noqa: E402
from gateway.domain.venues import load_venues  # noqa: E402

LABELS = {
    "pretrade_check": "pre-trade check (check_order)",
    "pretrade_guard": "pre-trade check + metric/record (HaltGuard.check)",
    "routing_nbbo": "routing decision, 100-300 sh at the NBBO",
    "routing_split": "routing decision, 6-9k sh split over 6 venues",
    "luld_trade": "LULD update on a trade (engine.apply)",
    "position_update": "position update (average cost)",
    "fee_calculation": "fee calculation",
}


@dataclass(frozen=True)
class Case:
    """One operation and the inputs it is timed over, one call per input."""

    name: str
    operation: Callable[[Any], object]
    inputs: Sequence[Any]


def timed(operation: Callable[[Any], object], inputs: Sequence[Any]) -> list[int]:
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    for item in inputs:
        started = clock()
        operation(item)
        append(clock() - started)
    return samples


def figures(samples: list[int]) -> dict[str, float]:
    """p50, p99, p99.9 and mean in microseconds."""
    ordered = sorted(samples)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] / 1000

    return {
        "p50_us": at(0.5),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "mean_us": sum(ordered) / n / 1000,
        "samples": n,
    }


def pretrade_cases(symbols: int, iterations: int, rng: random.Random) -> list[Case]:
    universe = halts.universe(symbols, rng)
    setup = halts.setup_events(universe, rng)
    guard = halts.new_guard(setup, "feed")
    engine = guard.engine
    batch, _ = halts.orders(universe, engine, iterations, rng)
    settings = PretradeSettings()
    return [
        Case("pretrade_check", lambda o: check_order(engine, o, halts.NOW, settings), batch),
        Case("pretrade_guard", lambda o: guard.check(o, "CheckOrder"), batch),
    ]


def luld_case(symbols: int, iterations: int, rng: random.Random) -> Case:
    """Trade prints from the market-data stream of ``bench_halt_safety`` (time-ordered, skewed to
    a few active symbols, within the bands), applied to a freshly loaded engine."""
    universe = halts.universe(symbols, rng)
    engine = halts.loaded_engine(halts.setup_events(universe, rng))
    trades: list[TradeReport] = []
    while len(trades) < iterations:
        # Trades are 15% of the stream; the stream's event times start again at 10:00 ET, so
        # extend it in time by continuing after the last one instead of regenerating.
        events = halts.stream(universe, max(1_000, (iterations - len(trades)) * 8), rng)
        offset = (trades[-1].at - halts.NOW) if trades else None
        for event in events:
            if isinstance(event, TradeReport):
                shifted = event.at + offset + halts.EVENT_SPACING if offset else event.at
                trades.append(replace(event, at=shifted))
    return Case("luld_trade", engine.apply, trades[:iterations])


def routing_cases(iterations: int, rng: random.Random) -> list[Case]:
    now = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 11:00 ET, as bench_routing_domain
    venues = load_venues(trade_date=now.date())
    router = Router(RouterSettings(), FillProbabilityModel(venues), VenueHealth(venues))
    books = routing._books(1_000, now, rng)
    small: list[tuple[OrderRequest, QuoteBook]] = []
    large: list[tuple[OrderRequest, QuoteBook]] = []
    for i in range(iterations):
        book = books[i % len(books)]
        side = Side.BUY if i % 2 == 0 else Side.SELL
        nbbo = book.nbbo
        assert nbbo.bid_price is not None and nbbo.ask_price is not None
        far = nbbo.ask_price if side is Side.BUY else nbbo.bid_price
        small.append(
            (OrderRequest(f"s{i}", "A", "SYM", side, OrderType.LIMIT, 100 * (1 + i % 3), far), book)
        )
        through = far + Decimal("0.05") if side is Side.BUY else far - Decimal("0.05")
        quantity = 6_000 + 1_000 * (i % 4)
        large.append(
            (OrderRequest(f"l{i}", "A", "SYM", side, OrderType.LIMIT, quantity, through), book)
        )

    def decide(case: tuple[OrderRequest, QuoteBook]) -> object:
        return router.decide(case[0], case[1], venues, now)

    return [Case("routing_nbbo", decide, small), Case("routing_split", decide, large)]


def journal_cases(iterations: int, rng: random.Random) -> list[Case]:
    fills = journal._fills(iterations, rng)
    book = PositionBook()
    PositionBook.replay(journal._fills(2_000, random.Random(8)))  # warm the code paths
    calculator = FeeCalculator(FeeSettings())
    return [
        Case("position_update", book.apply, fills),
        Case("fee_calculation", lambda fill: calculator.fees(fill, journal.VENUE), fills),
    ]


def timer_overhead_us() -> float:
    clock = time.perf_counter_ns
    return statistics.median(-(clock() - clock()) for _ in range(20_000)) / 1000


def run(iterations: int, symbols: int, seed: int) -> dict[str, dict[str, float]]:
    """Build every case, warm up, freeze the heap, then time each: figures by case name."""
    rng = random.Random(seed)
    cases = [
        *pretrade_cases(symbols, iterations, rng),
        *routing_cases(iterations, rng),
        luld_case(symbols, iterations, rng),
        *journal_cases(iterations, rng),
    ]
    warm = min(2_000, max(1, iterations // 10))
    for case in cases:
        if case.name not in ("luld_trade", "position_update"):  # these change state: time once
            timed(case.operation, case.inputs[:warm])
    gc.collect()
    gc.freeze()
    return {case.name: figures(timed(case.operation, case.inputs)) for case in cases}


def format_rows(results: dict[str, dict[str, float]]) -> str:
    lines = [f"  {'operation':<52} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9} {'mean us':>8}"]
    for name, row in results.items():
        lines.append(
            f"  {LABELS.get(name, name):<52} {row['p50_us']:>8.2f} {row['p99_us']:>8.2f} "
            f"{row['p999_us']:>9.2f} {row['mean_us']:>8.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50_000, help="timed calls per case")
    parser.add_argument("--symbols", type=int, default=3_000, help="symbols in the engine")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = run(args.iterations, args.symbols, args.seed)
    print(
        f"hot paths in-process: {args.iterations:,} calls per case, {args.symbols:,} symbols; "
        f"timer overhead {timer_overhead_us():.2f} us included; Python {sys.version.split()[0]}"
    )
    print(format_rows(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
