"""Composition root: the only module that wires storage, services, health, reflection and metrics.

Lifespan: open the database (embedded or not; migrations applied) -> metrics endpoint -> gRPC
server with health and reflection -> SERVING. Shutdown reverses it: NOT_SERVING first, then the
gRPC server stops with a grace period so in-flight RPCs finish, then metrics, then storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace.export import SpanExporter

from gateway import __version__
from gateway._pb.execgw.v1 import (
    journal_pb2_grpc,
    market_state_pb2_grpc,
    pretrade_pb2_grpc,
    routing_pb2_grpc,
)
from gateway.api.access import Access, Limits
from gateway.api.base import Servicer, add_to_server
from gateway.api.journal import JournalServicer
from gateway.api.market_state import MarketStateServicer
from gateway.api.pretrade import PreTradeServicer
from gateway.api.routing import RoutingServicer
from gateway.attribution import AttributionSources
from gateway.cost_files import load_journal_costs
from gateway.domain.calendar import TradingCalendar
from gateway.domain.circuit_breakers import CircuitBreakerSettings
from gateway.domain.fill_probability import FillProbabilityModel, FillProbabilitySettings
from gateway.domain.luld import LuldSettings
from gateway.domain.market_state import MarketSettings, MarketStateEngine
from gateway.domain.pretrade import OutsideBandPolicy, PretradeSettings
from gateway.domain.router import RemainderPrice, Router, RouterSettings
from gateway.domain.routing_analysis import AnalysisSettings
from gateway.domain.scoring import ScoringSettings, ScoringWeights, SizeTierThresholds
from gateway.domain.short_sale import ShortSaleSettings
from gateway.domain.venue_health import HealthSettings, VenueHealth
from gateway.domain.venues import load_venues
from gateway.errors import ConfigurationError
from gateway.halt_guard import HaltGuard
from gateway.metrics import Metrics, MetricsServer
from gateway.mid_sampler import MidSampler
from gateway.routing_desk import RoutingDesk
from gateway.settings import Settings
from gateway.tracing import Tracing
from gateway.trade_journal import TradeJournal, last_trade_marks
from gateway.transport import server_credentials
from storage.database import Database, DatabaseConfig, open_database
from storage.journal import JournalWriter
from storage.market_events import MarketEventRecorder, load_short_sale_restrictions
from storage.nbbo_mids import NbboMidRecorder
from storage.routing_decisions import RoutingDecisionRecorder

log = logging.getLogger(__name__)

# Hook for adding services to the server (tests, extensions): called before the server starts.
ServiceInstaller = Callable[[grpc.aio.Server], str]


def market_settings(settings: Settings) -> MarketSettings:
    """The rule settings of the market-state engine from the process settings."""
    hours, minutes = (int(part) for part in settings.circuit_breaker_halt_cutoff.split(":"))
    return MarketSettings(
        luld=LuldSettings(
            limit_state_timeout=timedelta(seconds=settings.luld_limit_state_seconds),
            published_bands_authoritative=settings.luld_published_bands_authoritative,
        ),
        breakers=CircuitBreakerSettings(halt_cutoff=dt_time(hours, minutes)),
        short_sale=ShortSaleSettings(
            refuse_market_short_while_restricted=settings.short_sale_refuse_market_orders,
            refuse_when_no_nbb=settings.short_sale_refuse_without_nbb,
        ),
    )


def router_settings(settings: Settings) -> RouterSettings:
    """The router's settings from the process settings (read once, at start)."""
    return RouterSettings(
        scoring=ScoringSettings(
            weights=ScoringWeights(
                spread=settings.routing_weight_spread,
                latency=settings.routing_weight_latency,
                fees=settings.routing_weight_fees,
                fill_probability=settings.routing_weight_fill_probability,
            ),
            size_thresholds=SizeTierThresholds(
                medium_shares=settings.routing_medium_shares,
                large_shares=settings.routing_large_shares,
                block_shares=settings.routing_block_shares,
                medium_notional=settings.routing_medium_notional,
                large_notional=settings.routing_large_notional,
                block_notional=settings.routing_block_notional,
            ),
            latency_scale_us=settings.routing_latency_scale_us,
        ),
        max_quote_age=timedelta(seconds=settings.routing_max_quote_age_seconds),
        rest_remainder=RemainderPrice(settings.routing_rest_remainder.upper()),
    )


