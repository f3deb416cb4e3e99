"""Journal writer in-process: durable fills/s with many callers, and commit latency at a fixed rate.

Usage:
    python benchmarks/bench_journal_writer.py [--seconds 5] [--callers 128] [--rate 5000] [--runs 3]

Uses EXECGW_DATABASE_URL when set, otherwise an embedded PostgreSQL in a temporary folder. Every
acknowledged fill is committed (synchronous_commit on). Prints medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg

from gateway.settings import Settings
from storage.embedded import EmbeddedPostgres
from storage.journal import FillRow, JournalWriter
from storage.migrations import apply_migrations

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
_ids = iter(range(1, 1 << 62))


def make_fill() -> FillRow:
    n = next(_ids)
    return FillRow(
        trade_date=date(2026, 11, 24),
        venue="NASDAQ",
        exec_id=f"B{n}",
        account="ACC-1",
        symbol="AAPL",
        side="BUY",
        quantity=100,
        price=Decimal("187.25"),
        liquidity="REMOVED",
        transaction_time=NOW,
        received_at=NOW,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def saturate(
    writer: JournalWriter, callers: int, seconds: float
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await writer.record(make_fill())
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return len(latencies) / (time.perf_counter() - start), latencies


async def offered(writer: JournalWriter, rate: int, seconds: float) -> list[float]:
    """Submit fills at a fixed rate; keeps only the outstanding ones alive (no task list, so the
    generator itself adds no garbage-collection pauses)."""
    latencies: list[float] = []
    interval = 1.0 / rate
    outstanding = 0
    drained = asyncio.Event()

    async def one() -> None:
        nonlocal outstanding
        start = time.perf_counter()
        await writer.record(make_fill())
        latencies.append(time.perf_counter() - start)
        outstanding -= 1
        if outstanding == 0:
            drained.set()

    background = set()
    begin = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = begin + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        outstanding += 1
        drained.clear()
        task = asyncio.create_task(one())
        background.add(task)
        task.add_done_callback(background.discard)
    if outstanding:
        await drained.wait()
    return latencies


async def main(args: argparse.Namespace) -> None:
    url = os.environ.get("EXECGW_DATABASE_URL")
    embedded = None
    folder = tempfile.mkdtemp(prefix="execgw-bench-")
    if not url:
        embedded = EmbeddedPostgres(Path(folder) / "data")
        url = await asyncio.to_thread(embedded.start)
    try:
        connection = await asyncpg.connect(url)
        await apply_migrations(connection)
        await connection.close()
        writer = JournalWriter(url)
        task = asyncio.create_task(writer.run())
        await writer.wait_available(10)
        await saturate(writer, args.callers, 1.0)  # warm-up
        # The gateway's collector settings (gateway.server, gc_gen0_threshold): what is alive
        # after start is frozen out of the collector, young collections run less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(Settings().gc_gen0_threshold, 20, 100)
        rates, p50s, p99s, lat_p99s, lat_p50s = [], [], [], [], []
        for _ in range(args.runs):
            rate, latencies = await saturate(writer, args.callers, args.seconds)
            rates.append(rate)
            p50s.append(percentile(latencies, 0.5) * 1e3)
            p99s.append(percentile(latencies, 0.99) * 1e3)
            at_rate = await offered(writer, args.rate, args.seconds)
            lat_p50s.append(percentile(at_rate, 0.5) * 1e3)
            lat_p99s.append(percentile(at_rate, 0.99) * 1e3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        print(
            f"journal writer, {args.callers} callers, {args.runs} runs of {args.seconds}s "
            f"(median [min-max])"
        )
        print(
            f"  durable fills/s     {statistics.median(rates):>9,.0f}  "
            f"[{min(rates):,.0f}-{max(rates):,.0f}]"
        )
        print(
            f"  commit p50 / p99 ms {statistics.median(p50s):>6.2f} / {statistics.median(p99s):.2f}"
        )
        print(
            f"  at {args.rate:,} fills/s offered: commit p50 / p99 ms "
            f"{statistics.median(lat_p50s):.2f} / {statistics.median(lat_p99s):.2f} "
            f"[p99 {min(lat_p99s):.2f}-{max(lat_p99s):.2f}]"
        )
        print(f"  rows per COPY (mean) {writer.rows_written / max(1, writer.batches_written):.1f}")
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--callers", type=int, default=128)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    import uvloop

    uvloop.run(main(parser.parse_args()))
