"""Market event recorder in-process: rows/s written, and the hot-path cost of ``record_refusal``.

Usage:
    python benchmarks/bench_market_events.py [--rows 200000] [--runs 3] [--calls 200000]

Uses EXECGW_DATABASE_URL when set, otherwise an embedded PostgreSQL in a temporary folder.
Throughput: ``--rows`` rows queued at once, timed until ``flush`` returns (every row committed),
then the same with a producer recording while the writer writes on the same event loop.
Hot path: each ``record_refusal`` call timed alone with perf_counter_ns, the timer's own cost
subtracted. Prints medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from storage.embedded import EmbeddedPostgres
from storage.market_events import (
    MarketEventRecorder,
    MarketStateEvent,
    PretradeRefusal,
)
from storage.migrations import apply_migrations

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
DAY = date(2026, 11, 24)


def make_refusal(n: int) -> PretradeRefusal:
    return PretradeRefusal(
        NOW + timedelta(microseconds=n),
        DAY,
        f"ORD-{n}",
        "ACC-1",
        "AAPL",
        "SELL_SHORT",
        "LIMIT",
        100,
        Decimal("187.25"),
        ("LULD_PAUSE",),
        ("NO_SHORT_BELOW_BID",),
        "PAUSED",
        "CheckOrder",
    )


def make_event(n: int) -> MarketStateEvent:
    return MarketStateEvent(
        NOW + timedelta(microseconds=n), DAY, "AAPL", "LIMIT_STATE", "LIMIT_UP", "", {"n": str(n)}
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drain(
    recorder: MarketEventRecorder, rows: list[MarketStateEvent | PretradeRefusal]
) -> float:
    """Queue ``rows`` at once; return rows/s until all are committed."""
    start = time.perf_counter()
    for row in rows:
        if isinstance(row, PretradeRefusal):
            recorder.record_refusal(row)
        else:
            recorder.record_event(row)
    await recorder.flush(600)
    return len(rows) / (time.perf_counter() - start)


async def produce_while_writing(
    recorder: MarketEventRecorder, rows: list[PretradeRefusal]
) -> float:
    """Record in chunks of 1,000, yielding to the writer between chunks; rows/s until committed."""
    start = time.perf_counter()
    for i in range(0, len(rows), 1000):
        for row in rows[i : i + 1000]:
            recorder.record_refusal(row)
        await asyncio.sleep(0)
    await recorder.flush(600)
    return len(rows) / (time.perf_counter() - start)


async def hot_path(recorder: MarketEventRecorder, calls: int) -> tuple[float, float, float]:
    """Per-call ns of record_refusal (median, p99) and of building the refusal (median)."""
    clock = time.perf_counter_ns
    overhead = statistics.median([-(clock() - clock()) for _ in range(100_000)])
    rows = [make_refusal(n) for n in range(calls)]
    samples = []
    record = recorder.record_refusal
    for i in range(0, calls, 1000):
        for row in rows[i : i + 1000]:
            t0 = clock()
            record(row)
            samples.append(clock() - t0 - overhead)
        await asyncio.sleep(0)  # the writer runs between chunks, as between requests
    # Building the refusal is the caller's cost: the frozen dataclass and its checks only, from
    # field values the caller already holds.
    fields = [tuple(getattr(r, f) for f in PretradeRefusal.__dataclass_fields__) for r in rows]
    builds = []
    for values in fields[:100_000]:
        t0 = clock()
        PretradeRefusal(*values)
        builds.append(clock() - t0 - overhead)
    await recorder.flush(600)
    return statistics.median(samples), percentile(samples, 0.99), statistics.median(builds)


def bytes_per_queued_refusal(count: int = 100_000) -> float:
    recorder = MarketEventRecorder("postgresql://unused", max_queued=count)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(count):
        recorder.record_refusal(make_refusal(n))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / count


async def main(args: argparse.Namespace) -> None:
    url = os.environ.get("EXECGW_DATABASE_URL")
    embedded = None
    folder = tempfile.TemporaryDirectory(prefix="execgw-bench-")
    if not url:
        embedded = EmbeddedPostgres(Path(folder.name) / "data")
        url = await asyncio.to_thread(embedded.start)
    try:
        connection = await asyncpg.connect(url)
        await apply_migrations(connection)
        await connection.close()
        recorder = MarketEventRecorder(url)
        task = asyncio.create_task(recorder.run(), name="market-event-recorder")
        await recorder.wait_available(10)
        await drain(recorder, [make_refusal(n) for n in range(10_000)])  # warm-up
        results: dict[str, list[float]] = {"refusals": [], "events": [], "mixed": [], "live": []}
        hot: list[tuple[float, float, float]] = []
        for _ in range(args.runs):
            refusals = [make_refusal(n) for n in range(args.rows)]
            events = [make_event(n) for n in range(args.rows)]
            mixed: list[MarketStateEvent | PretradeRefusal] = [
                r for pair in zip(refusals, events, strict=True) for r in pair
            ]
            results["refusals"].append(await drain(recorder, list(refusals)))
            results["events"].append(await drain(recorder, list(events)))
            results["mixed"].append(await drain(recorder, mixed[: args.rows]))
            results["live"].append(await produce_while_writing(recorder, refusals))
            hot.append(await hot_path(recorder, args.calls))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        print(f"market event recorder, {args.runs} runs of {args.rows:,} rows (median [min-max])")
        labels = {
            "refusals": "refusals queued at once",
            "events": "events queued at once",
            "mixed": "half and half",
            "live": "refusals, producer on the same loop",
        }
        for key, label in labels.items():
            rates = results[key]
            print(
                f"  {label:<36} {statistics.median(rates):>9,.0f} rows/s "
                f"[{min(rates):,.0f}-{max(rates):,.0f}]"
            )
        per_batch = recorder.written / recorder.batches_written
        print(f"  rows per transaction (mean)          {per_batch:>9,.0f}")
        print(
            f"  record_refusal ns: median {statistics.median(h[0] for h in hot):.0f}, "
            f"p99 {statistics.median(h[1] for h in hot):.0f} (timer cost subtracted); "
            f"building the PretradeRefusal: median {statistics.median(h[2] for h in hot):.0f}"
        )
        print(f"  memory per queued refusal ~{bytes_per_queued_refusal():,.0f} bytes")
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        folder.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200_000)
    import uvloop

    uvloop.run(main(parser.parse_args()))
