"""Unary gRPC throughput and latency of the gateway against the empty-handler baseline.

Both servers run pinned to core 0 and are driven by the same h2load client on core 1, alternating
rounds; the figures are medians over the rounds with min-max, and the ratio gateway/baseline.
The baseline answers with the gateway's own answer to the request (captured before the load), so
both send the same message sizes.
h2load counts gRPC errors as successes (they are HTTP 200), so each target's grpc-status is checked
with a real client before the load, twice (the first call, then the same request again: what
h2load repeats), and the gateway's error counter (``execgw_rpc_errors_total``, scraped from its
metrics port) is read after every round: any non-OK answer under load is reported.

h2load sends one fixed body: for SubmitOrder and RecordFill every request after the first is a
duplicate (same client_order_id, same venue + exec_id), so the load measures their idempotent
duplicate answer, not the first-time path (``unique_load.py`` measures that with a Python client).

Usage:
    python benchmarks/grpc_load.py --rpc CheckOrder [--rounds 5] [--seconds 5] [--clients 4]
        [--streams 16] [--no-prime] [--prime-symbols 3000] [--json FILE]

Priming (default for CheckOrder, SubmitOrder and RouteOrder): before the load, both targets get a
trading day published through PublishMarketData (reference data, an opening print and quotes on six
venues for ``--prime-symbols`` symbols, AAPL among them, at 2026-11-24 10:00 ET), and the gateway
runs with market_clock=feed, so that instant is "now" and the request takes the realistic allowed
path, not NO_REFERENCE_DATA. The gateway's answer to the request is printed before the load.

Uses EXECGW_DATABASE_URL when set, otherwise an embedded PostgreSQL in a temporary folder.
Requires h2load (Debian package nghttp2-client). ``python -m benchmarks`` runs this for every
unary RPC in one table, with the other benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psutil
from google.protobuf.message import Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.requests import REQUESTS, RequestSpec  # noqa: E402  # after the path is set

TARGETS = ("baseline", "gateway")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


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
    half_load_p999_ms: float = float("nan")
    # Non-OK answers the gateway counted during the round (None: not known, e.g. the baseline).
    errors: int | None = None
    # h2load got no answer at all in the round: its figures are not numbers.
    failed: bool = False


@dataclass(frozen=True)
class Load:
    """How h2load drives a target: for ``seconds`` (after 1 s of warm-up), ``clients``
    connections with ``streams`` requests in flight each; then half load: one connection with one
    request in flight, paced at half the saturated rate."""

    seconds: float = 5.0
    clients: int = 4
    streams: int = 16
    half_load: bool = True


@dataclass
class Server:
    """A target server in a subprocess pinned to core 0; its stderr goes to ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    metrics_port: int | None = None

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """The metrics port's samples: (name, labels, value); empty without a metrics port."""
        if self.metrics_port is None:
            return []
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        found = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            name, _, labels = head.partition("{")
            found.append((name, dict(LABEL.findall(labels)), float(value)))
        return found

    def answers(
        self, method: str, samples: list[tuple[str, dict[str, str], float]] | None = None
    ) -> dict[str, float]:
        """Answers counted so far for ``method`` (``/pkg.Service/Method``) by gRPC status code,
        from ``grpc_server_handled_total`` (empty when the server has no such metric)."""
        service, _, name = method.strip("/").partition("/")
        return {
            labels["grpc_code"]: value
            for metric, labels, value in (self.samples() if samples is None else samples)
            if metric == "grpc_server_handled_total"
            and labels.get("grpc_service") == service
            and labels.get("grpc_method") == name
        }

    def errors_of(self, method: str) -> int | None:
        """Non-OK answers counted so far for ``method`` (``/pkg.Service/Method``): from
        ``grpc_server_handled_total`` (every status), else ``execgw_rpc_errors_total`` (the
        errors the gateway's translator raised)."""
        if self.metrics_port is None:
            return None
        service, _, name = method.strip("/").partition("/")
        samples = self.samples()
        if any(s[0] == "grpc_server_handled_total" for s in samples):
            answers = self.answers(method, samples)
            return int(sum(value for code, value in answers.items() if code != "OK"))
        return int(
            sum(
                value
                for metric, labels, value in samples
                if metric == "execgw_rpc_errors_total"
                and labels.get("method") == f"{service}.{name}"
            )
        )

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the process so far (VmHWM)."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def log_errors(self) -> list[str]:
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if "ERROR" in line or "Traceback" in line
        ]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@dataclass
