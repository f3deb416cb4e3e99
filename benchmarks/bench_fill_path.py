"""A fill's whole path through the gateway in-process, without gRPC: what each fill costs.

Usage:
    python benchmarks/bench_fill_path.py [--fills 100000] [--batch 250] [--runs 3]

Starts a gateway in this process (its journal writer, positions and fee schedules, on a real
PostgreSQL) and hands ``JournalService.RecordFillBatches``'s handler batches of new fills
directly, as the gRPC layer would after decoding them: each fill is validated, priced, journaled
(group commit, durable), folded into its position and acknowledged. Prints durable fills/s and
this process's CPU per fill (PostgreSQL's own work is not in it), medians over the runs.

The gRPC figures in ``bench_journal_grpc.py`` add the transport to this: an empty-handler echo of
one fill a message costs about 40 us of server CPU a message on the benchmark machine, so
``RecordFills`` at N fills/s needs (this figure + the echo's) x N us of a core each second.

Uses EXECGW_DATABASE_URL when set (the fills stay in that database), otherwise an embedded
PostgreSQL in a temporary folder. Pin it like the other servers: ``taskset -c 0 python ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.requests import FILL_TIME, bench_fill  # noqa: E402  # after the path is set
from gateway._pb.execgw.v1 import journal_pb2 as pb  # noqa: E402
from gateway.api.journal import JournalServicer  # noqa: E402
from gateway.server import Gateway  # noqa: E402
from gateway.settings import Settings  # noqa: E402


class _Context:
    """What the handler reads of a gRPC context when called without the transport."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:0"


def batches(count: int, size: int) -> list[pb.RecordFillBatch]:
    """``count`` new fills (unique exec ids) in batches of ``size``, built before the clock."""
    prefix = uuid.uuid4().hex[:12]
    made = []
    for start in range(0, count, size):
        batch = pb.RecordFillBatch(batch_id=str(start))
        for n in range(start, min(start + size, count)):
            request = batch.fills.add(request_id=str(n))
            request.fill.CopyFrom(bench_fill(f"P{prefix}-{n}"))
            request.fill.transaction_time.FromDatetime(FILL_TIME + timedelta(microseconds=n))
        made.append(batch)
    return made


async def one_run(servicer: JournalServicer, fills: int, size: int) -> tuple[float, float]:
    """Durable fills/s and CPU us per fill of one pass over ``fills`` new fills."""
    prepared = batches(fills, size)

    async def requests() -> AsyncIterator[pb.RecordFillBatch]:
        for batch in prepared:
            yield batch

    handler: Any = JournalServicer.RecordFillBatches.__wrapped__  # type: ignore[attr-defined]
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    acknowledged = 0
    async for answer in handler(servicer, requests(), _Context()):
        acknowledged += sum(1 for result in answer.results if result.HasField("ack"))
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    if acknowledged != fills:
        raise SystemExit(f"only {acknowledged} of {fills} fills were acknowledged")
    return fills / elapsed, used / fills * 1e6


@contextlib.contextmanager
def _database(folder: Path) -> Iterator[str]:
    url = os.environ.get("EXECGW_DATABASE_URL")
    if url:
        yield url
        return
    from storage.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(folder / "pgdata")
    try:
        yield embedded.start()
    finally:
        embedded.stop()


async def measure(url: str, folder: Path, args: argparse.Namespace) -> list[tuple[float, float]]:
    settings = Settings(
        grpc_port=0, metrics_port=-1, database_url=url, data_dir=folder, log_level="WARNING"
    )
    gateway = Gateway(settings)
    await gateway.start()
    try:
        servicer = JournalServicer(gateway.metrics, gateway.journal)
        await one_run(servicer, min(args.fills, 2_000), args.batch)  # warm-up
        return [await one_run(servicer, args.fills, args.batch) for _ in range(args.runs)]
    finally:
        await gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=100_000, help="new fills per run")
    parser.add_argument("--batch", type=int, default=250, help="fills per batch message")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import uvloop

    with (
        tempfile.TemporaryDirectory(prefix="execgw-fill-path-") as name,
        _database(Path(name)) as url,
    ):
        runs = uvloop.run(measure(url, Path(name), args))
    rates, costs = [r for r, _ in runs], [c for _, c in runs]
    print(
        f"fill path in-process (RecordFillBatches handler, {args.fills:,} new fills in batches "
        f"of {args.batch}, {args.runs} runs; median [min-max])"
    )
    print(
        f"  durable fills/s      {statistics.median(rates):,.0f} "
        f"[{min(rates):,.0f}-{max(rates):,.0f}]"
    )
    print(
        f"  process CPU us/fill  {statistics.median(costs):.1f} [{min(costs):.1f}-{max(costs):.1f}]"
    )


if __name__ == "__main__":
    main()
