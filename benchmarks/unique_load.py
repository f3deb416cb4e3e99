"""Unary load with a distinct request per call: the first-time path h2load cannot send.

h2load sends one fixed body, so SubmitOrder and RecordFill answer it from their idempotent
duplicate path after the first request. This client (grpc.aio on uvloop, in its own process
pinned to core 1) sends each call a request with its own key (client_order_id, exec_id), built and
serialised before the clock starts, with ``--concurrency`` calls in flight; ``--repeat`` sends the
one fixed request instead, so the two paths are compared with the same client.

A Python client costs about as much CPU per call as the server, so its figures are lower than
h2load's and the baseline through it measures the client more than the server: compare the
gateway's unique and repeated figures with each other, not with the h2load table.

Usage (against a running target; ``python -m benchmarks`` runs it for you):
    python benchmarks/unique_load.py --port 50051 --rpc SubmitOrder [--seconds 5]
        [--concurrency 64] [--repeat] [--first 0]

Prints "window-start" and "window-end" lines around the measured window, then one JSON object:
requests, seconds, rps, p50/p99/p99.9 ms, errors (non-OK answers by code).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.requests import REQUESTS  # noqa: E402  # after the path is set


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def drive(
    port: int, method: str, bodies: list[bytes], seconds: float, concurrency: int
) -> dict[str, Any]:
    """Send ``bodies`` in order (cycling when ``len(bodies) == 1``) for ``seconds`` after 0.5 s
    of warm-up; latencies of the calls that started in the measured window."""
    import grpc

    latencies: list[float] = []
    errors: dict[str, int] = {}
    cursor = 0
    warm = time.perf_counter() + 0.5
    stop = warm + seconds
    repeat = len(bodies) == 1

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            method
        )  # bytes in, bytes out: no client-side protobuf work

        async def worker() -> None:
            nonlocal cursor
            clock = time.perf_counter
            while True:
                started = clock()
                if started >= stop:
                    return
                if repeat:
                    body = bodies[0]
                else:
                    if cursor >= len(bodies):
                        raise SystemExit("unique_load: ran out of prepared requests")
                    body = bodies[cursor]
                    cursor += 1
                try:
                    await call(body, timeout=30)
                except grpc.aio.AioRpcError as error:
                    errors[error.code().name] = errors.get(error.code().name, 0) + 1
                    continue
                if started >= warm:
                    latencies.append((clock() - started) * 1e3)

        async def mark() -> None:
            # The parent reads the server's CPU time at these two lines.
            await asyncio.sleep(max(0.0, warm - time.perf_counter()))
            print("window-start", flush=True)
            await asyncio.sleep(max(0.0, stop - time.perf_counter()))
            print("window-end", flush=True)

        await asyncio.gather(mark(), *(worker() for _ in range(concurrency)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "p999_ms": pct(latencies, 0.999),
        "errors": errors,
    }


def bodies_for(rpc: str, repeat: bool, first: int, count: int) -> list[bytes]:
    spec = REQUESTS[rpc]
    if repeat or spec.unique is None:
        return [spec.request.SerializeToString()]
    return [spec.unique(first + n).SerializeToString() for n in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rpc", choices=sorted(REQUESTS), required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", action="store_true", help="send the one fixed request")
    parser.add_argument("--first", type=int, default=0, help="first key number (unique mode)")
    parser.add_argument("--most-rps", type=int, default=20_000, help="requests prepared per s")
    args = parser.parse_args()
    count = int(args.most_rps * (args.seconds + 0.5))
    bodies = bodies_for(args.rpc, args.repeat, args.first, count)
    import uvloop

    result = uvloop.run(
        drive(args.port, REQUESTS[args.rpc].method, bodies, args.seconds, args.concurrency)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
