"""Unary gRPC throughput and latency of the gateway against the empty-handler baseline.

Both servers run pinned to core 0 and are driven by the same h2load client on core 1, alternating
rounds; the figures are medians over the rounds with min-max, and the ratio gateway/baseline.
The baseline answers with the gateway's own answer to the request (captured before the load), so
both send the same message sizes.
h2load counts gRPC errors as successes (they are HTTP 200), so each target's grpc-status is checked
with a real client before the load and reported.

Usage:
    python benchmarks/grpc_load.py --rpc CheckOrder [--rounds 5] [--seconds 5] [--clients 4]
        [--streams 16] [--no-prime] [--prime-symbols 3000] [--json FILE]

Priming (default for CheckOrder, SubmitOrder and RouteOrder): before the load, both targets get a
trading day published through PublishMarketData (reference data, an opening print and quotes on six
venues for ``--prime-symbols`` symbols, AAPL among them, at 2026-11-24 10:00 ET), and the gateway
runs with market_clock=feed, so that instant is "now" and the request takes the realistic allowed
path, not NO_REFERENCE_DATA. The gateway's answer to the request is printed before the load.

Uses EXECGW_DATABASE_URL when set, otherwise an embedded PostgreSQL in a temporary folder.
Requires h2load (Debian package nghttp2-client).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import psutil
from google.protobuf.message import Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.requests import REQUESTS  # noqa: E402  # after the path is set


@dataclass
class Round:
    target: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    cpu_us_per_request: float
    half_load_p50_ms: float
    half_load_p99_ms: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def grpc_frame(message: Message) -> bytes:
    payload = message.SerializeToString()
    return struct.pack(">?I", False, len(payload)) + payload


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def start_server(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["taskset", "-c", "0", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_port(port)
    return process


def grpc_status(
    port: int, method: str, request: Message, response_type: type[Message]
) -> tuple[str, Message | None]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        try:
            response = call(request, timeout=10)
        except grpc.RpcError as error:
            return f"{error.code().name}: {error.details()}", None
    return "OK", response


def describe(response: Message | None) -> str:
    """The decision in a CheckOrder (or SubmitOrder) answer, to show which path was measured."""
    check = getattr(response, "check", response)
    if check is None or not hasattr(check, "allowed"):
        return ""
    reasons = ",".join(r.code for r in check.reasons) or "none"
    return f"allowed={check.allowed} reasons={reasons} band={check.band.lower}-{check.band.upper}"


def h2load(
    port: int,
    method: str,
    body: Path,
    seconds: float,
    clients: int,
    streams: int,
    rps: int | None,
    log: Path,
) -> tuple[int, float, list[float]]:
    command = [
        "taskset",
        "-c",
        "1",
        "h2load",
        "-D",
        f"{seconds:g}",
        "--warm-up-time",
        "1",
        "-c",
        str(clients),
        "-m",
        str(streams),
        "-d",
        str(body),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        f"--log-file={log}",
    ]
    if rps is not None:
        command += ["--rps", str(rps)]
    command.append(f"http://127.0.0.1:{port}{method}")
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    done = next(line for line in output.splitlines() if line.startswith("requests:"))
    succeeded = int(done.split("succeeded,")[0].split()[-1])
    # "finished in 3.00s, 9951.00 req/s, ...": the time includes the warm-up, the rate does not.
    finished = next(line for line in output.splitlines() if line.startswith("finished in"))
    rate = float(finished.split(",")[1].split()[0])
    elapsed = succeeded / rate if rate else float("nan")
    latencies = sorted(
        int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line.strip()
    )
    return succeeded, elapsed, latencies


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def measure(
    target: str,
    process: subprocess.Popen[bytes],
    port: int,
    method: str,
    body: Path,
    args: argparse.Namespace,
    folder: Path,
) -> Round:
    cpu = psutil.Process(process.pid)
    before = cpu.cpu_times()
    requests, elapsed, latencies = h2load(
        port, method, body, args.seconds, args.clients, args.streams, None, folder / "sat.log"
    )
    after = cpu.cpu_times()
    used = (after.user + after.system) - (before.user + before.system)
    rps = requests / elapsed
    half = max(1, int(rps / 2))
    _, _, half_latencies = h2load(
        port, method, body, args.seconds, 1, args.streams, half, folder / "half.log"
    )
    return Round(
        target,
        requests,
        elapsed,
        rps,
        pct(latencies, 0.5),
        pct(latencies, 0.99),
        pct(latencies, 0.999),
        used / max(1, requests) * 1e6,
        pct(half_latencies, 0.5),
        pct(half_latencies, 0.99),
    )


def summary(rounds: list[Round], field: str) -> str:
    values = [getattr(r, field) for r in rounds]
    return f"{statistics.median(values):,.2f} [{min(values):,.2f}-{max(values):,.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc", choices=sorted(REQUESTS), default="CheckOrder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument(
        "--prime",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="publish market data first and run the gateway with market_clock=feed",
    )
    parser.add_argument("--prime-symbols", type=int, default=3_000, help="symbols published")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install nghttp2-client")

    spec = REQUESTS[args.rpc]
    folder = Path(tempfile.mkdtemp(prefix="execgw-load-"))
    body = folder / "request.bin"
    body.write_bytes(grpc_frame(spec.request))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}
    database_url = os.environ.get("EXECGW_DATABASE_URL")
    embedded = None
    if not database_url:
        from storage.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres(folder / "pgdata")
        database_url = embedded.start()
    prime = args.prime and spec.prepare is not None
    base_port, gateway_port = free_port(), free_port()
    ports = {"baseline": base_port, "gateway": gateway_port}
    servers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        servers["gateway"] = start_server(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--grpc-port",
                str(gateway_port),
                "--metrics-port",
                "-1",
                "--database-url",
                database_url,
                "--log-level",
                "WARNING",
                *(["--market-clock", "feed"] if prime else []),
            ],
            gateway_port,
            env,
        )
        if prime and spec.prepare is not None:
            spec.prepare(gateway_port, args.prime_symbols)
        answers = {"gateway": grpc_status(gateway_port, spec.method, spec.request, spec.response)}
        # The baseline answers with the gateway's own answer: the same message sizes both ways.
        constant = folder / "response.bin"
        gateway_answer = answers["gateway"][1]
        constant.write_bytes(gateway_answer.SerializeToString() if gateway_answer else b"")
        servers["baseline"] = start_server(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "empty_server.py"),
                "--port",
                str(base_port),
                "--response",
                f"{spec.method.strip('/').split('.', 2)[-1]}={constant}",
            ],
            base_port,
            env,
        )
        if prime and spec.prepare is not None:
            spec.prepare(base_port, args.prime_symbols)
        answers["baseline"] = grpc_status(base_port, spec.method, spec.request, spec.response)
        statuses = {name: status for name, (status, _) in answers.items()}
        results: dict[str, list[Round]] = {"baseline": [], "gateway": []}
        for _ in range(args.rounds):
            for name in ("baseline", "gateway"):
                results[name].append(
                    measure(name, servers[name], ports[name], spec.method, body, args, folder)
                )
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(10)
        if embedded is not None:
            embedded.stop()

    print(
        f"{args.rpc}: {args.rounds} rounds x {args.seconds}s, h2load -c {args.clients} "
        f"-m {args.streams}, servers on core 0, client on core 1 (median [min-max])"
    )
    if prime:
        print(
            f"  primed: {args.prime_symbols:,} symbols published to both targets; "
            "gateway market_clock=feed at 2026-11-24 10:00 ET"
        )
    for name in ("baseline", "gateway"):
        answer = describe(answers[name][1]) if name == "gateway" else ""
        print(f"  {name:<9} grpc-status {statuses[name]} {answer}".rstrip())
        for field, label in (
            ("rps", "req/s"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("p999_ms", "p99.9 ms"),
            ("cpu_us_per_request", "CPU us/req"),
            ("half_load_p50_ms", "half-load p50 ms"),
            ("half_load_p99_ms", "half-load p99 ms"),
        ):
            print(f"    {label:<17} {summary(results[name], field)}")
    ratios = [g.rps / b.rps for g, b in zip(results["gateway"], results["baseline"], strict=True)]
    print(
        f"  throughput ratio gateway/baseline: {statistics.median(ratios):.3f} "
        f"[{min(ratios):.3f}-{max(ratios):.3f}]"
    )
    if statuses["gateway"] != "OK":
        print("  NOTE: the gateway did not answer OK; the ratio measures an error path")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "rpc": args.rpc,
                    "statuses": statuses,
                    "primed_symbols": args.prime_symbols if prime else 0,
                    "ratios": ratios,
                    "rounds": {k: [asdict(r) for r in v] for k, v in results.items()},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
