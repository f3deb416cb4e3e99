"""Trade journal over gRPC against its references, in the same run: the empty-handler grpc.aio
server (driven by the same client) and the in-process journal writer's own ceiling.

Usage:
    python benchmarks/bench_journal_grpc.py unary [grpc_load options: --rounds 5 --seconds 5 ...]
    python benchmarks/bench_journal_grpc.py stream [--seconds 5] [--rounds 3] [--streams 8]
        [--window 256] [--rate 5000] [--batch 250]

``unary`` runs ``benchmarks/grpc_load.py`` (h2load) with a RecordFill request; the baseline is
``empty_server.py`` answering with the gateway's own acknowledgement. h2load sends one fixed body,
so every request after the first repeats the first fill: this measures the retry path (an OMS
resending a fill), answered with the original acknowledgement marked duplicate.

``stream`` starts a gateway and the empty-handler server (answering with the gateway's real
acknowledgement) pinned to core 0, and a Python grpc.aio client pinned to core 1. Per round:
RecordFills with ``--window`` new fills in flight on each of ``--streams`` streams against the
gateway, then the same against the empty handler (its echo rate is what gRPC alone allows here);
RecordFillBatches with 4 batches of ``--batch`` new fills in flight on each stream;
RecordFills at ``--rate`` fills/s offered (send-to-acknowledgement latency as the client sees it,
and the gateway's own arrival-to-commit histogram, trade_journal_fill_latency_seconds); and
RecordFill unary with ``--streams`` x 8 calls in flight, each a new fill, against both servers.
Then ``bench_journal_writer.py`` pinned to core 0 on the same database: the writer ceiling and
its commit latency at ``--rate`` fills/s offered. Every figure is a median over the rounds with
min-max. Uses EXECGW_DATABASE_URL when set, otherwise an embedded PostgreSQL in a temporary
folder (PostgreSQL itself is not pinned).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import requests  # noqa: E402  # after the path is set
from gateway._pb.execgw.v1 import journal_pb2  # noqa: E402

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
# RecordFillBatches: batches in flight on each stream (each of --batch fills).
BATCHES_IN_FLIGHT = 4


def fill(exec_id: str, at: datetime = T0) -> journal_pb2.Fill:
    """The benchmark fill (benchmarks.requests') with its transaction time set to ``at``."""
    message = requests.bench_fill(exec_id)
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


async def client(
    port: int, seconds: float, streams: int, window: int, prefix: str, mode: str, rate: int
) -> None:
    """Run in its own process; prints one line of figures.

    ``stream``: ``window`` fills in flight on each of ``streams`` RecordFills streams; prints
    acknowledgements per second and stream errors. ``offered``: the same streams, sending
    ``rate`` fills per second in all; prints p50 and p99 of send-to-acknowledgement in ms.
    ``unary``: ``streams`` x ``window`` RecordFill calls in flight, each a new fill; prints calls
    answered OK per second and errors.
    """
    import grpc

    from gateway._pb.execgw.v1 import journal_pb2_grpc

    # Built before the clock starts: the client's own protobuf work is not what is measured.
    expected = rate if mode == "offered" else 40_000 if mode != "batches" else 80_000
    per_stream = int(expected * (seconds + 1.5) / streams)
    prepared = [
        [
            journal_pb2.RecordFillRequest(
                fill=fill(f"{prefix}-{index}-{n}", T0 + timedelta(microseconds=n)),
                request_id=str(n),
            )
            for n in range(per_stream)
        ]
        for index in range(streams)
    ]
    # The client's own collector must not pause it (it holds every request): freeze them.
    gc.collect()
    gc.freeze()
    counts = {"ack": 0, "error": 0}
    codes: Counter[str] = Counter()
    latencies: list[float] = []
    counting = time.perf_counter() + 1.0  # one second of warm-up
    stop = counting + seconds

    async def one(requests: list[journal_pb2.RecordFillRequest], stub: Any) -> None:
        credit = asyncio.Semaphore(window)
        sent: dict[str, float] = {}
        interval = streams / rate if mode == "offered" else 0.0

        async def sending() -> AsyncIterator[journal_pb2.RecordFillRequest]:
            begin = time.perf_counter()
            for n, request in enumerate(requests):
                now = time.perf_counter()
                if now >= stop:
                    return
                if interval:
                    due = begin + n * interval
                    if due > now:
                        await asyncio.sleep(due - now)
                else:
                    await credit.acquire()
                if interval:
                    sent[request.request_id] = time.perf_counter()
                yield request

        async for answer in stub.RecordFills(sending()):
            credit.release()
            now = time.perf_counter()
            if counting <= now < stop:
                counts[answer.WhichOneof("result") or "error"] += 1
                if interval:
                    latencies.append(now - sent.pop(answer.request_id))

    async def unary_worker(requests: list[journal_pb2.RecordFillRequest], stub: Any) -> None:
        for request in requests:
            if time.perf_counter() >= stop:
                return
            try:
                await stub.RecordFill(request)
                ok = True
            except grpc.aio.AioRpcError as error:
                ok = False
                codes[error.code().name] += 1
            if counting <= time.perf_counter() < stop:
                counts["ack" if ok else "error"] += 1

    async def batches(requests: list[journal_pb2.RecordFillRequest], stub: Any) -> None:
        credit = asyncio.Semaphore(BATCHES_IN_FLIGHT)
        messages = [
            journal_pb2.RecordFillBatch(batch_id=str(n), fills=requests[n : n + window])
            for n in range(0, len(requests), window)
        ]

        async def sending() -> AsyncIterator[journal_pb2.RecordFillBatch]:
            for message in messages:
                if time.perf_counter() >= stop:
                    return
                await credit.acquire()
                yield message

        async for answer in stub.RecordFillBatches(sending()):
            credit.release()
            if counting <= time.perf_counter() < stop:
                for result in answer.results:
                    counts[result.WhichOneof("result") or "error"] += 1
                if answer.HasField("error"):
                    counts["error"] += 1

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = journal_pb2_grpc.JournalServiceStub(channel)
        if mode == "batches":
            await asyncio.gather(*(batches(requests, stub) for requests in prepared))
        elif mode == "unary":
            # Each of ``streams`` x ``window`` workers takes every n-th request of its stream.
            await asyncio.gather(
                *(
                    unary_worker(requests[w::window], stub)
                    for requests in prepared
                    for w in range(window)
                )
            )
        else:
            await asyncio.gather(*(one(requests, stub) for requests in prepared))
    if mode == "offered":
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1e3
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3
        print(f"{p50:.3f} {p99:.3f} {len(latencies)}")
    else:
        print(f"{counts['ack'] / seconds:.0f} {counts['error']}")
    if codes:
        print(f"errors by code: {dict(codes)}", file=sys.stderr)


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):,.2f} [{min(values):,.2f}-{max(values):,.2f}]"