class Answer:
    """A target's grpc-status for the request: first call, and the same request again."""

    first: str
    repeat: str
    response: Message | None = field(default=None, repr=False)  # to the first call
    repeat_response: Message | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.first == "OK" and self.repeat == "OK"

    @property
    def under_load(self) -> Message | None:
        """The answer h2load gets: to the repeated request (a duplicate, for idempotent RPCs)."""
        return self.repeat_response if self.repeat_response is not None else self.response


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def grpc_frame(message: Message) -> bytes:
    payload = message.SerializeToString()
    return struct.pack(">?I", False, len(payload)) + payload


def wait_port(
    port: int, timeout: float = 60, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server for port {port} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def start_server(
    command: list[str], port: int, env: dict[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` pinned to core 0 and wait until ``port`` listens.

    stderr goes to ``log`` (a temporary file when not given): a pipe nobody reads would block
    the server once it fills.
    """
    if log is None:
        log = Path(tempfile.mkstemp(prefix="execgw-server-", suffix=".log")[1])
    with log.open("ab") as sink:
        process = subprocess.Popen(
            ["taskset", "-c", "0", *command], env=env, stdout=subprocess.DEVNULL, stderr=sink
        )
    wait_port(port, process=process)
    return process


def server_env() -> dict[str, str]:
    """This environment without EXECGW_* variables: the servers get their settings as flags."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}


@contextlib.contextmanager
def database(folder: Path) -> Iterator[str]:
    """EXECGW_DATABASE_URL, or an embedded PostgreSQL in ``folder`` for the duration."""
    url = os.environ.get("EXECGW_DATABASE_URL")
    if url:
        yield url
        return
    from storage.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(folder / "pgdata")
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


def start_gateway(
    database_url: str,
    folder: Path,
    feed_clock: bool,
    extra: Sequence[str] = (),
    name: str = "gateway",
) -> Server:
    """``python -m gateway serve`` on core 0, with its metrics port (for the error counter)."""
    port, metrics = free_port(), free_port()
    command = [
        *(sys.executable, "-m", "gateway", "serve", "--grpc-port", str(port)),
        *("--metrics-port", str(metrics), "--database-url", database_url),
        *("--log-level", "WARNING"),
        *(["--market-clock", "feed"] if feed_clock else []),
        *extra,
    ]
    log = folder / f"{name}.log"
    process = start_server(command, port, server_env(), log)
    return Server(name, process, port, log, metrics)


def start_baseline(responses: dict[str, bytes], folder: Path) -> Server:
    """The empty-handler server on core 0, answering each method with the given encoded message.

    ``responses`` by method path (``/execgw.v1.PreTradeService/CheckOrder``).
    """
    port = free_port()
    command = [sys.executable, str(ROOT / "benchmarks" / "empty_server.py"), "--port", str(port)]
    for method, encoded in responses.items():
        constant = folder / f"response-{method.strip('/').replace('/', '-')}.bin"
        constant.write_bytes(encoded)
        command += ["--response", f"{method.strip('/').split('.', 2)[-1]}={constant}"]
    log = folder / "baseline.log"
    return Server("baseline", start_server(command, port, server_env(), log), port, log)


def grpc_status(
    port: int, method: str, request: Message, response_type: type[Message]
) -> tuple[str, Message | None]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call: grpc.UnaryUnaryMultiCallable[Message, Message] = channel.unary_unary(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        try:
            response = call(request, timeout=10)
        except grpc.RpcError as error:
            return f"{error.code().name}: {error.details()}", None
    return "OK", response


def check(server: Server, spec: RequestSpec) -> Answer:
    """Call twice with a real client: the first call, then the repeat h2load will send."""
    first, response = grpc_status(server.port, spec.method, spec.request, spec.response)
    repeat, again = grpc_status(server.port, spec.method, spec.request, spec.response)
    return Answer(first, repeat, response, again)


def describe(response: Message | None) -> str:
    """The decision in an answer (CheckOrder, SubmitOrder, RouteOrder, RecordFill), to show which
    path was measured."""
    if response is None:
        return ""
    if response.DESCRIPTOR.name == "RecordFillResponse":
        result = response.WhichOneof("result")
        if result != "ack":
            return f"result={result} (an error answer inside an OK status): {response}".strip()
        ack = response.ack  # type: ignore[attr-defined]  # generated field
        return f"ack sequence={ack.sequence} duplicate={ack.duplicate}"
    if response.DESCRIPTOR.name == "RouteOrderResponse":
        decision = response.decision  # type: ignore[attr-defined]  # generated field
        venues = ",".join(child.venue for child in decision.child_orders) or "none"
        return f"children={len(decision.child_orders)} venues={venues}"
    check: Any = getattr(response, "check", response)
    if not hasattr(check, "allowed"):
        return ""
    reasons = ",".join(r.code for r in check.reasons) or "none"
    text = f"allowed={check.allowed} reasons={reasons} band={check.band.lower}-{check.band.upper}"
    if hasattr(response, "duplicate"):
        text += f" duplicate={response.duplicate}"
    return text


@dataclass
class H2loadRun:
    requests: int  # answered after the warm-up
    seconds: float
    latencies_ms: list[float]  # sorted
    server_cpu_seconds: float  # the server's CPU time after the warm-up (nan if not asked)
    summary: str = ""  # h2load's "requests:" and "status codes:" lines


def h2load(
    port: int,
    method: str,
    body: Path,
    seconds: float,
    clients: int,
    streams: int,
    rps: int | None,
    log: Path,
    server: psutil.Process | None = None,
) -> H2loadRun:
    """Run h2load after 1 s of warm-up; with ``server``, also its CPU time after the warm-up."""
    command = [
        *("taskset", "-c", "1", "h2load", "-D", f"{seconds:g}", "--warm-up-time", "1"),
        *("-c", str(clients), "-m", str(streams), "-d", str(body)),
        *("-H", "content-type: application/grpc", "-H", "te: trailers"),
        f"--log-file={log}",
    ]
    if rps is not None:
        command += ["--rps", str(rps)]
    command.append(f"http://127.0.0.1:{port}{method}")
    log.unlink(missing_ok=True)  # h2load appends to its log file
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = float("nan")
    if server is not None:
        time.sleep(1.0)  # h2load's warm-up
        before = _cpu_seconds(server)
    output, errors = process.communicate()
    used = _cpu_seconds(server) - before if server is not None else float("nan")
    if process.returncode != 0:
        raise SystemExit(f"h2load failed ({process.returncode}): {errors.strip()[:300]}")
    done = next(line for line in output.splitlines() if line.startswith("requests:"))
    succeeded = int(done.split("succeeded,")[0].split()[-1])
    # "finished in 3.00s, 9951.00 req/s, ...": the time includes the warm-up, the rate and the
    # counts do not.
    finished = next(line for line in output.splitlines() if line.startswith("finished in"))
    rate = float(finished.split(",")[1].split()[0])
    elapsed = succeeded / rate if rate else float("nan")
    latencies = sorted(
        int(line.split("\t")[2]) / 1000
        for line in (log.read_text().splitlines() if log.exists() else [])
        if line.strip()
    )
    summary = "; ".join(
        line.strip()
        for line in output.splitlines()
        if line.startswith(("requests:", "status codes:", "finished in"))
    )
    return H2loadRun(succeeded, elapsed, latencies, used, summary)


def h2load_paced(
    port: int,
    method: str,
    body: Path,
    seconds: float,
    rate: float,
    *,
    clients: int = 4,
    in_flight: int = 8,
    headers: Sequence[str] = (),
    output: int = subprocess.DEVNULL,
) -> subprocess.Popen[str]:
    """h2load sending ``body`` to ``method`` at ``rate`` calls/s in all for ``seconds``, started
    and left running (read its stdout with ``output=subprocess.PIPE``)."""
    return subprocess.Popen(
        [
            *("h2load", "-D", f"{seconds:g}", "-c", str(clients), "-m", str(in_flight)),
            *("--rps", str(max(1, int(rate / clients))), "-d", str(body)),
            *("-H", "content-type: application/grpc", "-H", "te: trailers"),
            *(item for header in headers for item in ("-H", header)),
            f"http://127.0.0.1:{port}{method}",
        ],
        stdout=output,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def measure(
    target: Server, method: str, body: Path, load: Load, folder: Path, name: str | None = None
) -> Round:
    """One round: saturation (and half load) against one target."""
    errors_before = target.errors_of(method)
    saturated = h2load(
        *(target.port, method, body, load.seconds, load.clients, load.streams, None),
        folder / "sat.log",
        psutil.Process(target.process.pid),
    )
    if not saturated.requests:
        # Nothing answered in the window (a stalled server, a lost connection): a failed round,
        # kept so the report shows it, not a crash of the whole run.
        print(f"  NOTE: {target.name} {method}: no answer in the round ({saturated.summary})")
        nan = float("nan")
        return Round(name or target.name, 0, load.seconds, 0.0, *(nan,) * 7, None, True)
    half = None
    if load.half_load:
        # One connection, one request in flight, paced: with more in flight h2load's --rps sends
        # them in bursts and the latency measures the burst's queue, not the server.
        rate = max(1, int(saturated.requests / saturated.seconds / 2))
        half = h2load(*(target.port, method, body, load.seconds, 1, 1, rate), folder / "half.log")
    errors_after = target.errors_of(method)
    half_latencies = half.latencies_ms if half is not None else []
    return Round(
        name or target.name,
        saturated.requests,
        saturated.seconds,
        saturated.requests / saturated.seconds,
        pct(saturated.latencies_ms, 0.5),
        pct(saturated.latencies_ms, 0.99),
        pct(saturated.latencies_ms, 0.999),
        saturated.server_cpu_seconds / max(1, saturated.requests) * 1e6,
        pct(half_latencies, 0.5),
        pct(half_latencies, 0.99),
        pct(half_latencies, 0.999),
        None if errors_before is None or errors_after is None else errors_after - errors_before,
    )


def alternate(
    targets: Sequence[Server], spec: RequestSpec, rounds: int, load: Load, folder: Path
) -> dict[str, list[Round]]:
    """An unmeasured warm-up run per target, then ``rounds`` rounds, each target in turn within
    a round, the order reversed every other round (A B, B A, ...) so a drift in the machine's
    load favours neither; by target name."""
    body = folder / "request.bin"
    body.write_bytes(grpc_frame(spec.request))
    # Unmeasured: a server process just started answers at a fraction of its rate for its first
    # seconds (seen with the baseline: 1,600 req/s, then 5,400, then 6,000).
    for target in targets:
        h2load(
            target.port, spec.method, body, 1, load.clients, load.streams, None, folder / "w.log"
        )
    results: dict[str, list[Round]] = {t.name: [] for t in targets}
    for index in range(rounds):
        for target in targets if index % 2 == 0 else list(reversed(targets)):
            results[target.name].append(measure(target, spec.method, body, load, folder))
    return results


def side_by_side(
    pairs: Sequence[tuple[Server, Server]],
    spec: RequestSpec,
    rounds: int,
    load: Load,
    folder: Path,
) -> list[tuple[list[dict[str, float | None]], list[dict[str, float | None]]]]:
    """Each pair's two servers (both pinned to core 0) driven at once, each by its own h2load
    on core 1, for ``rounds`` rounds, the pairs in turn; per pair, the rounds of each of its
    servers (CPU us per request and req/s), in pair order.

    Two servers sharing a core at the same moment meet the same interference from the rest of
    the machine, so the ratio of their CPU per request is a paired comparison that the drift of
    the machine's load (which moves figures measured one after the other by about ten percent
    here) touches less: its A/A control stays within a few percent. Their CPU per request is
    higher than alone (they evict each other's caches): compare them with each other, not with
    other tables. One unmeasured round per pair first (a server just started answers slowly at
    first); a server that answered nothing in a round has no CPU per request (None)."""
    body = folder / "request.bin"
    body.write_bytes(grpc_frame(spec.request))

    def run(server: Server) -> H2loadRun:
        return h2load(
            *(server.port, spec.method, body, load.seconds, load.clients, load.streams, None),
            folder / f"side-{server.name}.log",
            psutil.Process(server.process.pid),
        )

    found: list[tuple[list[dict[str, float | None]], list[dict[str, float | None]]]] = [
        ([], []) for _ in pairs
    ]
    with ThreadPoolExecutor(2) as pool:
        for pair in pairs:
            list(pool.map(run, pair))  # the warm-up round
        for _ in range(rounds):
            for index, pair in enumerate(pairs):
                for into, r in zip(found[index], pool.map(run, pair), strict=True):
                    into.append(
                        {
                            "cpu_us_per_request": (
                                r.server_cpu_seconds / r.requests * 1e6 if r.requests else None
                            ),
                            "rps": r.requests / r.seconds if r.seconds else 0.0,
                        }
                    )
    return found


def python_client(
    target: Server, rpc: str, seconds: float, concurrency: int, repeat: bool, first: int = 0
) -> dict[str, Any]:
    """``unique_load.py`` on core 1 against ``target``: distinct requests (or, with ``repeat``,
    the one fixed request); adds the server's CPU us per request."""
    command = [
        *("taskset", "-c", "1", sys.executable, str(ROOT / "benchmarks" / "unique_load.py")),
        *("--port", str(target.port), "--rpc", rpc, "--seconds", f"{seconds:g}"),
        *("--concurrency", str(concurrency), "--first", str(first)),
        *(["--repeat"] if repeat else []),
    ]
    server = psutil.Process(target.process.pid)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server_env()
    )
    assert process.stdout is not None
    marks: dict[str, float] = {}
    lines = []
    for line in process.stdout:
        if line.startswith("window-"):
            marks[line.strip()] = _cpu_seconds(server)
        else:
            lines.append(line)
    errors = process.stderr.read() if process.stderr is not None else ""
    if process.wait() != 0 or not lines:
        raise SystemExit(f"unique_load failed: {errors.strip()[-300:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    used = marks.get("window-end", float("nan")) - marks.get("window-start", float("nan"))
    result["cpu_us_per_request"] = used / max(1, result["requests"]) * 1e6
    result["target"] = target.name
    result["repeat"] = repeat
    return result


def prime(targets: Sequence[Server], specs: Sequence[RequestSpec], symbols: int) -> None:
    """Run each distinct ``prepare`` of ``specs`` once against every target."""
    done = []
    for spec in specs:
        if spec.prepare is not None and spec.prepare not in done:
            done.append(spec.prepare)
    for prepare in done:
        for target in targets:
            prepare(target.port, symbols)


def ratios(
    results: dict[str, list[Round]], over: str = "gateway", under: str = "baseline"
) -> list[float]:
    return [
        o.rps / u.rps if not (o.failed or u.failed) and u.rps else float("nan")
        for o, u in zip(results[over], results[under], strict=True)
    ]


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
    load = Load(args.seconds, args.clients, args.streams)
    folder = Path(tempfile.mkdtemp(prefix="execgw-load-"))
    prime_it = args.prime and spec.prepare is not None
    servers: dict[str, Server] = {}
    with database(folder) as database_url:
        try:
            servers["gateway"] = start_gateway(database_url, folder, prime_it)
            if prime_it:
                prime([servers["gateway"]], [spec], args.prime_symbols)
            answers = {"gateway": check(servers["gateway"], spec)}
            # The baseline answers with the gateway's own answer: the same message sizes both ways.
            response = answers["gateway"].under_load
            encoded = response.SerializeToString() if response is not None else b""
            servers["baseline"] = start_baseline({spec.method: encoded}, folder)
            if prime_it:
                prime([servers["baseline"]], [spec], args.prime_symbols)
            answers["baseline"] = check(servers["baseline"], spec)
            results = alternate(
                [servers["baseline"], servers["gateway"]], spec, args.rounds, load, folder
            )
        finally:
            for server in servers.values():
                server.stop()

    print(
        f"{args.rpc}: {args.rounds} rounds x {args.seconds}s, h2load -c {args.clients} "
        f"-m {args.streams}, servers on core 0, client on core 1 (median [min-max])"
    )
    if prime_it:
        print(
            f"  primed: {args.prime_symbols:,} symbols published to both targets; "
            "gateway market_clock=feed at 2026-11-24 10:00 ET"
        )
    if spec.duplicate_after_first:
        print(
            "  NOTE: h2load repeats one body: every request after the first takes the "
            "idempotent duplicate path"
        )
    for name in TARGETS:
        answer = answers[name]
        shown = describe(answer.under_load) if name == "gateway" else ""
        status = f"grpc-status first {answer.first}, repeated {answer.repeat}"
        print(f"  {name:<9} {status} {shown}".rstrip())
        for field_name, label in (
            ("rps", "req/s"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("p999_ms", "p99.9 ms"),
            ("cpu_us_per_request", "CPU us/req"),
            ("half_load_p50_ms", "half-load p50 ms"),
            ("half_load_p99_ms", "half-load p99 ms"),
            ("half_load_p999_ms", "half-load p99.9"),
        ):
            print(f"    {label:<17} {summary(results[name], field_name)}")
    errors = sum(r.errors or 0 for r in results["gateway"])
    if errors:
        print(f"  NOTE: the gateway answered {errors:,} requests under load with an error status")
    rates = ratios(results)
    print(
        f"  throughput ratio gateway/baseline: {statistics.median(rates):.3f} "
        f"[{min(rates):.3f}-{max(rates):.3f}]"
    )
    if not answers["gateway"].ok:
        print("  NOTE: the gateway did not answer OK; the ratio measures an error path")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "rpc": args.rpc,
                    "statuses": {k: v.first for k, v in answers.items()},
                    "repeat_statuses": {k: v.repeat for k, v in answers.items()},
                    "primed_symbols": args.prime_symbols if prime_it else 0,
                    "ratios": rates,
                    "rounds": {k: [asdict(r) for r in v] for k, v in results.items()},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
