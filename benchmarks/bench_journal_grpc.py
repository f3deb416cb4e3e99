"""Trade journal over gRPC: RecordFill unary against the empty handler, and RecordFills stream
throughput against the in-process journal writer's own ceiling, in the same run.

Usage:
    python benchmarks/bench_journal_grpc.py unary [grpc_load options: --rounds 3 --seconds 5 ...]
    python benchmarks/bench_journal_grpc.py stream [--seconds 5] [--streams 8] [--window 256]

``unary`` runs ``benchmarks/grpc_load.py`` with a RecordFill request. h2load sends one fixed body,
so every request after the first is a duplicate of the first fill: the measured path is the
durable duplicate answer (the writer's COPY fails on the unique key, it reads the stored fill
back, and the acknowledgement carries it marked duplicate), not a new insert per request.

``stream`` starts a gateway pinned to core 0 and a client pinned to core 1 that keeps ``--window``
unique fills in flight on each of ``--streams`` RecordFills streams, and counts acknowledgements
(each after its commit). Then it runs ``bench_journal_writer.py`` pinned to core 0 on the same
database: the in-process writer ceiling. Uses EXECGW_DATABASE_URL when set, otherwise an embedded
PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway._pb.execgw.v1 import common_pb2, journal_pb2  # noqa: E402  # after the path is set

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def fill(exec_id: str, at: datetime = T0) -> journal_pb2.Fill:
    message = journal_pb2.Fill(
        venue="NASDAQ",
        exec_id=exec_id,
        account="ACC-1",
        symbol="AAPL",
        side=common_pb2.SIDE_BUY,
        quantity=100,
        price="187.25",
        liquidity=common_pb2.LIQUIDITY_REMOVED,
        client_order_id="bench-1",
    )
    message.transaction_time.FromDatetime(at)
    return message


def unary(argv: list[str]) -> None:
    from benchmarks import grpc_load
    from benchmarks.requests import REQUESTS, RequestSpec

    REQUESTS["RecordFill"] = RequestSpec(
        "/execgw.v1.JournalService/RecordFill",
        journal_pb2.RecordFillRequest(fill=fill("H2LOAD-1")),
        journal_pb2.RecordFillResponse,
    )
    sys.argv = [sys.argv[0], "--rpc", "RecordFill", "--no-prime", *argv]
    grpc_load.main()


async def client(port: int, seconds: float, streams: int, window: int, prefix: str) -> None:
    """Run in its own process: print acknowledgements per second over all streams."""
    import grpc

    from gateway._pb.execgw.v1 import journal_pb2_grpc

    # Built before the clock starts: the client's own protobuf work is not what is measured.
    per_stream = int(40_000 * (seconds + 1) / streams)
    prepared = [
        [
            journal_pb2.RecordFillRequest(
                fill=fill(f"{prefix}-{index}-{n}", T0 + timedelta(microseconds=n))
            )
            for n in range(per_stream)
        ]
        for index in range(streams)
    ]
    counts = {"ack": 0, "error": 0}
    counting = time.perf_counter() + 1.0  # one second of warm-up
    stop = counting + seconds

    async def one(requests: list[journal_pb2.RecordFillRequest], stub: Any) -> None:
        credit = asyncio.Semaphore(window)

        async def sending():  # type: ignore[no-untyped-def]
            for request in requests:
                if time.perf_counter() >= stop:
                    return
                await credit.acquire()
                yield request

        async for answer in stub.RecordFills(sending()):
            credit.release()
            if counting <= time.perf_counter() < stop:
                counts[answer.WhichOneof("result") or "error"] += 1

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = journal_pb2_grpc.JournalServiceStub(channel)
        await asyncio.gather(*(one(requests, stub) for requests in prepared))
    print(f"{counts['ack'] / seconds:.0f} {counts['error']}")


def stream(args: argparse.Namespace) -> None:
    from benchmarks.grpc_load import free_port, start_server

    folder = Path(tempfile.mkdtemp(prefix="execgw-journal-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}
    url = os.environ.get("EXECGW_DATABASE_URL")
    embedded = None
    if not url:
        from storage.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres(folder / "pgdata")
        url = embedded.start()
    port = free_port()
    gateway = start_server(
        [
            *(sys.executable, "-m", "gateway", "serve", "--grpc-port", str(port)),
            *("--metrics-port", "-1", "--database-url", url, "--log-level", "WARNING"),
        ],
        port,
        env,
    )
    results: list[tuple[float, int]] = []
    try:
        for round_ in range(args.rounds):
            output = subprocess.run(
                [
                    *("taskset", "-c", "1", sys.executable, __file__, "client", str(port)),
                    *(str(args.seconds), str(args.streams), str(args.window), f"R{round_}"),
                ],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout.split()
            results.append((float(output[0]), int(output[1])))
    finally:
        gateway.terminate()
        gateway.wait(10)
    try:
        writer = subprocess.run(
            [
                *("taskset", "-c", "0", sys.executable),
                str(ROOT / "benchmarks/bench_journal_writer.py"),
                *("--seconds", str(args.seconds), "--runs", str(args.rounds)),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**env, "EXECGW_DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        ).stdout
    finally:
        if embedded is not None:
            embedded.stop()
    rates = sorted(rate for rate, _ in results)
    print(
        f"RecordFills: {args.rounds} rounds x {args.seconds}s, {args.streams} streams x "
        f"{args.window} in flight; gateway on core 0, client on core 1"
    )
    print(
        f"  durable fills/s acknowledged: median {rates[len(rates) // 2]:,.0f} "
        f"[{rates[0]:,.0f}-{rates[-1]:,.0f}], stream errors {sum(e for _, e in results)}"
    )
    print("in-process writer ceiling (bench_journal_writer.py, core 0, same database):")
    print("\n".join("  " + line for line in writer.splitlines()))
    ceiling = next(line for line in writer.splitlines() if "durable fills/s" in line)
    value = float(ceiling.split()[2].replace(",", ""))
    print(f"  stream / writer ceiling: {rates[len(rates) // 2] / value:.2f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        port, seconds, streams, window, prefix = sys.argv[2:7]
        import uvloop

        uvloop.run(client(int(port), float(seconds), int(streams), int(window), prefix))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "unary":
        unary(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["stream"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    stream(parser.parse_args())


if __name__ == "__main__":
    main()