def _run_client(
    port: int, args: argparse.Namespace, prefix: str, mode: str, *, window: int | None = None
) -> list[float]:
    output = subprocess.run(
        [
            *("taskset", "-c", "1", sys.executable, __file__, "client", str(port)),
            *(str(args.seconds), str(args.streams), str(window or args.window), prefix),
            *(mode, str(args.rate)),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")},
    ).stdout.split()
    return [float(x) for x in output]


def _latency_buckets(metrics_port: int) -> dict[float, float]:
    """The gateway's arrival-to-commit histogram: cumulative fills by upper bound (seconds)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    buckets = {}
    for line in text.splitlines():
        if line.startswith("trade_journal_fill_latency_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def _p99_of(before: dict[float, float], after: dict[float, float]) -> tuple[float, float]:
    """The share of fills committed within 10 ms, and the p99 interpolated in its bucket (ms)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    within_10ms = counts[bounds.index(0.01)] / total if total else float("nan")
    target, lower, below = 0.99 * total, 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= target:
            if bound == float("inf"):
                return within_10ms, float("inf")
            share = (target - below) / max(count - below, 1e-9)
            return within_10ms, (lower + share * (bound - lower)) * 1e3
        lower, below = bound, count
    return within_10ms, float("nan")


def _ack_of(port: int, path: Path) -> None:
    """Write the gateway's encoded answer to a new fill: the baseline sends the same bytes."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            "/execgw.v1.JournalService/RecordFill",
            request_serializer=journal_pb2.RecordFillRequest.SerializeToString,
            response_deserializer=journal_pb2.RecordFillResponse.FromString,
        )
        answer = call(journal_pb2.RecordFillRequest(fill=fill("SIZE-1"), request_id="1"))
    path.write_bytes(answer.SerializeToString())


def _stop(servers: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every server; kill one that has not left after its grace (a loaded machine)."""
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


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
    port, empty_port, metrics_port = free_port(), free_port(), free_port()
    servers = []
    figures: dict[str, list[float]] = {
        name: []
        for name in (
            "stream",
            "stream_errors",
            "batches",
            "batch_errors",
            "empty_stream",
            "p50",
            "p99",
            "commit_p99",
            "commit_10ms",
            "unary",
            "unary_errors",
            "empty_unary",
        )
    }
    try:
        gateway = start_server(
            [
                *(sys.executable, "-m", "gateway", "serve", "--grpc-port", str(port)),
                *("--metrics-port", str(metrics_port), "--database-url", url),
                *("--log-level", "WARNING"),
            ],
            port,
            env,
        )
        servers.append(gateway)
        ack = folder / "ack.bin"
        _ack_of(port, ack)
        servers.append(
            start_server(
                [
                    *(sys.executable, str(ROOT / "benchmarks/empty_server.py")),
                    *("--port", str(empty_port)),
                    *("--response", f"JournalService/RecordFills={ack}"),
                    *("--response", f"JournalService/RecordFill={ack}"),
                ],
                empty_port,
                env,
            )
        )
        for r in range(args.rounds):
            rate, errors = _run_client(port, args, f"S{r}", "stream")
            figures["stream"].append(rate)
            figures["stream_errors"].append(errors)
            figures["empty_stream"].append(_run_client(empty_port, args, f"E{r}", "stream")[0])
            rate, errors = _run_client(port, args, f"B{r}", "batches", window=args.batch)
            figures["batches"].append(rate)
            figures["batch_errors"].append(errors)
            before = _latency_buckets(metrics_port)
            p50, p99, _ = _run_client(port, args, f"L{r}", "offered")
            within, commit_p99 = _p99_of(before, _latency_buckets(metrics_port))
            figures["p50"].append(p50)
            figures["p99"].append(p99)
            figures["commit_p99"].append(commit_p99)
            figures["commit_10ms"].append(within * 100)
            rate, errors = _run_client(port, args, f"U{r}", "unary", window=8)
            figures["unary"].append(rate)
            figures["unary_errors"].append(errors)
            figures["empty_unary"].append(
                _run_client(empty_port, args, f"V{r}", "unary", window=8)[0]
            )
    finally:
        _stop(servers)
        if embedded is not None and sys.exc_info()[0] is not None:
            embedded.stop()
    try:
        writer = subprocess.run(
            [
                *("taskset", "-c", "0", sys.executable),
                str(ROOT / "benchmarks/bench_journal_writer.py"),
                *("--seconds", str(args.seconds), "--runs", str(args.rounds)),
                *("--rate", str(args.rate)),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**env, "EXECGW_DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        ).stdout
    finally:
        if embedded is not None:
            embedded.stop()
    ceiling_line = next(line for line in writer.splitlines() if "durable fills/s" in line)
    ceiling = float(ceiling_line.split()[2].replace(",", ""))
    stream_ratio = [r / ceiling for r in figures["stream"]]
    empty_ratio = [g / e for g, e in zip(figures["stream"], figures["empty_stream"], strict=True)]
    unary_ratio = [g / e for g, e in zip(figures["unary"], figures["empty_unary"], strict=True)]
    print(
        f"journal over gRPC: {args.rounds} rounds x {args.seconds}s; servers on core 0, Python "
        f"grpc.aio client on core 1; every fill new (unique exec id); median [min-max]"
    )
    print(f"RecordFills, {args.streams} streams x {args.window} fills in flight:")
    print(f"  gateway durable fills/s       {_median(figures['stream'])}")
    print(f"  stream errors (sum)           {sum(figures['stream_errors']):.0f}")
    print(f"  empty-handler echo msgs/s     {_median(figures['empty_stream'])}")
    print(f"  gateway / empty handler       {_median(empty_ratio)}")
    print(f"  writer ceiling (below)        {ceiling:,.0f} fills/s")
    print(f"  gateway / writer ceiling      {_median(stream_ratio)}")
    batch_ratio = [r / ceiling for r in figures["batches"]]
    print(
        f"RecordFillBatches, {args.streams} streams x {BATCHES_IN_FLIGHT} batches of "
        f"{args.batch} fills in flight:"
    )
    print(f"  gateway batched fills/s       {_median(figures['batches'])}")
    print(f"  batch errors (sum)            {sum(figures['batch_errors']):.0f}")
    print(f"  gateway / writer ceiling      {_median(batch_ratio)}")
    print(f"RecordFills at {args.rate:,} fills/s offered:")
    print(f"  client send to ack p50 ms     {_median(figures['p50'])}")
    print(f"  client send to ack p99 ms     {_median(figures['p99'])}")
    print(f"  gateway arrival to commit p99 {_median(figures['commit_p99'])} ms (histogram)")
    print(f"  committed within 10 ms        {_median(figures['commit_10ms'])} %")
    print(f"RecordFill unary, {args.streams * 8} calls in flight, each a new fill:")
    print(f"  gateway calls/s               {_median(figures['unary'])}")
    print(f"  errors (sum)                  {sum(figures['unary_errors']):.0f}")
    print(f"  empty-handler calls/s         {_median(figures['empty_unary'])}")
    print(f"  gateway / empty handler       {_median(unary_ratio)}")
    print("in-process writer (bench_journal_writer.py, core 0, same database):")
    print("\n".join("  " + line for line in writer.splitlines()))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        port, seconds, streams, window, prefix, mode, rate = sys.argv[2:9]
        import uvloop

        uvloop.run(
            client(int(port), float(seconds), int(streams), int(window), prefix, mode, int(rate))
        )
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
    parser.add_argument("--rate", type=int, default=5000, help="fills/s offered for latency")
    parser.add_argument("--batch", type=int, default=250, help="fills per RecordFillBatches batch")
    stream(parser.parse_args())


if __name__ == "__main__":
    main()