def analysis_settings(settings: Settings) -> AnalysisSettings:
    """The hindsight analysis settings (``GetRoutingReport``, simulated days)."""
    return AnalysisSettings(tolerance_per_share=settings.routing_accuracy_tolerance)


def health_settings(settings: Settings) -> HealthSettings:
    """The venue failover breaker's settings."""
    return HealthSettings(
        trip_duration=timedelta(seconds=settings.venue_trip_seconds),
        probation=timedelta(seconds=settings.venue_probation_seconds),
    )


def fill_probability_settings(settings: Settings) -> FillProbabilitySettings:
    """The learned fill probability's settings."""
    return FillProbabilitySettings(
        half_life=timedelta(seconds=settings.fill_probability_half_life_seconds)
    )


def _admission_options(settings: Settings) -> list[tuple[str, int]]:
    """gRPC's own admission of new calls, before the gateway sees them (0 settings: gRPC's
    defaults).

    ``max_streams_per_connection`` is HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: a client past it
    waits on its side, so a burst cannot queue more calls here than the connections allow.

    ``max_queued_calls``: gRPC holds each new call in a queue of its method, first come first
    served, until the event loop asks for the next call; while the loop is busy, those queues
    grow. Past a quarter of the limit gRPC refuses a growing share of new calls and past the
    limit every one, in C, without waking Python (status CANCELLED: gRPC's, not the gateway's
    choice): a burst costs the gateway little to refuse, and the calls it does take up are
    recent enough to answer within their deadlines instead of all expiring in a long queue.
    """
    options: list[tuple[str, int]] = []
    if settings.max_streams_per_connection:
        options.append(("grpc.max_concurrent_streams", settings.max_streams_per_connection))
    if queued := settings.max_queued_calls:
        # gRPC queues up to the first figure whatever happens; refusals grow up to the second.
        options.append(("grpc.server.max_pending_requests", queued // 4))
        options.append(("grpc.server.max_pending_requests_hard_limit", queued))
    return options


def database_config(settings: Settings) -> DatabaseConfig:
    return DatabaseConfig(
        url=settings.database_url,
        data_dir=settings.data_dir,
        pool_min_size=settings.db_pool_min_size,
        pool_max_size=settings.db_pool_max_size,
        connect_timeout=settings.db_connect_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
        migration_lock_timeout=settings.migration_lock_timeout_seconds,
    )


class Gateway:
    """One gateway process. ``start`` brings everything up; ``stop`` takes it down gracefully."""

    def __init__(
        self,
        settings: Settings,
        *,
        extra_services: Sequence[ServiceInstaller] = (),
        span_exporter: SpanExporter | None = None,
    ) -> None:
        """``span_exporter``: where spans go instead of ``tracing_exporter``'s (tests)."""
        self.settings = settings
        self.metrics = Metrics()
        self._span_exporter = span_exporter
        self.tracing = Tracing.off()
        self.health = HealthServicer()
        self._extra_services = tuple(extra_services)
        self._stack = AsyncExitStack()
        self._server: grpc.aio.Server | None = None
        self._metrics_server: MetricsServer | None = None
        self.database: Database | None = None
        self.guard: HaltGuard | None = None
        self.port = 0
        self.access: Access | None = None
        self.service_names: tuple[str, ...] = ()

    @property
    def metrics_port(self) -> int | None:
        return self._metrics_server.port if self._metrics_server else None

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> None:
        settings = self.settings
        # First: a start that would listen in clear text beyond loopback goes no further.
        credentials = server_credentials(settings)
        self.database = await self._stack.enter_async_context(
            open_database(database_config(settings))
        )
        log.info(
            "database ready",
            extra={
                "embedded": self.database.is_embedded,
                "data_dir": str(settings.data_dir) if self.database.is_embedded else None,
            },
        )
        await self._record_start(self.database)
        self.tracing = Tracing(
            settings.tracing_exporter,
            settings.tracing_sample_ratio,
            span_exporter=self._span_exporter,
        )
        self._stack.callback(self.tracing.shutdown)
        await self._start_halt_guard(self.database)
        await self._start_routing(self.database)
        await self._start_journal(self.database)

        if settings.metrics_port >= 0:
            self._metrics_server = MetricsServer(
                self.metrics, settings.metrics_host, settings.metrics_port
            )
            self._stack.callback(self._metrics_server.stop)

        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                # A second gateway on a taken port must fail, not silently share it.
                ("grpc.so_reuseport", 0),
                *_admission_options(settings),
            ],
            # Load shedding: past this many RPCs in progress (open streams included) new ones
            # are answered RESOURCE_EXHAUSTED at once instead of queueing until they time out.
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs or None,
        )
        services = self._add_services(server)
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        try:
            if credentials is None:
                self.port = server.add_insecure_port(address)
            else:
                self.port = server.add_secure_port(address, credentials)
        except RuntimeError as exc:
            raise ConfigurationError([f"grpc_port: cannot listen on {address}: {exc}"]) from exc
        await server.start()
        self._server = server
        self._stack.push_async_callback(self._stop_server)
        self.service_names = services
        for name in ("", *services):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.metrics.serving.set(1)
        if settings.gc_gen0_threshold:
            # Long-lived state (engine, venues, positions) is frozen out of the collector, and
            # young collections run less often: full collections otherwise pause the event loop
            # for ~100 ms with thousands of symbols and stream subscribers.
            gc.collect()
            gc.freeze()
            _, gen1, gen2 = gc.get_threshold()
            gc.set_threshold(settings.gc_gen0_threshold, max(gen1, 20), max(gen2, 100))
        log.info(
            "gateway serving",
            extra={"grpc": f"{settings.grpc_host}:{self.port}", "metrics_port": self.metrics_port},
        )

    async def _start_halt_guard(self, database: Database) -> None:
        settings = self.settings
        engine = MarketStateEngine(TradingCalendar.default(), market_settings(settings))
        recorder = MarketEventRecorder(database.url)
        self._own_task(recorder.run(), "market-event-recorder")
        today = engine.calendar.trade_date_of(datetime.now(UTC))
        async with database.pool.acquire() as connection:
            carried = await load_short_sale_restrictions(
                connection, None if settings.market_clock == "feed" else today
            )
        for symbol, until in carried.items():
            engine.carry_over_short_sale(symbol, until)
        self.guard = HaltGuard(
            engine,
            self.metrics,
            recorder=recorder,
            pretrade=PretradeSettings(OutsideBandPolicy(settings.outside_band_policy.upper())),
            clock=settings.market_clock,
            tick_seconds=settings.market_tick_seconds,
            # Sequences keep increasing across restarts: a stale resume point is never reused.
            first_sequence=time.time_ns() // 1000,
            retention=settings.stream_retention,
            feed_stale_seconds=settings.feed_stale_seconds,
        )
        feed = self.guard.feed
        self.metrics.market_data_stale.set_function(lambda: float(feed.stale))
        self._own_task(self.guard.run_ticker(settings.market_tick_seconds), "market-state-ticker")
        log.info("halt guard ready", extra={"short_sale_carried_over": len(carried)})

    async def _start_routing(self, database: Database) -> None:
        """Venue profiles and the router (RoutingService and the routing step of SubmitOrder)."""
        assert self.guard is not None
        settings = self.settings
        today = TradingCalendar.trade_date_of(datetime.now(UTC))
        venues = load_venues(settings.venue_profiles_file, trade_date=today)
        self.router = Router(
            router_settings(settings),
            FillProbabilityModel(venues, fill_probability_settings(settings)),
            VenueHealth(venues, health_settings(settings)),
        )
        recorder = RoutingDecisionRecorder(database.url)
        self._own_task(recorder.run(), "routing-decision-recorder")
        self.routing = RoutingDesk(
            self.guard,
            self.router,
            venues,
            self.metrics,
            recorder=recorder,
            pool=database.pool,
            analysis_settings=analysis_settings(settings),
            query_timeout=settings.db_command_timeout_seconds,
            venue_file=settings.venue_profiles_file,
        )
        if settings.venue_reload_poll_seconds > 0:
            self._own_task(
                self.routing.watch_venue_file(settings.venue_reload_poll_seconds),
                "venue-file-watch",
            )

    async def _start_journal(self, database: Database) -> None:
        """The trade journal (JournalService): writer, positions rebuilt from the journal, and
        health NOT_SERVING while the journal cannot write."""
        assert self.guard is not None
        writer = JournalWriter(
            database.url,
            connect_timeout=self.settings.db_connect_timeout_seconds,
            command_timeout=self.settings.db_command_timeout_seconds,
        )
        costs = load_journal_costs(self.settings)
        # NBBO mids for P&L attribution: sampled off the hot path, written in batches.
        mid_recorder = NbboMidRecorder(database.url)
        self._own_task(mid_recorder.run(), "nbbo-mid-recorder")
        self.mid_sampler = MidSampler(self.guard.engine, self.guard.now, mid_recorder)
        self._own_task(self.mid_sampler.run(self.settings.mid_sample_seconds), "mid-sampler")
        attribution = AttributionSources(
            database.pool,
            lambda: self.routing.venues,
            decision_recorder=self.routing.recorder,
            mids=self.mid_sampler,
            markout_horizon=timedelta(seconds=self.settings.markout_horizon_seconds),
            query_timeout=self.settings.db_command_timeout_seconds,
        )
        self.journal = TradeJournal(
            writer,
            lambda: self.routing.venues,
            self.metrics,
            database.pool,
            fee_settings=costs.fees,
            cost_methods=costs.cost_methods,
            default_cost_method=costs.default_cost_method,
            borrow_rates=costs.borrow_rates,
            attribution=attribution,
            marks=last_trade_marks(self.guard.engine),
            query_timeout=self.settings.db_command_timeout_seconds,
            position_history=self.settings.position_history or None,
        )
        fills = await self.journal.load()
        self._own_task(writer.run(), "journal-writer")
        await writer.wait_available(self.settings.db_connect_timeout_seconds)

        async def health(available: bool) -> None:
            if self._server is None:
                return  # not serving yet: _start sets SERVING once everything is up
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if available
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in ("", JournalServicer.SERVICE.full_name):
                await self.health.set(name, status)

        self._own_task(self.journal.watch_availability(health), "journal-health")
        log.info("trade journal ready", extra={"fills_replayed": fills})

    def _own_task(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        self._stack.push_async_callback(stop)

    def _add_services(self, server: grpc.aio.Server) -> tuple[str, ...]:
        assert self.guard is not None
        heartbeat = self.settings.stream_heartbeat_seconds
        pretrade = PreTradeServicer(
            self.metrics,
            self.guard,
            self.routing.route,
            heartbeat,
            on_order_event=self.routing.on_order_event,
        )
        routing = RoutingServicer(self.metrics, self.routing)
        journal = JournalServicer(self.metrics, self.journal)
        market_state = MarketStateServicer(self.metrics, self.guard, heartbeat)
        add_to_server(pretrade_pb2_grpc.add_PreTradeServiceServicer_to_server, pretrade, server)
        add_to_server(routing_pb2_grpc.add_RoutingServiceServicer_to_server, routing, server)
        add_to_server(journal_pb2_grpc.add_JournalServiceServicer_to_server, journal, server)
        add_to_server(
            market_state_pb2_grpc.add_MarketStateServiceServicer_to_server, market_state, server
        )
        self.access = self._access(pretrade, routing, journal, market_state)
        for servicer in (pretrade, routing, journal, market_state):
            servicer.tracing = self.tracing
            servicer.access = self.access
        names = [s.SERVICE.full_name for s in (pretrade, routing, journal, market_state)]
        for install in self._extra_services:
            names.append(install(server))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if self.settings.reflection:
            reflection.enable_server_reflection(
                (
                    *names,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ),
                server,
            )
        return tuple(names)

    def _access(self, *servicers: Servicer) -> Access | None:
        """Authentication and per-client limits (None when neither is configured)."""
        settings = self.settings
        limits = Limits(
            rate_per_second=settings.rate_limit_per_second,
            burst=settings.rate_limit_burst,
            max_streams=settings.max_streams_per_client,
            stream_idle_seconds=settings.stream_idle_seconds,
        )
        if settings.clients_file is None and not limits.any:
            return None
        guard = self.guard
        assert guard is not None

        def order_account(client_order_id: str) -> str | None:
            working = guard.orders.get(client_order_id)
            return working.order.account if working is not None else None

        access = Access(
            (s.SERVICE for s in servicers),
            clients_file=settings.clients_file,
            mutual_tls=settings.tls_client_ca_file is not None,
            limits=limits,
            order_accounts=order_account,
        )
        if access.limits.stream_idle_seconds or access.limits.rate_per_second:
            tick = min(1.0, access.limits.stream_idle_seconds / 4 or 1.0)
            self._own_task(access.run_watchdog(tick), "access-watchdog")
        if settings.clients_file is not None and settings.clients_reload_poll_seconds > 0:
            self._own_task(
                access.watch_clients_file(settings.clients_reload_poll_seconds),
                "clients-file-watch",
            )
        log.info(
            "access control on",
            extra={
                "authentication": access.authenticates,
                "mutual_tls": access.mutual_tls,
                "clients": len(access.registry.clients) if access.registry else 0,
                "rate_limit_per_second": limits.rate_per_second,
                "max_streams_per_client": limits.max_streams,
                "stream_idle_seconds": limits.stream_idle_seconds,
            },
        )
        return access

    def reload(self) -> None:
        """The SIGHUP handler: reload the venue profile file and the clients file."""
        self.reload_venues()
        self.reload_clients()

    def reload_clients(self) -> bool:
        """Reload the clients file (revoked tokens stop working); a bad file keeps the old one."""
        return self.access.reload_clients() if self.access is not None else False

    def reload_venues(self) -> bool:
        """Reload the venue profile file (the SIGHUP handler); a bad file keeps the old ones."""
        return self.routing.reload_venue_file()

    async def _record_start(self, database: Database) -> None:
        recorded = {k: str(v) for k, v in asdict(self.settings).items() if k != "database_url"}
        await database.pool.execute(
            "INSERT INTO gateway_starts (version, hostname, pid, settings) VALUES ($1, $2, $3, $4)",
            __version__,
            socket.gethostname(),
            os.getpid(),
            json.dumps(recorded),
        )

    async def _stop_server(self) -> None:
        if self._server is not None:
            await self._server.stop(self.settings.shutdown_grace_seconds)
            self._server = None

    async def stop(self) -> None:
        """Report NOT_SERVING, let in-flight RPCs finish within the grace period, then close."""
        await self.health.enter_graceful_shutdown()
        self.metrics.serving.set(0)
        log.info("gateway stopping", extra={"grace_seconds": self.settings.shutdown_grace_seconds})
        if self.settings.shutdown_drain_seconds:
            await asyncio.sleep(self.settings.shutdown_drain_seconds)
        await self._stack.aclose()
        log.info("gateway stopped")


async def serve(
    settings: Settings,
    *,
    extra_services: Sequence[ServiceInstaller] = (),
    on_ready: Callable[[Gateway], None] | None = None,
) -> None:
    """Run a gateway until SIGTERM or SIGINT, then shut it down gracefully. SIGHUP reloads the
    venue profile file and the clients file."""
    gateway = Gateway(settings, extra_services=extra_services)
    await gateway.start()
    if on_ready is not None:
        on_ready(gateway)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.reload)
    try:
        await stopping.wait()
    finally:
        # The handlers stay installed until the end: a second signal must not cut the graceful
        # shutdown short.
        try:
            await gateway.stop()
        finally:
            for sig in (*signals, signal.SIGHUP):
                loop.remove_signal_handler(sig)
