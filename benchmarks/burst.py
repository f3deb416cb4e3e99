"""Burst: what happens to CheckOrder when the offered load jumps to a multiple of normal?

One gateway (real PostgreSQL, market_clock=feed, pinned to core 0 like the other targets) takes
CheckOrder from h2load at a fixed rate with a gRPC deadline on every call, in three
phases: ``--normal-rps``, then ``--factor`` times that, then normal again. For each phase it prints
the calls h2load sent and completed, the gateway's own count of answers by status code
(grpc_server_handled_total), answers per second that were OK (the goodput) and h2load's mean and
maximum time per request. A gateway that sheds well keeps its goodput near what it serves at
normal load and answers the excess at once; one that does not lets the queue grow until the
deadlines pass and the goodput collapses.

Calls refused by gRPC itself (past ``max_queued_calls``, answered CANCELLED) or expired before a
handler ran never reach the gateway's counter, and h2load counts gRPC errors as successes. So a
probe (a gRPC client in its own process, with the same deadline) sends a further ``--probe-rps``
calls per second in each phase and prints what clients saw, by status code, with its p50 and
maximum time per call.

Usage:
    python benchmarks/burst.py [--normal-rps 2000] [--factor 10] [--seconds 6] [--timeout-ms 200]
        [--probe-rps 50] [-- GATEWAY FLAGS...]
    e.g. -- --max-queued-calls 0 (gRPC's default queue bound), -- --max-streams-per-connection 16

Uses EXECGW_DATABASE_URL when set, otherwise an embedded PostgreSQL in a temporary folder.
Requires h2load (Debian package nghttp2-client). Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.grpc_load import (  # noqa: E402
    Server,
    database,
    grpc_frame,
    h2load_paced,
    prime,
    start_gateway,
)
from benchmarks.requests import REQUESTS  # noqa: E402

# Connections per 1,000 calls/s offered, and calls each may have in flight.
CONNECTIONS_PER_1000 = 2
IN_FLIGHT = 100


async def _probe(port: int, seconds: float, rate: float, timeout_ms: int) -> dict[str, object]:
    """What a client sees: CheckOrder at ``rate`` calls/s for ``seconds``, answers by code."""
    import grpc

    from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pt_grpc

    spec = REQUESTS["CheckOrder"]
    codes: dict[str, int] = {}
    times: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pt_grpc.PreTradeServiceStub(channel)
        loop = asyncio.get_running_loop()
        await channel.channel_ready()
        print("ready", flush=True)  # the phase's load starts now

        async def one() -> None:
            started = loop.time()
            try:
                await stub.CheckOrder(spec.request, timeout=timeout_ms / 1000)
                code = "OK"
            except grpc.aio.AioRpcError as error:
                code = error.code().name
            times.append(loop.time() - started)
            codes[code] = codes.get(code, 0) + 1

        calls = []
        start = loop.time()
        for n in range(int(seconds * rate)):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            calls.append(asyncio.ensure_future(one()))
        await asyncio.gather(*calls)
    times.sort()
    return {
        "codes": codes,
        "p50_ms": 1000 * times[len(times) // 2] if times else 0.0,
        "max_ms": 1000 * times[-1] if times else 0.0,
    }


def _phase(
    gateway: Server,
    body: Path,
    method: str,
    rps: int,
    seconds: float,
    timeout_ms: int,
    probe_rps: float,
) -> dict[str, object]:
    clients = max(1, CONNECTIONS_PER_1000 * rps // 1000)
    before = gateway.answers(method)
    probe = subprocess.Popen(
        [
            *(sys.executable, __file__, "--probe", str(gateway.port)),
            *("--seconds", str(seconds), "--probe-rps", str(probe_rps)),
            *("--timeout-ms", str(timeout_ms)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert probe.stdout is not None
    if probe.stdout.readline().strip() != "ready":
        raise SystemExit("the probe client did not start")
    output, _ = h2load_paced(
        *(gateway.port, method, body, seconds, rps),
        clients=clients,
        in_flight=IN_FLIGHT,
        headers=[f"grpc-timeout: {timeout_ms}m"],
        output=subprocess.PIPE,
    ).communicate()
    seen = probe.stdout.read()
    probe.wait()
    after = gateway.answers(method)
    codes = {code: after[code] - before.get(code, 0.0) for code in after}
    codes = {code: count for code, count in codes.items() if count}
    counts = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done", output)
    timing = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", output)
    return {
        "offered_per_s": rps,
        "started": int(counts.group(2)) if counts else 0,
        "done": int(counts.group(3)) if counts else 0,
        "answers": codes,
        "ok_per_s": codes.get("OK", 0.0) / seconds,
        "mean_time": timing.group(3) if timing else "-",
        "max_time": timing.group(2) if timing else "-",
        "probe": json.loads(seen),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal-rps", type=int, default=2000)
    parser.add_argument("--factor", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--timeout-ms", type=int, default=200)
    parser.add_argument("--probe-rps", type=float, default=50, help="calls/s of the client probe")
    parser.add_argument("--probe", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("gateway_flags", nargs="*", help="after --: flags for the gateway")
    args = parser.parse_args()
    if args.probe is not None:
        found = asyncio.run(_probe(args.probe, args.seconds, args.probe_rps, args.timeout_ms))
        print(json.dumps(found))
        return

    folder = Path(tempfile.mkdtemp(prefix="execgw-burst-"))
    spec = REQUESTS["CheckOrder"]
    with database(folder) as url:
        gateway = start_gateway(url, folder, True, args.gateway_flags)
        try:
            prime([gateway], [spec], 1000)
            body = folder / "body.bin"
            body.write_bytes(grpc_frame(spec.request))
            flags = " ".join(args.gateway_flags) or "(defaults)"
            print(
                f"burst: CheckOrder, {args.seconds:g} s per phase, deadline {args.timeout_ms} ms, "
                f"gateway flags {flags}"
            )
            print(f"{'phase':>8} {'offered/s':>10} {'sent':>8} {'done':>8} {'OK/s':>8}  answers")
            burst = int(args.normal_rps * args.factor)
            for name, rps in (("normal", args.normal_rps), ("burst", burst), ("after", None)):
                found = _phase(
                    gateway,
                    body,
                    spec.method,
                    rps or args.normal_rps,
                    args.seconds,
                    args.timeout_ms,
                    args.probe_rps,
                )
                probe = found["probe"]
                assert isinstance(probe, dict)
                print(
                    f"{name:>8} {found['offered_per_s']:>10,} {found['started']:>8,} "
                    f"{found['done']:>8,} {found['ok_per_s']:>8,.0f}  {found['answers']} "
                    f"(time per call mean {found['mean_time']}, max {found['max_time']})\n"
                    f"{'':>8} probe saw {probe['codes']} "
                    f"(p50 {probe['p50_ms']:.1f} ms, max {probe['max_ms']:.1f} ms)",
                    flush=True,
                )
                time.sleep(1)
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
