"""OpenTelemetry tracing of the gRPC API: a span per RPC, child spans for the work inside.

Off by default (``tracing_exporter = "none"``): then nothing below runs per request. When on:

- A request whose metadata carries a W3C ``traceparent`` (and ``tracestate``) continues that
  trace, sampled as its parent was (parent-based sampling); any other request starts a trace
  with probability ``tracing_sample_ratio``. The decision is taken before any OpenTelemetry
  call, so an unsampled request costs one random draw (the SDK's own non-recording spans cost
  microseconds each, which shows against a ~150 us request).
- The RPC span (kind SERVER) is named after the full method and carries ``rpc.system``,
  ``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code`` and what the handler adds: outcome and
  reason codes, never order or account ids.
- Child spans (``pretrade.check``, ``routing.decide``, ``journal.commit`` around a RecordFill's
  wait for its commit) are opened with ``child(name)`` by the components; outside a sampled
  request it is a shared no-op. A stream's span covers the whole stream.
- Exporters: ``console`` (one JSON document per span, one line each, on stdout), ``otlp``
  (OTLP over gRPC, when the optional ``opentelemetry-exporter-otlp-proto-grpc`` package is
  installed: the ``otlp`` extra, in the container image too; it reads the standard
  ``OTEL_EXPORTER_OTLP_*`` variables for its endpoint), spans sent in batches off the event loop
  by the SDK's batch processor.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context as TraceContext
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace import Status as OtelStatus
from opentelemetry.trace import StatusCode as OtelStatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway import __version__
from gateway.domain.orders import Reason
from gateway.errors import ConfigurationError

P = ParamSpec("P")
T = TypeVar("T")
EXPORTERS = ("none", "console", "otlp")
_PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED = frozenset(("traceparent", "tracestate"))  # the W3C trace context headers
EXPORT_EVERY_MS = 250
EXPORT_BATCH = 128
# The span of the request being handled, when it is sampled (each RPC runs in its own task,
# so its own context).
_CURRENT: ContextVar[tuple[Span, trace.Tracer] | None] = ContextVar("execgw_rpc_span", default=None)


class Tracing:
    """The process's tracer and sampling decision; ``Tracing.off()`` when disabled."""

    def __init__(
        self,
        exporter: str = "none",
        sample_ratio: float = 0.01,
        *,
        span_exporter: SpanExporter | None = None,
    ) -> None:
        """``span_exporter`` overrides the named exporter (tests pass an in-memory one)."""
        if exporter not in EXPORTERS:
            raise ConfigurationError([f"tracing_exporter={exporter}: one of {EXPORTERS}"])
        self.enabled = exporter != "none" or span_exporter is not None
        self.sample_ratio = sample_ratio
        self._random = random.Random()
        self._provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None
        if not self.enabled:
            return
        # The sampling decision for new traces is taken in ``rpc_span``; the SDK follows it and
        # a remote parent's flag.
        provider = TracerProvider(
            resource=Resource.create({"service.name": "execgw", "service.version": __version__}),
            sampler=ParentBased(root=ALWAYS_ON),
        )
        # Small batches often (the SDK's default is up to 512 spans every 5 s): an export holds
        # the GIL, and one long export stalls the event loop longer than its CPU time shows.
        provider.add_span_processor(
            BatchSpanProcessor(
                span_exporter or _named_exporter(exporter),
                # The standard OTEL_BSP_* variables still win when set (None: the SDK reads them).
                schedule_delay_millis=_unless_set("OTEL_BSP_SCHEDULE_DELAY", EXPORT_EVERY_MS),
                max_export_batch_size=_unless_set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", EXPORT_BATCH),
            )
        )
        self._provider = provider
        self._tracer = provider.get_tracer("execgw", __version__)

    @classmethod
    def off(cls) -> Tracing:
        return cls()

    def rpc_span(self, method: str, metadata: Iterable[tuple[str, Any]] | None) -> Span | None:
        """Start the span of one RPC, or return None when the request is not sampled."""
        assert self._tracer is not None
        parent: TraceContext | None = None
        carrier: dict[str, str] | None = None  # built only when the caller sent trace context
        for key, value in metadata or ():
            if key in _CARRIED:
                carrier = carrier or {}
                carrier[key] = value
        if carrier and "traceparent" in carrier:
            parent = _PROPAGATOR.extract(carrier)
            if not trace.get_current_span(parent).get_span_context().trace_flags.sampled:
                return None
        elif self._random.random() >= self.sample_ratio:
            return None
        service, _, name = method.rpartition("/")
        return self._tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )

    def enter(self, span: Span) -> Any:
        """Make ``span`` the current request's span; returns the token for ``leave``."""
        assert self._tracer is not None
        return _CURRENT.set((span, self._tracer))

    @staticmethod
    def leave(token: Any) -> None:
        _CURRENT.reset(token)

    def shutdown(self) -> None:
        """Export what is buffered and stop (the gateway's shutdown)."""
        if self._provider is not None:
            self._provider.shutdown()

    def force_flush(self) -> None:
        if self._provider is not None:
            self._provider.force_flush()


