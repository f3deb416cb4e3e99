"""Halt safety in-process: ``check_order`` latency and market-data ingestion rate, layer by layer.

No gRPC. One trading day (Tuesday 2026-11-24, 10:00 ET) on an engine loaded with ``--symbols``
symbols: reference data (a third Tier 1; NASDAQ, NYSE and NYSE Arca listings), an opening print and
quotes on six venues each; 1% of them halted (T1) and 3% under a Reg SHO 201 restriction carried
over from the day before.

(a) Decision latency: each call timed alone with perf_counter_ns over a mix of orders: allowed
    limit orders at the touch (70%), buy limits above the upper band (10%, refused), short sales
    of restricted symbols at and above the national best bid (10%, half refused), orders for a
    halted symbol (10%, refused). Rows: ``check_order`` (the domain function) and
    ``HaltGuard.check`` (the same plus the metric and, for refusals, the compliance record).
(b) Ingestion: events/s of one pre-built stream (quotes 80%, trades 15%, SIP bands 2%, index
    levels 2%, halts and resumes 1%) through each layer:
      engine.apply                      the domain alone (events pre-built as domain values);
      HaltGuard.publish, wall clock     + metrics, compliance records, state updates rendered and
                                        published (production: time passes in a ticker task);
      HaltGuard.publish, feed clock     + the engine ticked as the event time moves forward (what
                                        ``market_clock = "feed"`` does; the stream spans 2 s of
                                        event time at 20 us spacing);
      feed_event + publish (wall)       + proto validation into domain values;
      parse + feed_event + publish      + the bytes parsed into a message, as gRPC does.
    Every run starts from a freshly loaded engine; setup is not timed.
(c) The ticker: ms per ``HaltGuard.tick`` (what the wall-clock ticker task runs every
    ``market_tick_seconds``, 0.2 s by default) with the loaded engine, time moving 0.2 s a tick. It
    runs on the event loop, so it delays every RPC and stream update queued behind it.

Medians over ``--runs`` runs with min-max; the goal is printed next to each figure.

Usage:
    python benchmarks/bench_halt_safety.py [--symbols 3000] [--decisions 50000]
        [--events 100000] [--feed-events 1000] [--runs 5] [--seed 7] [--profile PART]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# After the path is set (the script runs from anywhere).
from gateway._pb.execgw.v1 import market_state_pb2 as ms  # noqa: E402
from gateway.api import market_convert  # noqa: E402
from gateway.domain.calendar import TradingCalendar  # noqa: E402
from gateway.domain.feed import (  # noqa: E402
    BandNotice,
    FeedEvent,
    HaltNotice,
    IndexUpdate,
    QuoteUpdate,
    ReferenceData,
    ResumeNotice,
    ResumptionPhase,
    TradeReport,
    TradeType,
)
from gateway.domain.luld import Tier  # noqa: E402
from gateway.domain.market_state import MarketSettings, MarketStateEngine  # noqa: E402
from gateway.domain.orders import OrderRequest, OrderType, Side  # noqa: E402
from gateway.domain.pretrade import PretradeSettings, check_order  # noqa: E402
from gateway.halt_guard import HaltGuard  # noqa: E402
from gateway.metrics import Metrics  # noqa: E402
from storage.market_events import MarketEventRecorder  # noqa: E402

ET = ZoneInfo("America/New_York")
DAY = date(2026, 11, 24)
# Instants in exchange time, as the gateway uses them: the gRPC edge converts event times to
# America/New_York and the clock reads ET. The "in UTC instead" rows show what that saves.
PRE_OPEN = datetime(2026, 11, 24, 9, 0, tzinfo=ET)
OPEN = datetime(2026, 11, 24, 9, 30, tzinfo=ET)
HALTS_AT = datetime(2026, 11, 24, 9, 45, tzinfo=ET)
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=ET)
NOW_UTC = NOW.astimezone(UTC)
VENUES = ("NASDAQ", "NYSE", "NYSE_ARCA", "IEX", "BATS_BZX", "EDGX")
LISTINGS = ("NASDAQ", "NYSE", "NYSE_ARCA")
CENT = Decimal("0.01")
EVENT_SPACING = timedelta(microseconds=20)  # a 50k events/s feed, in event time

GOAL_DECISION_P99_US = 20.0
GOAL_EVENTS_PER_S = 100_000.0


@dataclass
class Symbol:
    name: str
    tier: Tier
    listing: str
    prior_cents: int
    mid_cents: int
    halted: bool
    restricted: bool


# --- the universe and its setup ----------------------------------------------------------------


def ticker(n: int) -> str:
    letters = ""
    for _ in range(4):
        n, digit = divmod(n, 26)
        letters = chr(ord("A") + digit) + letters
    return letters


def cents(value: int) -> Decimal:
    return Decimal(value) / 100


def universe(count: int, rng: random.Random) -> list[Symbol]:
    symbols = []
    for i in range(count):
        prior = rng.randint(500, 50_000)  # $5 to $500
        symbols.append(
            Symbol(
                ticker(i),
                Tier.TIER_1 if i % 3 == 0 else Tier.TIER_2,
                LISTINGS[i % len(LISTINGS)],
                prior,
                prior + rng.randint(-prior // 100, prior // 100),  # opens within 1% of the close
                halted=i % 100 == 7,
                restricted=i % 100 in (11, 41, 71),
            )
        )
    return symbols


def quote(symbol: str, at: datetime, venue: str, mid: int, rng: random.Random) -> QuoteUpdate:
    half = rng.choice((1, 1, 1, 2, 3))
    return QuoteUpdate(
        symbol,
        at,
        venue,
        cents(mid - half),
        rng.randrange(100, 2_000, 100),
        cents(mid + half),
        rng.randrange(100, 2_000, 100),
    )


def setup_events(symbols: list[Symbol], rng: random.Random) -> list[FeedEvent]:
    """Reference data, the opening print, quotes on six venues, halts: in time order."""
    events: list[FeedEvent] = [IndexUpdate(PRE_OPEN, "SPX", Decimal("6000.00"), Decimal("6010.00"))]
    for s in symbols:
        events.append(
            ReferenceData(
                s.name,
                PRE_OPEN,
                s.tier,
                s.listing,
                cents(s.prior_cents),
                DAY,
                short_sale_restricted=s.restricted,
            )
        )
    for s in symbols:
        events.append(
            TradeReport(s.name, OPEN, s.listing, cents(s.mid_cents), 5_000, True, TradeType.OPENING)
        )
    quoted = OPEN + timedelta(seconds=1)
    for s in symbols:
        events.extend(quote(s.name, quoted, v, s.mid_cents, rng) for v in VENUES)
    events.extend(HaltNotice(s.name, HALTS_AT, "T1") for s in symbols if s.halted)
    return events


def loaded_engine(setup: list[FeedEvent]) -> MarketStateEngine:
    engine = MarketStateEngine(TradingCalendar.default(), MarketSettings())
    for event in setup:
        engine.apply(event)
    engine.tick(NOW - timedelta(milliseconds=1))  # scheduled phases settle before the clock
    return engine


def new_guard(setup: list[FeedEvent], clock: str) -> HaltGuard:
    # A real recorder that is not running: recording is its O(1) in-memory append.
    recorder = MarketEventRecorder("postgresql://unused/unused")
    guard = HaltGuard(loaded_engine(setup), Metrics(), recorder=recorder, clock=clock)
    guard.tick(NOW - timedelta(milliseconds=1))
    return guard


# --- (a) decisions -----------------------------------------------------------------------------


def orders(
    symbols: list[Symbol], engine: MarketStateEngine, count: int, rng: random.Random
) -> tuple[list[OrderRequest], dict[str, int]]:
    normal = [s for s in symbols if not s.halted and not s.restricted]
    halted = [s for s in symbols if s.halted]
    restricted = [s for s in symbols if s.restricted]
    made: list[OrderRequest] = []
    mix = {"allowed limit": 0, "above band": 0, "short sale restricted": 0, "halted": 0}
    for i in range(count):
        draw = rng.random()
        quantity = 100 * rng.randint(1, 5)
        oid = f"bench-{i}"
        if draw < 0.70:
            s = rng.choice(normal)
            nbbo = engine.symbols[s.name].book.nbbo
            side = Side.BUY if i % 2 else Side.SELL
            price = nbbo.ask_price if side is Side.BUY else nbbo.bid_price
            made.append(OrderRequest(oid, "ACC-1", s.name, side, OrderType.LIMIT, quantity, price))
            mix["allowed limit"] += 1
        elif draw < 0.80:
            s = rng.choice(normal)
            bands = engine.symbols[s.name].bands
            assert bands is not None
            price = bands.upper + CENT * rng.randint(1, 50)
            made.append(OrderRequest(oid, "ACC-1", s.name, Side.BUY, OrderType.LIMIT, 100, price))
            mix["above band"] += 1
        elif draw < 0.90:
            s = rng.choice(restricted)
            nbb = engine.symbols[s.name].book.nbbo.bid_price
            assert nbb is not None
            price = nbb + CENT * (i % 2)  # at the bid: refused; a cent above: allowed
            made.append(
                OrderRequest(oid, "ACC-1", s.name, Side.SELL_SHORT, OrderType.LIMIT, 100, price)
            )
            mix["short sale restricted"] += 1
        else:
            s = rng.choice(halted)
            ask = engine.symbols[s.name].book.nbbo.ask_price
            made.append(OrderRequest(oid, "ACC-1", s.name, Side.BUY, OrderType.LIMIT, 100, ask))
            mix["halted"] += 1
    return made, mix


def percentiles(samples: list[int]) -> tuple[float, float, float]:
    samples.sort()
    n = len(samples)
    return (
        samples[n // 2] / 1000,
        samples[min(n - 1, int(n * 0.99))] / 1000,
        samples[min(n - 1, int(n * 0.999))] / 1000,
    )


def time_decisions(decide: Callable[[OrderRequest], Any], batch: list[OrderRequest]) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    append = samples.append
    for order in batch:
        start = clock()
        decide(order)
        append(clock() - start)
    return samples


def timer_overhead() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        start = clock()
        samples.append(clock() - start)
    return statistics.median(samples) / 1000


# --- (b) ingestion -----------------------------------------------------------------------------


def stream(symbols: list[Symbol], count: int, rng: random.Random) -> list[FeedEvent]:
    """A market-data stream from 10:00 ET; activity is skewed (a few symbols trade most)."""
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(symbols))]
    picks = rng.choices(symbols, weights, k=count)
    halted_now: dict[str, int] = {}
    events: list[FeedEvent] = []
    spx = 600_000
    for i, s in enumerate(picks):
        at = NOW + EVENT_SPACING * i
        draw = rng.random()
        # Mean-reverting within 0.5% of the opening level: stays inside the bands.
        wiggle = max(1, s.prior_cents // 200)
        mid = s.mid_cents + rng.randint(-wiggle, wiggle)
        if draw < 0.80:
            events.append(quote(s.name, at, rng.choice(VENUES), mid, rng))
        elif draw < 0.95:
            events.append(
                TradeReport(
                    s.name,
                    at,
                    rng.choice(VENUES),
                    cents(mid + rng.choice((-1, 0, 1))),
                    rng.randrange(100, 1_000, 100),
                    rng.random() < 0.9,
                )
            )
        elif draw < 0.97:
            band = s.mid_cents // (20 if s.tier is Tier.TIER_1 else 10)
            events.append(
                BandNotice(s.name, at, cents(s.mid_cents - band), cents(s.mid_cents + band))
            )
        elif draw < 0.99:
            spx += rng.randint(-100, 100)
            events.append(IndexUpdate(at, "SPX", cents(spx)))
        elif s.halted:
            events.append(quote(s.name, at, rng.choice(VENUES), mid, rng))
        elif s.name in halted_now:
            del halted_now[s.name]
            events.append(ResumeNotice(s.name, at, "T2", ResumptionPhase.TRADING))
        else:
            halted_now[s.name] = i
            events.append(HaltNotice(s.name, at, "T1"))
    return events


def mix_of(events: list[FeedEvent]) -> str:
    kinds: dict[str, int] = {}
    for event in events:
        kinds[type(event).__name__] = kinds.get(type(event).__name__, 0) + 1
    ordered = sorted(kinds.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {count / len(events):.1%}" for name, count in ordered)


def to_proto(event: FeedEvent) -> ms.MarketDataEvent:
    message = ms.MarketDataEvent(symbol=event.symbol)
    message.event_time.FromDatetime(event.at)
    if isinstance(event, QuoteUpdate):
        q = message.quote
        q.venue = event.venue
        q.bid_price, q.bid_size = str(event.bid_price), event.bid_size
        q.ask_price, q.ask_size = str(event.ask_price), event.ask_size
    elif isinstance(event, TradeReport):
        t = message.trade
        t.venue, t.price, t.quantity, t.eligible = (
            event.venue,
            str(event.price),
            event.quantity,
            event.eligible,
        )
        t.trade_type = ms.TRADE_TYPE_REGULAR
    elif isinstance(event, BandNotice):
        message.band.lower_band, message.band.upper_band = str(event.lower), str(event.upper)
    elif isinstance(event, IndexUpdate):
        message.index_level.index, message.index_level.level = event.index, str(event.level)
    elif isinstance(event, HaltNotice):
        message.halt.reason_code = event.reason_code
    elif isinstance(event, ResumeNotice):
        message.resume.reason_code = event.reason_code
        message.resume.phase = ms.RESUMPTION_PHASE_TRADING
    else:
        raise TypeError(type(event))
    return message


Layer = Callable[[list[FeedEvent], list[ms.MarketDataEvent], list[bytes]], Callable[[], int]]


def layer_engine(setup: list[FeedEvent], zone: tzinfo | None = None) -> Layer:
    def prepare(events: list[FeedEvent], _m: Any, _b: Any) -> Callable[[], int]:
        apply = loaded_engine([_in_zone(e, zone) for e in setup] if zone else setup).apply
        domain = [_in_zone(e, zone) for e in events] if zone else events

        def run() -> int:
            for event in domain:
                apply(event)
            return len(domain)

        return run

    return prepare


def _in_zone(event: FeedEvent, zone: tzinfo) -> FeedEvent:
    return replace(event, at=event.at.astimezone(zone))


def layer_guard(setup: list[FeedEvent], clock: str, limit: int | None = None) -> Layer:
    def prepare(events: list[FeedEvent], _m: Any, _b: Any) -> Callable[[], int]:
        publish = new_guard(setup, clock).publish
        domain = events[:limit]

        def run() -> int:
            for event in domain:
                publish(event)
            return len(domain)

        return run

    return prepare


def layer_proto(setup: list[FeedEvent], parse: bool) -> Layer:
    def prepare(_d: Any, messages: list[ms.MarketDataEvent], raw: list[bytes]) -> Callable[[], int]:
        publish = new_guard(setup, "wall").publish
        feed_event = market_convert.feed_event
        from_string = ms.MarketDataEvent.FromString

        def run_messages() -> int:
            for message in messages:
                event, problems = feed_event(message)
                assert event is not None, problems
                publish(event)
            return len(messages)

        def run_bytes() -> int:
            for data in raw:
                event, problems = feed_event(from_string(data))
                assert event is not None, problems
                publish(event)
            return len(raw)

        return run_bytes if parse else run_messages

    return prepare


# --- output ------------------------------------------------------------------------------------


def spread(values: list[float], fmt: str = ",.1f") -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=3_000)
    parser.add_argument("--decisions", type=int, default=50_000, help="per run")
    parser.add_argument("--events", type=int, default=100_000, help="stream length")
    parser.add_argument(
        "--feed-events",
        type=int,
        help="stream prefix for the feed-clock layer (default: all; shorten it when the guard "
        "ticks the engine, O(symbols), at every event)",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile",
        choices=("check", "engine", "engine-et", "guard-wall", "guard-feed", "proto", "bytes"),
        help="print the cProfile top functions of one part instead of the figures",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    symbols = universe(args.symbols, rng)
    setup = setup_events(symbols, rng)
    guard = new_guard(setup, "feed")
    engine = guard.engine
    guard.publish(QuoteUpdate(symbols[0].name, NOW, "IEX", *_touch(engine, symbols[0].name)))
    batch, mix = orders(symbols, engine, args.decisions, rng)
    outcomes = [check_order(engine, o, NOW) for o in batch]
    allowed = sum(d.allowed for d in outcomes)
    refusals: dict[str, int] = {}
    for decision in outcomes:
        for reason in decision.reasons:
            refusals[reason.code] = refusals.get(reason.code, 0) + 1
    events = stream(symbols, args.events, rng)
    messages = [to_proto(e) for e in events]
    raw = [m.SerializeToString() for m in messages]
    settings = PretradeSettings()

    def decide(order: OrderRequest) -> Any:
        return check_order(engine, order, NOW, settings)

    def decide_et(order: OrderRequest) -> Any:
        return check_order(engine, order, NOW_UTC, settings)

    def guarded(order: OrderRequest) -> Any:
        return guard.check(order, "CheckOrder")

    layers: dict[str, Layer] = {
        "engine": layer_engine(setup),
        "engine-et": layer_engine(setup, UTC),
        "guard-wall": layer_guard(setup, "wall"),
        "guard-feed": layer_guard(setup, "feed", args.feed_events),
        "proto": layer_proto(setup, parse=False),
        "bytes": layer_proto(setup, parse=True),
    }
    if args.profile:
        profile(args.profile, decide, batch, layers, events, messages, raw)
        return

    for _ in range(2):  # warm-up: caches, first-use imports, the allocator
        time_decisions(decide, batch[:5_000])
        time_decisions(guarded, batch[:5_000])
        time_decisions(decide_et, batch[:5_000])
    gc.collect()
    gc.freeze()  # the setup heap is not walked by the collector during the measurement

    deciders = {"check_order": decide, "guard": guarded, "et": decide_et}
    decision_rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in deciders}
    for _ in range(args.runs):
        for name, decider in deciders.items():
            decision_rows[name].append(percentiles(time_decisions(decider, batch)))

    ticks: list[float] = []
    for _ in range(args.runs):
        ticking = new_guard(setup, "wall")
        for k in range(1, 21):
            started = time.perf_counter()
            ticking.tick(NOW + timedelta(seconds=0.2 * k))
            ticks.append((time.perf_counter() - started) * 1e3)

    rates: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(args.runs):
        for name, prepare in layers.items():
            run = prepare(events, messages, raw)
            gc.collect()
            started = time.perf_counter()
            done = run()
            rates[name].append(done / (time.perf_counter() - started))

    print(
        f"halt safety in-process: {args.symbols:,} symbols, 6 venues, {args.runs} runs "
        f"(median [min-max]); Python {sys.version.split()[0]}"
    )
    print(
        f"(a) decision latency, {len(batch):,} orders per run, timer overhead "
        f"{timer_overhead():.2f} us included"
    )
    print(
        "    mix: "
        + ", ".join(f"{k} {v / len(batch):.0%}" for k, v in mix.items())
        + f"; allowed {allowed / len(batch):.0%}; refusals "
        + ", ".join(f"{k} {v}" for k, v in sorted(refusals.items()))
    )
    print(f"    {'':<22} {'p50 us':>18} {'p99 us':>18} {'p99.9 us':>18}   goal p99 <= 20 us")
    for name, label in (
        ("check_order", "check_order"),
        ("guard", "HaltGuard.check"),
        ("et", "  now in UTC instead"),
    ):
        rows = decision_rows[name]
        p99 = statistics.median(r[1] for r in rows)
        print(
            f"    {label:<22} "
            + " ".join(f"{spread([r[k] for r in rows], '.2f'):>18}" for k in range(3))
            + f"   {verdict(p99 <= GOAL_DECISION_P99_US)}"
        )
    print(f"(b) ingestion, {len(events):,} events per run: {mix_of(events)}")
    feed_count = min(args.feed_events or len(events), len(events))
    print(f"    {'layer':<36} {'events/s':>28}   goal >= 100,000/s")
    labels = {
        "engine": "engine.apply (domain values)",
        "engine-et": "  the same, event times in UTC instead",
        "guard-wall": "HaltGuard.publish, wall clock",
        "guard-feed": f"HaltGuard.publish, feed clock ({feed_count:,})",
        "proto": "feed_event + publish (wall)",
        "bytes": "parse + feed_event + publish (wall)",
    }
    for name, label in labels.items():
        values = rates[name]
        ok = statistics.median(values) >= GOAL_EVENTS_PER_S
        per = 1e6 / statistics.median(values)
        print(f"    {label:<36} {spread(values, ',.0f'):>28}   {verdict(ok)} ({per:.1f} us/event)")
    print(
        f"(c) ticker: HaltGuard.tick with {args.symbols:,} symbols, {len(ticks)} ticks: "
        f"{spread(ticks, '.2f')} ms per tick (blocks the event loop that long every 0.2 s)"
    )


def _touch(engine: MarketStateEngine, symbol: str) -> tuple[Decimal, int, Decimal, int]:
    nbbo = engine.symbols[symbol].book.nbbo
    assert nbbo.bid_price is not None and nbbo.ask_price is not None
    return nbbo.bid_price, 100, nbbo.ask_price, 100


def profile(
    part: str,
    decide: Callable[[OrderRequest], Any],
    batch: list[OrderRequest],
    layers: dict[str, Layer],
    events: list[FeedEvent],
    messages: list[ms.MarketDataEvent],
    raw: list[bytes],
) -> None:
    profiler = cProfile.Profile()
    if part == "check":
        profiler.enable()
        for order in batch:
            decide(order)
        profiler.disable()
    else:
        run = layers[part](events, messages, raw)
        profiler.enable()
        run()
        profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
