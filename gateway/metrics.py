"""Prometheus metrics of one gateway process, on a registry of its own."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway import __version__
from gateway._pb.execgw.v1 import journal_pb2, market_state_pb2, pretrade_pb2, routing_pb2

# Seconds; a request is ~150 us of server CPU, so the low end is fine-grained.
RPC_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip
_RPC_BUCKETS_NS = tuple(int(b * 1e9) for b in RPC_BUCKETS)


class RpcCounts:
    """One method's requests by status code and its latency histogram, as plain numbers."""

    __slots__ = ("buckets", "by_code", "total_ns")

    def __init__(self) -> None:
        self.by_code: dict[str, int] = {}
        self.buckets = [0] * (len(RPC_BUCKETS) + 1)  # the last one is +Inf
        self.total_ns = 0

    def observe(self, code: str, elapsed_ns: int) -> None:
        self.by_code[code] = self.by_code.get(code, 0) + 1
        self.buckets[bisect_left(_RPC_BUCKETS_NS, elapsed_ns)] += 1
        self.total_ns += elapsed_ns


class RpcStats(Collector):
    """gRPC server metrics: ``grpc_server_handled_total{grpc_service,grpc_method,grpc_code}`` and
    ``grpc_server_handling_seconds{grpc_service,grpc_method}`` (the names of the usual gRPC
    Prometheus interceptors; for streams, the whole stream).

    Kept as plain counters updated on the event loop (a fraction of a microsecond a request;
    prometheus-client's locked instruments cost microseconds on every call) and turned into
    metric families when Prometheus scrapes, on the metrics thread: copying a dict or a list is
    atomic under the GIL.
    """

    def __init__(self, methods: Iterable[str] = ()) -> None:
        """``methods``: full names whose series exist from the start, at zero."""
        self._methods: dict[str, RpcCounts] = {name: RpcCounts() for name in methods}

    def method(self, full_name: str) -> RpcCounts:
        """The counts of ``full_name`` ("execgw.v1.PreTradeService.CheckOrder"), made once."""
        found = self._methods.get(full_name)
        if found is None:
            found = self._methods[full_name] = RpcCounts()
        return found

    def collect(self) -> Iterator[Metric]:
        handled = CounterMetricFamily(
            "grpc_server_handled",
            "RPCs completed on the server, by method and status code",
            labels=("grpc_service", "grpc_method", "grpc_code"),
        )
        seconds = HistogramMetricFamily(
            "grpc_server_handling_seconds",
            "Time from receiving an RPC to its end (the whole stream for streams)",
            labels=("grpc_service", "grpc_method"),
        )
        for full_name, counts in sorted(dict(self._methods).items()):
            service, _, method = full_name.rpartition(".")
            by_code = dict(counts.by_code) or {"OK": 0}
            for code, count in sorted(by_code.items()):
                handled.add_metric((service, method, code), count)
            buckets, cumulative = [], 0
            for bound, count in zip(
                (*(str(b) for b in RPC_BUCKETS), "+Inf"), list(counts.buckets), strict=True
            ):
                cumulative += count
                buckets.append((bound, cumulative))
            seconds.add_metric((service, method), buckets, counts.total_ns / 1e9)
        yield handled
        yield seconds


