"""Composition root: the only module that wires storage, services, health, reflection and metrics.

Lifespan: open the database (embedded or not; migrations applied) -> metrics endpoint -> gRPC
server with health and reflection -> SERVING. Shutdown reverses it: NOT_SERVING first, then the
gRPC server stops with a grace period so in-flight RPCs finish, then metrics, then storage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from gateway import __version__
from gateway._pb.execgw.v1 import (
    journal_pb2_grpc,
    market_state_pb2_grpc,
    pretrade_pb2_grpc,
    routing_pb2_grpc,
)
from gateway.api.journal import JournalServicer
from gateway.api.market_state import MarketStateServicer
from gateway.api.pretrade import PreTradeServicer
from gateway.api.routing import RoutingServicer
from gateway.errors import ConfigurationError
from gateway.metrics import Metrics, MetricsServer
from gateway.settings import Settings
from storage.database import Database, DatabaseConfig, open_database

log = logging.getLogger(__name__)

# Hook for adding services to the server (tests, extensions): called before the server starts.
ServiceInstaller = Callable[[grpc.aio.Server], str]


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
        self, settings: Settings, *, extra_services: Sequence[ServiceInstaller] = ()
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.health = HealthServicer()
        self._extra_services = tuple(extra_services)
        self._stack = AsyncExitStack()
        self._server: grpc.aio.Server | None = None
        self._metrics_server: MetricsServer | None = None
        self.database: Database | None = None
        self.port = 0
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
            ]
        )
        services = self._add_services(server)
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ConfigurationError([f"grpc_port: cannot listen on {address}: {exc}"]) from exc
        await server.start()
        self._server = server
        self._stack.push_async_callback(self._stop_server)
        self.service_names = services
        for name in ("", *services):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.metrics.serving.set(1)
        log.info(
            "gateway serving",
            extra={"grpc": f"{settings.grpc_host}:{self.port}", "metrics_port": self.metrics_port},
        )

    def _add_services(self, server: grpc.aio.Server) -> tuple[str, ...]:
        pretrade = PreTradeServicer(self.metrics)
        routing = RoutingServicer(self.metrics)
        journal = JournalServicer(self.metrics)
        market_state = MarketStateServicer(self.metrics)
        pretrade_pb2_grpc.add_PreTradeServiceServicer_to_server(pretrade, server)
        routing_pb2_grpc.add_RoutingServiceServicer_to_server(routing, server)
        journal_pb2_grpc.add_JournalServiceServicer_to_server(journal, server)
        market_state_pb2_grpc.add_MarketStateServiceServicer_to_server(market_state, server)
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
    """Run a gateway until SIGTERM or SIGINT, then shut it down gracefully."""
    gateway = Gateway(settings, extra_services=extra_services)
    await gateway.start()
    if on_ready is not None:
        on_ready(gateway)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        # The handlers stay installed until the end: a second signal must not cut the graceful
        # shutdown short.
        try:
            await gateway.stop()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