def _unless_set(variable: str, value: int) -> int | None:
    return None if os.environ.get(variable) else value


def _named_exporter(name: str) -> SpanExporter:
    if name == "console":
        # One JSON document per line: what log shippers read, and a third cheaper to write
        # than the SDK's indented default (the export thread shares the event loop's core).
        return ConsoleSpanExporter(out=sys.stdout, formatter=_one_line)
    try:  # an optional dependency: imported only when asked for
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )
    except ImportError as missing:
        raise ConfigurationError(
            [
                "tracing_exporter=otlp: install the optional exporter "
                "(pip install opentelemetry-exporter-otlp-proto-grpc; from the source tree: "
                "pip install '.[otlp]')"
            ]
        ) from missing
    exporter: SpanExporter = OTLPSpanExporter()
    return exporter


def _one_line(span: ReadableSpan) -> str:
    """A span as one compact JSON document: ids in hex, times in Unix nanoseconds (the OTLP field
    names). A few microseconds, against tens for the SDK's own ``to_json``."""
    context, parent, status = span.context, span.parent, span.status
    document = {
        "name": span.name,
        "trace_id": f"{context.trace_id:032x}" if context else None,
        "span_id": f"{context.span_id:016x}" if context else None,
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "kind": span.kind.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "service": span.resource.attributes.get("service.name"),
    }
    if status.description:
        document["status_description"] = status.description
    return json.dumps(document, separators=(",", ":")) + "\n"


def annotate(attributes: Mapping[str, Any]) -> None:
    """Add ``attributes`` to the current request's span, when it is sampled (callers on a hot
    path pass a constant mapping: nothing is built for an unsampled request)."""
    current = _CURRENT.get()
    if current is not None:
        current[0].set_attributes(attributes)


def annotate_decision(allowed: bool, reasons: Iterable[Reason]) -> None:
    """Record a decision's outcome and reason codes on the current request's span."""
    current = _CURRENT.get()
    if current is not None:
        current[0].set_attributes(
            {"execgw.allowed": allowed, "execgw.reason_codes": [r.code for r in reasons]}
        )


@contextlib.contextmanager
def _child_span(parent: Span, tracer: trace.Tracer, name: str) -> Iterator[Span]:
    # Not made the OpenTelemetry current span: children name their parent through ``_CURRENT``,
    # and attaching a context costs more than the span itself.
    span = tracer.start_span(name, context=trace.set_span_in_context(parent))
    try:
        yield span
    except BaseException as error:
        span.set_status(OtelStatus(OtelStatusCode.ERROR, type(error).__name__))
        raise
    finally:
        span.end()


_NO_CHILD = contextlib.nullcontext()


def child(name: str) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current request's span, or a no-op outside a sampled request."""
    current = _CURRENT.get()
    if current is None:
        return _NO_CHILD
    return _child_span(current[0], current[1], name)


def call(name: str, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``function`` inside a child span ``name`` of the current request's span when it is
    sampled; otherwise just call it (one context-variable read)."""
    current = _CURRENT.get()
    if current is None:
        return function(*args, **kwargs)
    with _child_span(current[0], current[1], name):
        return function(*args, **kwargs)
