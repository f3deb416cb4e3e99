"""Prometheus metrics of one gateway process, on a registry of its own."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, start_http_server

from gateway import __version__


class Metrics:
    """The instruments; components take the ones they need from here."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
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
