"""Halt fan-out over gRPC: how long SubscribeMarketState subscribers take to receive a halt.

A real gateway runs in a subprocess (``Gateway`` from ``gateway.server`` with settings from
EXECGW_* variables, market_clock=feed, on uvloop, as ``python -m gateway serve`` runs it; SIGUSR1
makes it print its stream backlogs, to show that the stalled subscriber is stalled). N subscribers
(1, 100, 1,000) follow the probe symbols, split over client processes that each hold many streams
on one channel. A feed handler (this process) keeps one PublishMarketData stream open and sends
probes: a halt (T1) or resume (T2) of one of the probe symbols, the event time a real trading-day
time (Tuesday 2026-11-24 from 10:00 ET, 1 ms apart), the wall-clock send time kept here keyed by
(symbol, event time). Subscribers record (symbol, ``state.updated_at``, wall-clock receive time);
the processes share the clock, so latency = receive - send, per subscriber and probe.

Each N is measured twice: without, then with one stalled subscriber, a separate client that opens
a stream for every symbol and never reads past its snapshot. Before the second measurement, SIP
band messages for filler symbols (which only the stalled subscriber follows) are published until
the gateway reports a backlog on it: its flow-control window is full and its updates are being
conflated.

Baseline in the same run: the fan-out floor, a minimal grpc.aio server (in this file) that
serialises each halt once and queues the bytes to every subscriber, measured with the same clients,
probes and pacing. The gateway's figures next to it show what the gateway adds.

The servers are pinned to core 0; clients and this process to core 1. The figures include the
clients' own work (a grpc.aio read per message, up to N/processes streams per process; decoding
waits until the end); "CPU us/update" splits the CPU time of the measurement between the server
and the clients, and "others" is the CPU the rest of the machine used meanwhile (other sessions):
a phase flagged BUSY MACHINE was measured on shared cores and says little.

Usage:
    python benchmarks/bench_fanout.py [--subscribers 1,100,1000] [--probes 100] [--symbols 20]
        [--universe 0] [--no-pin] [--no-floor] [--profile-gateway FILE] [--json FILE]

``--universe K`` also loads K more symbols (reference data, opening print, six-venue quotes) so the
engine holds a realistic universe; with market_clock=feed every publish ticks the engine over all
of them. Uses EXECGW_DATABASE_URL when set, otherwise an embedded PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ET = ZoneInfo("America/New_York")
START = datetime(2026, 11, 24, 10, 0, tzinfo=ET).astimezone(UTC)
VENUES = ("NASDAQ", "NYSE", "NYSE_ARCA", "IEX", "BATS_BZX", "EDGX")
FILLER_SYMBOLS = 50
GOALS_MS = {100: 5.0, 1000: 50.0}
# Other sessions using more than this many cores during a phase make its figures suspect.
BUSY_CORES = 0.3
# One key per received update: (symbol, updated_at in ns).
Key = tuple[str, int]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def pin(core: int | None) -> None:
    if core is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {core})


# --- the gateway (subprocess) ------------------------------------------------------------------


class GcPauses:
    """Garbage-collector pauses of the process (a gc callback), per generation."""

    def __init__(self) -> None:
        self.started = 0
        self.count = [0, 0, 0]
        self.longest_ms = [0.0, 0.0, 0.0]
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter_ns()
            return
        generation = info["generation"]
        pause = (time.perf_counter_ns() - self.started) / 1e6
        self.count[generation] += 1
        self.longest_ms[generation] = max(self.longest_ms[generation], pause)

    def report(self) -> dict[str, Any]:
        report = {"count": self.count, "longest_ms": [round(v, 2) for v in self.longest_ms]}
        self.count, self.longest_ms = [0, 0, 0], [0.0, 0.0, 0.0]
        return report


def backlogs(gateway: Any, pauses: GcPauses) -> dict[str, Any]:
    """Server-side view of the market-state stream (private attributes: benchmark only)."""
    states = gateway.guard.states
    everything = list(states._everything)
    by_topic = list({id(s): s for m in states._by_topic.values() for s in m}.values())
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])

    def view(group: list[Any]) -> dict[str, Any]:
        return {
            "count": len(group),
            "backlogs": sorted((s.backlog for s in group), reverse=True)[:3] or [0],
            "conflated": sorted((s.conflated_total for s in group), reverse=True)[:3] or [0],
        }

    return {
        "all_symbols": view(everything),
        "probe_symbols": view(by_topic),
        "rss_mb": rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20,
        "gc": pauses.report(),  # since the previous report
    }


async def serve_gateway(profile: Path | None, gc_threshold: str | None) -> None:
    from gateway import logs
    from gateway import settings as settings_module
    from gateway.server import Gateway

    settings = settings_module.load()
    logs.configure(settings.log_level, settings.log_format)
    gateway = Gateway(settings)
    await gateway.start()
    if gc_threshold:
        # Experiment only (not what ``python -m gateway serve`` does): collect less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*(int(v) for v in gc_threshold.split(",")))
    pauses = GcPauses()
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(
        signal.SIGUSR1, lambda: print(json.dumps(backlogs(gateway, pauses)), flush=True)
    )
    print(json.dumps({"port": gateway.port}), flush=True)
    await stop.wait()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    await gateway.stop()


async def serve_floor() -> None:
    """The fan-out floor: a grpc.aio server that does the least a fan-out can do.

    PublishMarketData turns each halt or resume into one update, serialises it once and queues the
    bytes for every subscriber; SubscribeMarketState yields the bytes (no per-subscriber message
    building, no heartbeats, no conflation, no market state).
    """
    import grpc

    from gateway._pb.execgw.v1 import market_state_pb2 as ms

    queues: set[asyncio.Queue[bytes]] = set()
    snapshot = ms.MarketStateUpdate(snapshot=ms.Snapshot()).SerializeToString()
    kinds = {"halt": ms.STATE_CHANGE_HALT, "resume": ms.STATE_CHANGE_RESUME}

    async def subscribe(request: Any, context: Any) -> Any:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        queues.add(queue)
        try:
            yield snapshot
            while True:
                yield await queue.get()
        finally:
            queues.discard(queue)

    async def publish(requests: Any, context: Any) -> Any:
        accepted = 0
        async for event in requests:
            accepted += 1
            kind = kinds.get(event.WhichOneof("event") or "")
            if kind is None:
                continue
            update = ms.MarketStateUpdate()
            update.symbol.state.symbol = event.symbol
            update.symbol.state.updated_at.CopyFrom(event.event_time)
            update.symbol.changes.append(kind)
            data = update.SerializeToString()
            for queue in queues:
                queue.put_nowait(data)
        return ms.PublishMarketDataSummary(accepted=accepted)

    handler = grpc.method_handlers_generic_handler(
        "execgw.v1.MarketStateService",
        {
            "SubscribeMarketState": grpc.unary_stream_rpc_method_handler(
                subscribe, request_deserializer=ms.SubscribeMarketStateRequest.FromString
            ),
            "PublishMarketData": grpc.stream_unary_rpc_method_handler(
                publish,
                request_deserializer=ms.MarketDataEvent.FromString,
                response_serializer=ms.PublishMarketDataSummary.SerializeToString,
            ),
        },
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"127.0.0.1:{os.environ['EXECGW_GRPC_PORT']}")
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(json.dumps({}), flush=True))
    print(json.dumps({"port": port}), flush=True)
    await stop.wait()
    await server.stop(1)


class ServerProcess:
    """The gateway (``floor=False``) or the fan-out floor server, in a subprocess."""

    def __init__(
        self,
        database_url: str,
        port: int,
        core: int | None,
        profile: Path | None = None,
        floor: bool = False,
        extra_env: dict[str, str] | None = None,
        gc_threshold: str | None = None,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}
        env.update(
            EXECGW_GRPC_PORT=str(port),
            EXECGW_METRICS_PORT="-1",
            EXECGW_DATABASE_URL=database_url,
            EXECGW_MARKET_CLOCK="feed",
            EXECGW_LOG_LEVEL="WARNING",
            EXECGW_SHUTDOWN_GRACE_SECONDS="1",
        )
        env.update(extra_env or {})
        role = "--serve-floor" if floor else "--serve-gateway"
        command = [sys.executable, str(Path(__file__).resolve()), role]
        if profile is not None:
            command += ["--profile-gateway", str(profile)]
        if gc_threshold:
            command += ["--gateway-gc", gc_threshold]
        if core is not None:
            command = ["taskset", "-c", str(core), *command]
        self.log = Path(tempfile.mkstemp(prefix="execgw-fanout-", suffix=".log")[1])
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.process.stdout is not None
        self._stdout = self.process.stdout
        started = json.loads(self._stdout.readline() or "{}")
        if started.get("port") != port:
            raise SystemExit("the gateway did not start")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGUSR1)
        return dict(json.loads(self._stdout.readline()))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def errors(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if '"ERROR"' in line]


# --- subscribers (client processes) ------------------------------------------------------------


def subscriber_process(
    port: int, streams: int, symbols: list[str], stalled: bool, core: int | None, pipe: Connection
) -> None:
    """Hold ``streams`` subscriptions on one channel; record every halt/resume received."""
    import uvloop

    pin(core)
    uvloop.run(_subscribe(port, streams, symbols, stalled, pipe))


async def _subscribe(
    port: int, streams: int, symbols: list[str], stalled: bool, pipe: Connection
) -> None:
    import grpc

    from gateway._pb.execgw.v1 import market_state_pb2 as ms

    # Raw messages and their receive times: decoded after the measurement, so the clients spend
    # as little CPU as they can while it runs (they share a core).
    raw: list[tuple[bytes, int]] = []
    ready = asyncio.Event()
    pending = streams

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        subscribe = channel.unary_stream(
            "/execgw.v1.MarketStateService/SubscribeMarketState",
            request_serializer=ms.SubscribeMarketStateRequest.SerializeToString,
            response_deserializer=None,  # bytes
        )
        request = ms.SubscribeMarketStateRequest(symbols=[] if stalled else symbols)
        calls = [subscribe(request) for _ in range(streams)]
        # Refused while the gateway was taking up a storm of subscriptions (gRPC's queue bound
        # answers CANCELLED): subscribe again after a short random pause, as a client should.
        shed = {grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED}

        async def opened(n: int) -> Any:
            for _ in range(50):
                try:
                    first = await calls[n].read()
                except grpc.aio.AioRpcError as error:
                    if error.code() not in shed:
                        raise
                    await asyncio.sleep(random.uniform(0.05, 0.25))
                    calls[n] = subscribe(request)
                    continue
                if first is grpc.aio.EOF:
                    raise RuntimeError("stream ended before its snapshot")
                return calls[n]
            raise RuntimeError("subscription refused 50 times")

        async def read(n: int) -> None:
            nonlocal pending
            call = await opened(n)
            pending -= 1
            if pending == 0:
                ready.set()
            clock = time.time_ns
            append = raw.append
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    return
                append((message, clock()))

        if stalled:
            # Open the stream (the server has sent its headers and snapshot) and never read
            # past the snapshot.
            await asyncio.gather(*(opened(n) for n in range(streams)))
            tasks: list[asyncio.Task[None]] = []
            ready.set()
        else:
            tasks = [asyncio.create_task(read(n)) for n in range(streams)]
        await ready.wait()
        pipe.send("ready")
        cpu_ready = time.process_time()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_reader(pipe.fileno(), stop.set)
        await stop.wait()
        cpu = time.process_time() - cpu_ready
        loop.remove_reader(pipe.fileno())
        os.set_blocking(pipe.fileno(), True)  # the loop made it non-blocking; the results are big
        for call in calls:
            call.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    pipe.recv()
    pipe.send((decode(raw), cpu))


def decode(raw: list[tuple[bytes, int]]) -> list[tuple[str, int, int, bool]]:
    """(symbol, updated_at ns, receive ns, conflated) of every halt or resume received."""
    from gateway._pb.execgw.v1 import market_state_pb2 as ms

    wanted = {ms.STATE_CHANGE_HALT, ms.STATE_CHANGE_RESUME}
    received = []
    for data, received_ns in raw:
        message = ms.MarketStateUpdate.FromString(data)
        if message.WhichOneof("update") != "symbol":
            continue
        update = message.symbol
        if wanted.intersection(update.changes):
            at = update.state.updated_at
            updated_ns = at.seconds * 1_000_000_000 + at.nanos
            received.append((update.state.symbol, updated_ns, received_ns, message.conflated))
    return received


@dataclass
class Subscribers:
    processes: list[multiprocessing.process.BaseProcess] = field(default_factory=list)
    pipes: list[Connection] = field(default_factory=list)
    # CPU seconds the client processes used while subscribed (reading and recording).
    cpu_seconds: float = 0.0

    @classmethod
    def start(
        cls,
        port: int,
        counts: list[int],
        symbols: list[str],
        stalled: bool,
        core: int | None,
    ) -> Subscribers:
        context = multiprocessing.get_context("spawn")
        group = cls()
        for count in counts:
            parent, child = context.Pipe()
            process = context.Process(
                target=subscriber_process,
                args=(port, count, symbols, stalled, core, child),
                daemon=True,
            )
            process.start()
            group.processes.append(process)
            group.pipes.append(parent)
        for pipe in group.pipes:
            if not pipe.poll(120):
                raise SystemExit("subscribers did not get their snapshots in time")
            if pipe.recv() != "ready":
                raise SystemExit("subscriber process failed")
        return group

    def stop(self) -> list[tuple[str, int, int, bool]]:
        for pipe in self.pipes:
            pipe.send("stop")
        records: list[tuple[str, int, int, bool]] = []
        for pipe in self.pipes:
            received, cpu = pipe.recv()
            records.extend(received)
            self.cpu_seconds += cpu
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
        return records


# --- the feed handler (this process) -----------------------------------------------------------


class Feed:
    """One open PublishMarketData stream; event times strictly increase, 1 ms apart."""

    def __init__(self, channel: Any) -> None:
        from gateway._pb.execgw.v1 import market_state_pb2 as ms
        from gateway._pb.execgw.v1 import market_state_pb2_grpc as ms_grpc

        self.ms = ms
        self.stub = ms_grpc.MarketStateServiceStub(channel)
        self.call = self.stub.PublishMarketData()
        self.count = 0
        self.halted: set[str] = set()

    async def flush(self) -> None:
        """Wait until the gateway has applied everything sent (the stream's summary), reopen."""
        summary = await self.close()
        if summary.rejected:
            reasons = [r.reason.code for r in summary.rejections[:3]]
            print(f"  NOTE: {summary.rejected} published events rejected: {reasons}")
        self.call = self.stub.PublishMarketData()

    def _event(self, symbol: str, **payload: Any) -> Any:
        self.count += 1
        message = self.ms.MarketDataEvent(symbol=symbol, feed_sequence=self.count, **payload)
        at = START + timedelta(milliseconds=self.count)
        message.event_time.FromDatetime(at)
        return message, at

    async def load(self, symbols: list[str], rng: random.Random) -> None:
        """Reference data, an opening print and quotes on six venues for each symbol."""
        ms = self.ms
        from gateway._pb.execgw.v1 import common_pb2 as common

        for symbol in symbols:
            cents = rng.randint(1_000, 40_000)
            price = f"{cents / 100:.2f}"
            reference = ms.ReferenceData(
                tier=common.TIER_1,
                listing_exchange="NASDAQ",
                prior_close=price,
                trade_date="2026-11-24",
            )
            await self.call.write(self._event(symbol, reference_data=reference)[0])
            trade = ms.Trade(
                venue="NASDAQ",
                price=price,
                quantity=500,
                eligible=True,
                trade_type=ms.TRADE_TYPE_OPENING,
            )
            await self.call.write(self._event(symbol, trade=trade)[0])
            for venue in VENUES:
                quote = ms.Quote(
                    venue=venue,
                    bid_price=f"{(cents - 1) / 100:.2f}",
                    bid_size=300,
                    ask_price=f"{(cents + 1) / 100:.2f}",
                    ask_size=300,
                )
                await self.call.write(self._event(symbol, quote=quote)[0])

    async def probe(self, symbol: str) -> tuple[Key, int]:
        """Halt ``symbol`` (or resume it when halted); return its key and the send time."""
        if symbol in self.halted:
            self.halted.discard(symbol)
            resume = self.ms.ResumeMessage(reason_code="T2", phase=self.ms.RESUMPTION_PHASE_TRADING)
            message, at = self._event(symbol, resume=resume)
        else:
            self.halted.add(symbol)
            message, at = self._event(symbol, halt=self.ms.HaltMessage(reason_code="T1"))
        key = (symbol, int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1_000)
        sent = time.time_ns()
        await self.call.write(message)
        return key, sent

    async def bands(self, symbols: list[str], count: int) -> None:
        for i in range(count):
            band = self.ms.BandMessage(
                lower_band="1.00", upper_band="1000.00" if i % 2 else "999.00"
            )
            await self.call.write(self._event(symbols[i % len(symbols)], band=band)[0])

    async def close(self) -> Any:
        await self.call.done_writing()
        return await self.call


@dataclass
class Phase:
    target: str
    subscribers: int
    stalled: bool
    latencies_ms: list[float]
    completion_ms: list[float]
    expected: int
    delivered: int
    conflated: int
    server: dict[str, Any]
    gateway_cpu_s: float
    client_cpu_s: float
    # CPU the rest of the machine used during the measurement (other sessions), in cores.
    others_cores: float

    def gc(self) -> str:
        pauses = self.server.get("gc")
        if not pauses:
            return ""
        return (
            f"\n{'':17}gateway GC during the phase: collections per generation {pauses['count']}, "
            f"longest pause ms {pauses['longest_ms']}"
        )

    def row(self) -> str:
        lat = sorted(self.latencies_ms)

        def pct(values: list[float], q: float) -> float:
            return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

        done = sorted(self.completion_ms)
        per = max(1, self.delivered) / 1e6  # CPU seconds -> us per delivered update
        # Below 100 subscribers the idle work (ticker, heartbeats) dominates the CPU figures.
        cpu = (
            f"gateway {self.gateway_cpu_s / per:5.1f} clients {self.client_cpu_s / per:5.1f}"
            if self.subscribers >= 100
            else f"{'-':>13} {'-':>13}"
        )
        goal = GOALS_MS.get(self.subscribers) if self.target == "gateway" else None
        p99 = pct(lat, 0.99)
        verdict = (
            ""
            if goal is None
            else f"goal p99 <= {goal:g} ms: " + ("met" if p99 <= goal else "MISSED")
        )
        return (
            f"  {self.target:<7} {self.subscribers:>5} {'+ stalled' if self.stalled else '':<9} "
            f"p50 {pct(lat, 0.5):7.2f}  p99 {p99:7.2f}  max {max(lat, default=float('nan')):7.2f}"
            f"  | all received p50 {pct(done, 0.5):7.2f} p99 {pct(done, 0.99):7.2f}"
            f"  | got {self.delivered:,}/{self.expected:,} conflated {self.conflated}"
            f"  | CPU us/update {cpu}  | others {self.others_cores:.2f} cores"
            f"{' (BUSY MACHINE)' if self.others_cores > BUSY_CORES else ''}  {verdict}{self.gc()}"
        )


async def measure(
    target: str,
    port: int,
    feed: Feed,
    gateway: ServerProcess,
    n: int,
    stalled: bool,
    args: argparse.Namespace,
    symbols: list[str],
    rng: random.Random,
) -> Phase:
    processes = 1 if n == 1 else max(2, min(args.processes, n // 50 or 1))
    counts = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
    core = None if args.no_pin else 1
    readers = await asyncio.to_thread(Subscribers.start, port, counts, symbols, False, core)
    server: dict[str, Any] = {}
    try:
        await feed.flush()
        interval = max(args.interval_ms, n * 0.1) / 1000  # no overlap: >= the fan-out time
        sent: dict[Key, int] = {}
        cpu_before = machine_before = self_before = wall_before = 0.0
        for i in range(args.warmup + args.probes):
            if i == args.warmup:
                await asyncio.to_thread(gateway.stats)  # resets the GC pause counters
                cpu_before = gateway.cpu_seconds()
                machine_before, self_before = machine_cpu_seconds(), time.process_time()
                wall_before = time.monotonic()
            key, at = await feed.probe(symbols[i % len(symbols)])
            if i >= args.warmup:
                sent[key] = at
            await asyncio.sleep(interval * rng.uniform(0.5, 1.5))
        await asyncio.sleep(0.5)  # the last probe arrives
        gateway_cpu = gateway.cpu_seconds() - cpu_before
        machine = machine_cpu_seconds() - machine_before
        mine = time.process_time() - self_before
        wall = time.monotonic() - wall_before
        await feed.flush()
        server = await asyncio.to_thread(gateway.stats)
    finally:
        records = await asyncio.to_thread(readers.stop)
    latencies: list[float] = []
    per_probe: dict[Key, list[float]] = {}
    conflated = 0
    for symbol, updated_ns, received_ns, was_conflated in records:
        key = (symbol, updated_ns)
        if key not in sent:
            continue
        latency = (received_ns - sent[key]) / 1e6
        latencies.append(latency)
        per_probe.setdefault(key, []).append(latency)
        conflated += was_conflated
    completion = [max(v) for v in per_probe.values() if len(v) == n]
    return Phase(
        target,
        n,
        stalled,
        latencies,
        completion,
        n * len(sent),
        len(latencies),
        conflated,
        server,
        gateway_cpu,
        readers.cpu_seconds,
        max(0.0, machine - gateway_cpu - readers.cpu_seconds - mine) / wall,
    )


async def stall_one(
    port: int, feed: Feed, gateway: ServerProcess, fillers: list[str], args: argparse.Namespace
) -> tuple[Subscribers, int]:
    """Start the stalled subscriber and publish until its stream is blocked on the server."""
    core = None if args.no_pin else 1
    stall = await asyncio.to_thread(Subscribers.start, port, [1], [], True, core)
    published = 0
    for _ in range(args.fill_rounds):
        await feed.bands(fillers, 2_000)
        published += 2_000
        await feed.flush()
        await asyncio.sleep(0.3)  # a reading stream drains in that time; a stalled one cannot
        server = await asyncio.to_thread(gateway.stats)
        if server["all_symbols"]["backlogs"][0] > 0:
            return stall, published
    print("  NOTE: the stalled subscriber never backed up on the server")
    return stall, published


async def run(args: argparse.Namespace, database_url: str) -> list[Phase]:
    import grpc

    rng = random.Random(args.seed)
    core = None if args.no_pin else 0
    symbols = [f"P{i:03d}" for i in range(args.symbols)]
    phases = []
    if not args.no_floor:
        port = free_port()
        floor = await asyncio.to_thread(ServerProcess, "", port, core, None, True)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                feed = Feed(channel)
                for n in args.subscribers:
                    phase = await measure("floor", port, feed, floor, n, False, args, symbols, rng)
                    print(phase.row(), flush=True)
                    phases.append(phase)
                await feed.close()
        finally:
            await asyncio.to_thread(floor.stop)

    port = free_port()
    settings = dict(item.split("=", 1) for item in args.gateway_setting)
    gateway = await asyncio.to_thread(
        ServerProcess,
        database_url,
        port,
        core,
        args.profile_gateway,
        False,
        {f"EXECGW_{k.upper()}": v for k, v in settings.items()},
        args.gateway_gc,
    )
    fillers = [f"F{i:03d}" for i in range(FILLER_SYMBOLS)]
    universe = [f"U{i:04d}" for i in range(args.universe)]
    stall: Subscribers | None = None
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            feed = Feed(channel)
            await feed.load(symbols + fillers + universe, rng)
            for n in args.subscribers:
                phase = await measure("gateway", port, feed, gateway, n, False, args, symbols, rng)
                print(phase.row(), flush=True)
                phases.append(phase)
            stall, published = await stall_one(port, feed, gateway, fillers, args)
            server = await asyncio.to_thread(gateway.stats)
            print(
                "  stalled subscriber (all symbols, reads only its snapshot): blocked after "
                f"{published:,} filler updates; "
                f"server backlog {server['all_symbols']['backlogs'][0]}, "
                f"conflated {server['all_symbols']['conflated'][0]:,}",
                flush=True,
            )
            for n in args.subscribers:
                phase = await measure("gateway", port, feed, gateway, n, True, args, symbols, rng)
                print(phase.row(), flush=True)
                phases.append(phase)
            server = await asyncio.to_thread(gateway.stats)
            print(
                f"  after: stalled stream backlog {server['all_symbols']['backlogs'][0]} "
                f"(bounded by its keys), conflated {server['all_symbols']['conflated'][0]:,}; "
                f"gateway RSS {server['rss_mb']:.0f} MB",
                flush=True,
            )
            await feed.close()
    finally:
        if stall is not None:
            await asyncio.to_thread(stall.stop)
        await asyncio.to_thread(gateway.stop)
    errors = gateway.errors()
    if errors:
        print(f"  gateway log: {len(errors)} ERROR lines, e.g. {errors[0][:160]} ({gateway.log})")
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="1,100,1000")
    parser.add_argument("--probes", type=int, default=100, help="measured per phase")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--interval-ms", type=float, default=20.0, help="mean probe spacing")
    parser.add_argument("--symbols", type=int, default=20, help="probe symbols")
    parser.add_argument("--universe", type=int, default=0, help="extra loaded symbols")
    parser.add_argument("--processes", type=int, default=4, help="client processes for large N")
    parser.add_argument("--fill-rounds", type=int, default=20, help="most 2,000-band fills")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    parser.add_argument("--no-floor", action="store_true", help="skip the fan-out floor server")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--profile-gateway", type=Path, help="write the gateway's cProfile stats to this file"
    )
    parser.add_argument(
        "--gateway-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a gateway setting (stream_heartbeat_seconds=60); repeatable",
    )
    parser.add_argument(
        "--gateway-gc",
        metavar="G0,G1,G2",
        help="experiment: the gateway freezes its startup heap and sets these GC thresholds",
    )
    parser.add_argument("--serve-gateway", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        import uvloop

        uvloop.run(serve_gateway(args.profile_gateway, args.gateway_gc))
        return
    if args.serve_floor:
        import uvloop

        uvloop.run(serve_floor())
        return
    args.subscribers = [int(n) for n in args.subscribers.split(",")]
    pin(None if args.no_pin else 1)
    started = time.monotonic()
    database_url = os.environ.get("EXECGW_DATABASE_URL")
    embedded = None
    if not database_url:
        from storage.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="execgw-fanout-")) / "pgdata")
        database_url = embedded.start()
    print(
        f"halt fan-out: {args.probes} probes per phase (+{args.warmup} warm-up), "
        f"{args.symbols} probe symbols, {args.universe} more loaded, market_clock=feed, "
        f"{'no pinning' if args.no_pin else 'gateway on core 0, clients on core 1'}; "
        "latency ms from send to receive, over every (probe, subscriber)",
        flush=True,
    )
    try:
        import uvloop

        phases = uvloop.run(run(args, database_url))
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"  ({time.monotonic() - started:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                [
                    {
                        "target": p.target,
                        "subscribers": p.subscribers,
                        "stalled": p.stalled,
                        "p50_ms": statistics.median(p.latencies_ms) if p.latencies_ms else None,
                        "others_cores": p.others_cores,
                        "gateway_cpu_s": p.gateway_cpu_s,
                        "client_cpu_s": p.client_cpu_s,
                        "latencies_ms": p.latencies_ms,
                        "server": p.server,
                    }
                    for p in phases
                ],
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
