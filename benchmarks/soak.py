"""Soak: mixed load on one gateway for minutes; is throughput steady and memory flat?

One gateway (real PostgreSQL, market_clock=feed, pinned to core 0 like the other benchmarks'
targets) takes, at once and for the whole run:
- a feed: a PublishMarketData stream of quotes over the primed universe, event time advancing
  with the wall clock from 2026-11-24 10:00 ET (so the engine ticks, bands and phases move);
- CheckOrder and RouteOrder at fixed rates from h2load (AAPL, the allowed path);
- RecordFills: unique fills over 20 accounts x 50 symbols from a Python client;
- SubscribeMarketState: subscribers following every symbol, reading everything.
Every ``--window`` seconds it reads the gateway's RSS and its own metrics
(grpc_server_handled_total by method and code, execgw_market_events_total) and prints one line.
At the end: per-method throughput over the windows after the warm-up (median, min, max and the
coefficient of variation), RSS after the warm-up against RSS at the end, and whether any RPC
ended with a status other than OK.

Usage:
    python benchmarks/soak.py [--seconds 600] [--window 10] [--warm-up 60] [--check-rps 2000]
        [--route-rps 500] [--fills-rps 500] [--feed-rps 2000] [--subscribers 20] [--json FILE]

Uses EXECGW_DATABASE_URL when set, otherwise an embedded PostgreSQL in a temporary folder.
Requires h2load (Debian package nghttp2-client). Traffic stays on 127.0.0.1; every loop is
bounded by --seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.grpc_load import (  # noqa: E402
    Server,
    database,
    grpc_frame,
    h2load_paced,
    start_gateway,
)
from benchmarks.requests import (  # noqa: E402
    MARKET_TIME,
    ORDER,
    REQUESTS,
    VENUES,
    _ticker,
    prime_market,
)
from gateway._pb.execgw.v1 import common_pb2, journal_pb2, journal_pb2_grpc  # noqa: E402
from gateway._pb.execgw.v1 import market_state_pb2 as ms  # noqa: E402
from gateway._pb.execgw.v1 import market_state_pb2_grpc as ms_grpc  # noqa: E402

UNIVERSE = 500
ACCOUNTS = 20
FILL_SYMBOLS = 50


def _prices(universe: int) -> dict[str, int]:
    """Each primed symbol's prior close in cents, as ``prime_market`` publishes them."""
    prices = {ORDER.symbol: 18_725}
    for i in range(universe - 1):
        prices[_ticker(i)] = 500 + (i * 7_919) % 49_500
    return prices


def _feed(port: int, seconds: float, rate: float, universe: int) -> None:
    """Quotes at ``rate`` events/s, event time = 10:00 ET + wall time since the start."""
    prices = _prices(universe)
    symbols = list(prices)
    rng = random.Random(7)
    started = time.monotonic()

    def events() -> Iterator[ms.MarketDataEvent]:
        sent = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            if sent >= due:
                time.sleep(0.001)
                continue
            at = MARKET_TIME + timedelta(seconds=elapsed)
            # AAPL keeps its book (the load's orders stay on the allowed path) but stays fresh.
            symbol = ORDER.symbol if sent % 50 == 0 else rng.choice(symbols)
            cents = prices[symbol]
            if symbol != ORDER.symbol:
                cents = max(100, cents + rng.choice((-1, 0, 1)))
                prices[symbol] = cents
            ask = cents if symbol == ORDER.symbol else cents + 1
            venue = VENUES[sent % len(VENUES)]
            message = ms.MarketDataEvent(
                symbol=symbol,
                quote=ms.Quote(
                    venue=venue,
                    bid_price=f"{(cents - 1) / 100:.2f}",
                    bid_size=300,
                    ask_price=f"{ask / 100:.2f}",
                    ask_size=300,
                ),
            )
            message.event_time.FromDatetime(at)
            sent += 1
            yield message

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        ms_grpc.MarketStateServiceStub(channel).PublishMarketData(events(), timeout=seconds + 60)