class Metrics:
    """The instruments; components take the ones they need from here."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.rpcs = RpcStats(
            m.full_name
            for module in (journal_pb2, market_state_pb2, pretrade_pb2, routing_pb2)
            for service in module.DESCRIPTOR.services_by_name.values()
            for m in service.methods
        )
        self.registry.register(self.rpcs)
        self.build = Info("execgw_build", "Build of the running gateway", registry=self.registry)
        self.build.info({"version": __version__})
        self.serving = Gauge(
            "execgw_serving", "1 while the gateway reports SERVING", registry=self.registry
        )
        self.rpc_errors = Counter(
            "execgw_rpc_errors_total",
            "RPCs that ended with an error status, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        # Halt safety. No order or account ids as labels: bounded label sets only.
        self.halts_detected = Counter(
            "halt_detector_halts_detected_total",
            "Halts, pauses (declared and inferred), limit states and circuit breakers detected",
            ["halt_type"],
            registry=self.registry,
        )
        self.auction_periods = Counter(
            "halt_detector_auction_periods_total",
            "Auction phases entered, by auction type",
            ["auction_type"],
            registry=self.registry,
        )
        self.orders_cancelled = Counter(
            "halt_detector_orders_cancelled_total",
            "Working orders sent a cancel instruction because their symbol halted or paused",
            registry=self.registry,
        )
        self.halt_latency = Histogram(
            "halt_detector_latency_seconds",
            "From the event's source time to the halt being published to subscribers",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )
        self.pretrade_decisions = Counter(
            "execgw_pretrade_decisions_total",
            "Pre-trade decisions by RPC and outcome (allowed or refused)",
            ["rpc", "outcome"],
            registry=self.registry,
        )
        self.market_events = Counter(
            "execgw_market_events_total",
            "Published market data events by outcome (accepted or the refusal reason)",
            ["outcome"],
            registry=self.registry,
        )
        self.market_data_stale = Gauge(
            "execgw_market_data_stale",
            "1 while orders are refused because the market data feed disconnected or went quiet",
            registry=self.registry,
        )
        self.subscribers = Gauge(
            "execgw_market_state_subscribers",
            "Open SubscribeMarketState streams",
            registry=self.registry,
        )
        # Smart order routing. Venue labels come from the venue profiles: a bounded set.
        self.routing_decisions = Counter(
            "sor_routing_decisions",
            "Routing decisions by outcome (routed, or the refusal reason)",
            ["outcome"],
            registry=self.registry,
        )
        self.routing_latency = Histogram(
            "sor_routing_latency_seconds",
            "Time the router spent on one decision, in process",
            buckets=(5e-6, 1e-5, 2e-5, 3e-5, 6e-5, 1e-4, 2.5e-4, 1e-3, 1e-2),
            registry=self.registry,
        )
        self.venue_selections = Counter(
            "sor_venue_selections",
            "Child orders routed, by venue",
            ["venue"],
            registry=self.registry,
        )
        self.venue_profile_reloads = Counter(
            "sor_venue_profile_reloads",
            "Venue profile file reloads (SIGHUP or a changed file), by result (ok, refused)",
            ["result"],
            registry=self.registry,
        )
        self.routing_accuracy = Gauge(
            "sor_routing_accuracy",
            "Share of analysed decisions whose venue was the hindsight-best (latest report)",
            registry=self.registry,
        )
        # Trade journal. Outcome labels only (recorded, duplicate, conflict, refused).
        self.journal_fills = Counter(
            "trade_journal_fills_recorded",
            "Fills answered by the journal, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.journal_pnl_calculations = Counter(
            "trade_journal_pnl_calculations",
            "P&L attributions computed",
            registry=self.registry,
        )
        self.journal_reconciliation_errors = Counter(
            "trade_journal_reconciliation_errors",
            "Reconciliation breaks found, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.journal_fill_latency = Histogram(
            "trade_journal_fill_latency_seconds",
            "From a fill's arrival to its commit (acknowledgement ready)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.journal_net_pnl = Gauge(
            "trade_journal_total_net_pnl_usd",
            "Net P&L of the latest attribution",
            registry=self.registry,
        )
        self.journal_positions = Gauge(
            "trade_journal_position_count",
            "Open (non-flat) positions",
            registry=self.registry,
        )
        self.journal_position_rebuilds = Counter(
            "trade_journal_position_rebuilds",
            "Positions rebuilt from the journal: a correction, bust or retry named a fill older "
            "than the history kept in memory (position_history)",
            registry=self.registry,
        )


class MetricsServer:
    """The HTTP endpoint Prometheus scrapes (its own thread; stopped on shutdown)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, host, registry=metrics.registry)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