def _fills(port: int, seconds: float, rate: float) -> None:
    """Unique fills at ``rate``/s on one RecordFills stream, reading every acknowledgement."""
    rng = random.Random(11)
    started = time.monotonic()
    symbols = [ORDER.symbol] + [_ticker(i) for i in range(FILL_SYMBOLS - 1)]

    def requests() -> Iterator[journal_pb2.RecordFillRequest]:
        n = 0
        while (elapsed := time.monotonic() - started) < seconds:
            if n >= int(elapsed * rate):
                time.sleep(0.001)
                continue
            fill = journal_pb2.Fill(
                venue=VENUES[n % len(VENUES)],
                exec_id=f"soak-{os.getpid()}-{n}",
                account=f"SOAK-{n % ACCOUNTS}",
                symbol=rng.choice(symbols),
                side=common_pb2.SIDE_BUY if rng.random() < 0.5 else common_pb2.SIDE_SELL,
                quantity=100,
                price=f"{rng.randint(1_000, 20_000) / 100:.2f}",
                liquidity=common_pb2.LIQUIDITY_REMOVED,
            )
            fill.transaction_time.FromDatetime(MARKET_TIME + timedelta(seconds=elapsed))
            n += 1
            yield journal_pb2.RecordFillRequest(fill=fill)

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = journal_pb2_grpc.JournalServiceStub(channel)
        for _ in stub.RecordFills(requests(), timeout=seconds + 60):
            pass


def _subscribers(port: int, seconds: float, count: int) -> None:
    """``count`` subscribers of every symbol on one channel, reading until the end."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = ms_grpc.MarketStateServiceStub(channel)
        calls = [
            stub.SubscribeMarketState(ms.SubscribeMarketStateRequest(), timeout=seconds)
            for _ in range(count)
        ]

        def drain(call: grpc.Call) -> None:
            try:
                for _ in call:  # type: ignore[attr-defined]
                    pass
            except grpc.RpcError:
                pass  # the deadline ends it

        threads = [threading.Thread(target=drain, args=(c,), daemon=True) for c in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 30)


def _scrape(gateway: Server) -> dict[tuple[str, str], float]:
    """grpc_server_handled_total by (method, code); accepted market events as ("feed events",
    "OK"); recorded fills as ("fills", "OK") (a RecordFills stream is counted by gRPC only when
    it ends: the journal counts each fill)."""
    found: dict[tuple[str, str], float] = {}
    for name, labels, value in gateway.samples():
        if name == "grpc_server_handled_total":
            found[(labels["grpc_method"], labels["grpc_code"])] = value
        elif name == "execgw_market_events_total" and labels.get("outcome") == "accepted":
            found[("feed events", "OK")] = value
        elif name == "trade_journal_fills_recorded_total" and labels.get("outcome") == "recorded":
            found[("fills", "OK")] = value
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--window", type=float, default=10)
    parser.add_argument("--warm-up", type=float, default=60)
    parser.add_argument("--check-rps", type=float, default=2000)
    parser.add_argument("--route-rps", type=float, default=500)
    parser.add_argument("--fills-rps", type=float, default=500)
    parser.add_argument("--feed-rps", type=float, default=2000)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="execgw-soak-"))
    with database(folder) as database_url:
        gateway = start_gateway(database_url, folder, feed_clock=True)
        try:
            windows = _soak(gateway, folder, args)
        finally:
            gateway.stop()
    _summary(windows, args)


def _soak(gateway: Server, folder: Path, args: argparse.Namespace) -> list[dict[str, float]]:
    port = gateway.port
    children: list[multiprocessing.Process] = []
    loads: list[subprocess.Popen[str]] = []
    windows: list[dict[str, float]] = []
    try:
        prime_market(port, UNIVERSE)
        bodies = {}
        for name in ("CheckOrder", "RouteOrder"):
            bodies[name] = folder / f"{name}.bin"
            bodies[name].write_bytes(grpc_frame(REQUESTS[name].request))
        seconds = args.seconds
        children = [
            multiprocessing.Process(target=_feed, args=(port, seconds, args.feed_rps, UNIVERSE)),
            multiprocessing.Process(target=_fills, args=(port, seconds, args.fills_rps)),
            multiprocessing.Process(target=_subscribers, args=(port, seconds, args.subscribers)),
        ]
        for child in children:
            child.start()
        time.sleep(1)  # the feed first: the book stays fresh for the orders
        loads = [
            h2load_paced(
                port, REQUESTS["CheckOrder"].method, bodies["CheckOrder"], seconds, args.check_rps
            ),
            h2load_paced(
                port, REQUESTS["RouteOrder"].method, bodies["RouteOrder"], seconds, args.route_rps
            ),
        ]
        process = psutil.Process(gateway.process.pid)
        started = time.monotonic()
        previous = _scrape(gateway)
        print(
            f"soak: {seconds:g} s, windows of {args.window:g} s, warm-up {args.warm_up:g} s; "
            f"offered CheckOrder {args.check_rps:g}/s, RouteOrder {args.route_rps:g}/s, "
            f"fills {args.fills_rps:g}/s, feed {args.feed_rps:g} events/s, "
            f"{args.subscribers} subscribers"
        )
        print(
            f"{'t s':>6} {'RSS MB':>8} {'CheckOrder':>11} {'RouteOrder':>11} {'RecordFills':>12} "
            f"{'feed ev/s':>10} {'not OK':>7}"
        )
        while (now := time.monotonic() - started) < seconds:
            time.sleep(min(args.window, max(0.1, seconds - now)))
            current = _scrape(gateway)
            span = args.window
            rate = {key: (current.get(key, 0) - previous.get(key, 0)) / span for key in current}
            not_ok = sum(
                current.get(k, 0) - previous.get(k, 0)
                for k in current
                # Subscriptions end at their deadline (DEADLINE_EXCEEDED) by design.
                if k[1] != "OK" and k[0] != "SubscribeMarketState"
            )
            row = {
                "t": time.monotonic() - started,
                "rss_mb": process.memory_info().rss / 2**20,
                "CheckOrder": rate.get(("CheckOrder", "OK"), 0.0),
                "RouteOrder": rate.get(("RouteOrder", "OK"), 0.0),
                "RecordFills": rate.get(("fills", "OK"), 0.0),
                "feed": rate.get(("feed events", "OK"), 0.0),
                "not_ok": not_ok,
            }
            windows.append(row)
            previous = current
            print(
                f"{row['t']:6.0f} {row['rss_mb']:8.1f} {row['CheckOrder']:11.0f} "
                f"{row['RouteOrder']:11.0f} {row['RecordFills']:12.0f} {row['feed']:10.0f} "
                f"{row['not_ok']:7.0f}"
            )
    finally:
        for load in loads:
            load.terminate()
        for child in children:
            child.terminate()
            child.join(10)
    return windows


def _summary(windows: list[dict[str, float]], args: argparse.Namespace) -> None:
    steady = [w for w in windows if w["t"] > args.warm_up] or windows
    if not steady:
        print("no complete window")
        return
    print("after the warm-up:")
    verdicts = {}
    for name in ("CheckOrder", "RouteOrder", "RecordFills", "feed"):
        values = [w[name] for w in steady]
        mean = statistics.fmean(values)
        cv = statistics.pstdev(values) / mean if mean else float("nan")
        verdicts[name] = cv
        print(
            f"  {name:<12} median {statistics.median(values):8.0f}/s  min {min(values):8.0f}  "
            f"max {max(values):8.0f}  variation {cv:6.1%}"
        )
    first, last = steady[0]["rss_mb"], steady[-1]["rss_mb"]
    growth = (last - first) / first
    errors = sum(w["not_ok"] for w in windows)
    print(
        f"  RSS {first:.1f} MB after the warm-up -> {last:.1f} MB at the end: "
        f"{growth:+.1%} (goal under +10%: {'met' if growth < 0.10 else 'MISSED'})"
    )
    print(f"  RPCs ended other than OK (streams aside): {errors:.0f}")
    if args.json:
        args.json.write_text(json.dumps({"windows": windows, "rss_growth": growth}, indent=2))


if __name__ == "__main__":
    main()
