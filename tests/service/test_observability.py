"""Tracing and gRPC server metrics, as an operator sees them.

The gateway runs with an in-memory span exporter (the spans the console or OTLP exporter would
send) and its real Prometheus registry; requests go through the generated stubs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_service
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_service_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, SpanKind, StatusCode

from gateway._pb.execgw.v1 import journal_pb2 as jn
from gateway._pb.execgw.v1 import journal_pb2_grpc as jn_grpc
from gateway._pb.execgw.v1 import pretrade_pb2 as pt
from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pt_grpc
from gateway._pb.execgw.v1 import routing_pb2 as rt
from gateway._pb.execgw.v1 import routing_pb2_grpc as rt_grpc
from gateway.errors import ConfigurationError
from gateway.server import Gateway
from gateway.settings import Settings
from gateway.tracing import Tracing, child
from tests.conftest import gateway_settings, serving
from tests.service.test_halt_safety import OPEN, opening, order, publish, reference
from tests.service.test_journal_service import fill

CHECK = "execgw.v1.PreTradeService/CheckOrder"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced(
    database_url: str, tmp_path: Path, exporter: InMemorySpanExporter
) -> AsyncIterator[Gateway]:
    """Every request traced (sample ratio 1)."""
    settings = gateway_settings(
        database_url, tmp_path, market_clock="feed", tracing_sample_ratio=1.0
    )
    async with serving(settings, span_exporter=exporter) as running:
        yield running


@pytest.fixture
async def unsampled(
    database_url: str, tmp_path: Path, exporter: InMemorySpanExporter
) -> AsyncIterator[Gateway]:
    """No request starts a trace of its own (sample ratio 0): only callers' sampled traces."""
    settings = gateway_settings(
        database_url, tmp_path, market_clock="feed", tracing_sample_ratio=0.0
    )
    async with serving(settings, span_exporter=exporter) as running:
        yield running


async def _spans(
    gateway: Gateway, exporter: InMemorySpanExporter, name: str | None = None
) -> list[ReadableSpan]:
    """The finished spans; with ``name``, once a span of that name (ending with it) is among
    them: the server ends an RPC's span after the client may already have its answer."""
    for _ in range(100):
        gateway.tracing.force_flush()
        spans = list(exporter.get_finished_spans())
        if name is None or any(s.name.endswith(name) for s in spans):
            return spans
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {name} span")


async def _check(port: int, metadata: tuple[tuple[str, str], ...] = ()) -> pt.CheckOrderResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pt_grpc.PreTradeServiceStub(channel)
        response: pt.CheckOrderResponse = await stub.CheckOrder(
            pt.CheckOrderRequest(order=order(symbol="MSFT")), metadata=metadata
        )
        return response


async def test_check_order_when_traced_then_rpc_span_with_outcome_reasons_and_check_child(
    traced: Gateway, exporter: InMemorySpanExporter
) -> None:
    answer = await _check(traced.port)  # MSFT has no reference data: refused

    spans = await _spans(traced, exporter, CHECK)
    rpc = next(s for s in spans if s.name == CHECK)
    assert rpc.kind is SpanKind.SERVER
    assert rpc.attributes is not None
    assert rpc.attributes["rpc.system"] == "grpc"
    assert rpc.attributes["rpc.service"] == "execgw.v1.PreTradeService"
    assert rpc.attributes["rpc.method"] == "CheckOrder"
    assert rpc.attributes["rpc.grpc.status_code"] == "OK"
    assert rpc.attributes["execgw.allowed"] is False
    assert list(rpc.attributes["execgw.reason_codes"]) == [r.code for r in answer.reasons]
    assert "NO_REFERENCE_DATA" in rpc.attributes["execgw.reason_codes"]
    # No order or account ids on spans.
    assert "ord-1" not in str(dict(rpc.attributes)) and "ACC-1" not in str(dict(rpc.attributes))
    check = next(s for s in spans if s.name == "pretrade.check")
    assert check.parent is not None and check.parent.span_id == rpc.context.span_id
    assert check.context.trace_id == rpc.context.trace_id


async def test_route_order_when_refused_then_span_carries_status_and_reason_and_routing_child(
    traced: Gateway, exporter: InMemorySpanExporter
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{traced.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rt_grpc.RoutingServiceStub(channel).RouteOrder(
                rt.RouteOrderRequest(order=order(symbol="NOPE"))
            )
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION

    spans = await _spans(traced, exporter, "/RouteOrder")
    rpc = next(s for s in spans if s.name.endswith("/RouteOrder"))
    assert rpc.attributes is not None
    assert rpc.attributes["rpc.grpc.status_code"] == "FAILED_PRECONDITION"
    assert rpc.attributes["execgw.reason"] == "UNKNOWN_SYMBOL"
    assert rpc.status.status_code is StatusCode.ERROR


async def test_route_order_when_decided_then_routing_decide_child_span(
    traced: Gateway, exporter: InMemorySpanExporter
) -> None:
    from tests.service.test_routing import quote_events  # its book, not a copy

    async with grpc.aio.insecure_channel(f"127.0.0.1:{traced.port}") as channel:
        summary = await publish(channel, [reference(OPEN), opening(OPEN, "100.00")])
        assert summary.rejected == 0
        await publish(channel, quote_events(OPEN))
        await rt_grpc.RoutingServiceStub(channel).RouteOrder(
            rt.RouteOrderRequest(order=order(limit_price="100.01"))
        )

    spans = await _spans(traced, exporter, "routing.decide")
    rpc = next(s for s in spans if s.name.endswith("/RouteOrder"))
    decide = next(s for s in spans if s.name == "routing.decide")
    assert decide.parent is not None and decide.parent.span_id == rpc.context.span_id


async def test_request_with_sampled_traceparent_when_ratio_zero_then_continues_callers_trace(
    unsampled: Gateway, exporter: InMemorySpanExporter
) -> None:
    await _check(unsampled.port)  # no caller trace, ratio 0: not traced
    await asyncio.sleep(0.1)  # a span, if any, would have ended by now
    assert await _spans(unsampled, exporter) == []

    await _check(unsampled.port, (("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-00"),))
    await asyncio.sleep(0.1)
    assert await _spans(unsampled, exporter) == []  # the caller did not sample it

    sampled = (
        ("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"),
        ("tracestate", "vendor=opaque-value"),
    )
    await _check(unsampled.port, sampled)
    rpc = next(s for s in await _spans(unsampled, exporter, CHECK) if s.name == CHECK)
    assert format(rpc.context.trace_id, "032x") == TRACE_ID
    assert rpc.parent is not None and format(rpc.parent.span_id, "016x") == PARENT_ID
    assert rpc.parent.is_remote
    # The caller's vendor state travels with its trace.
    assert rpc.context.trace_state.get("vendor") == "opaque-value"


async def test_record_fill_when_traced_then_journal_commit_child_and_duplicate_flag(
    traced: Gateway, exporter: InMemorySpanExporter
) -> None:
    record = "execgw.v1.JournalService/RecordFill"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{traced.port}") as channel:
        stub = jn_grpc.JournalServiceStub(channel)
        first = await stub.RecordFill(jn.RecordFillRequest(fill=fill(1)))
        spans = await _spans(traced, exporter, record)
        exporter.clear()
        again = await stub.RecordFill(jn.RecordFillRequest(fill=fill(1)))
        retried = await _spans(traced, exporter, record)
    assert not first.ack.duplicate and again.ack.duplicate

    rpc = next(s for s in spans if s.name == record)
    assert rpc.attributes is not None and rpc.attributes["execgw.duplicate"] is False
    commit = next(s for s in spans if s.name == "journal.commit")
    assert commit.parent is not None and commit.parent.span_id == rpc.context.span_id
    assert commit.start_time is not None and rpc.start_time is not None
    assert commit.end_time is not None and rpc.end_time is not None
    assert rpc.start_time <= commit.start_time <= commit.end_time <= rpc.end_time

    retry = next(s for s in retried if s.name == record)
    assert retry.attributes is not None and retry.attributes["execgw.duplicate"] is True
    assert not [s for s in retried if s.name == "journal.commit"]  # answered from memory


async def test_grpc_server_metrics_count_requests_by_method_and_code_with_latency(
    unsampled: Gateway,
) -> None:
    registry = unsampled.metrics.registry
    labels = {"grpc_service": "execgw.v1.PreTradeService", "grpc_method": "CheckOrder"}
    for _ in range(3):
        await _check(unsampled.port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{unsampled.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await pt_grpc.PreTradeServiceStub(channel).CheckOrder(pt.CheckOrderRequest())

    ok = registry.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": "OK"})
    bad = registry.get_sample_value(
        "grpc_server_handled_total", {**labels, "grpc_code": "INVALID_ARGUMENT"}
    )
    assert (ok, bad) == (3, 1)
    assert registry.get_sample_value("grpc_server_handling_seconds_count", labels) == 4
    total = registry.get_sample_value("grpc_server_handling_seconds_sum", labels)
    assert total is not None and 0 < total < 4 * 5.0
    everything = registry.get_sample_value(
        "grpc_server_handling_seconds_bucket", {**labels, "le": "+Inf"}
    )
    assert everything == 4


def test_settings_refuse_unknown_exporter_and_ratio_out_of_range(tmp_path: Path) -> None:
    problems = Settings(
        tracing_exporter="zipkin", tracing_sample_ratio=1.5, data_dir=tmp_path
    ).validate()
    assert any(p.startswith("tracing_exporter='zipkin'") for p in problems)
    assert any(p.startswith("tracing_sample_ratio=1.5") for p in problems)


@contextlib.contextmanager
def _rpc_span(tracing: Tracing, method: str) -> Iterator[Span]:
    """An RPC span made current for ``child`` inside the block, then ended and exported."""
    try:
        span = tracing.rpc_span(method, ())
        assert span is not None
        token = tracing.enter(span)
        try:
            yield span
        finally:
            tracing.leave(token)
        span.end()
        tracing.force_flush()
    finally:
        tracing.shutdown()


def test_console_exporter_writes_each_span_as_one_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _rpc_span(Tracing("console", 1.0), CHECK) as span, child("pretrade.check"):
        pass
    lines = capsys.readouterr().out.splitlines()
    documents = [json.loads(line) for line in lines]
    assert [d["name"] for d in documents] == [
        "pretrade.check",
        "execgw.v1.PreTradeService/CheckOrder",
    ]
    check, rpc = documents
    assert check["parent_span_id"] == rpc["span_id"] and rpc["parent_span_id"] is None
    assert check["trace_id"] == rpc["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert rpc["kind"] == "SERVER" and check["kind"] == "INTERNAL"
    assert rpc["start_time_unix_nano"] <= check["start_time_unix_nano"]
    assert check["end_time_unix_nano"] <= rpc["end_time_unix_nano"]
    assert rpc["attributes"]["rpc.method"] == "CheckOrder"
    assert rpc["service"] == "execgw"


def test_child_span_when_the_work_raises_then_it_ends_with_error_status() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing("none", 1.0, span_exporter=exporter)
    with (
        _rpc_span(tracing, "execgw.v1.JournalService/RecordFill"),
        pytest.raises(ValueError),
        child("journal.commit"),
    ):
        raise ValueError("commit failed")
    commit = next(s for s in exporter.get_finished_spans() if s.name == "journal.commit")
    assert commit.status.status_code is StatusCode.ERROR
    assert commit.status.description == "ValueError"
    assert commit.end_time is not None


class _Collector(trace_service_grpc.TraceServiceServicer):
    """An OTLP trace collector: what an OpenTelemetry Collector would receive."""

    def __init__(self) -> None:
        self.requests: list[trace_service.ExportTraceServiceRequest] = []

    def Export(
        self, request: trace_service.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service.ExportTraceServiceResponse()


def test_otlp_exporter_sends_rpc_and_child_spans_to_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector = _Collector()
    server = grpc.server(ThreadPoolExecutor(2))
    trace_service_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        with _rpc_span(Tracing("otlp", 1.0), CHECK) as span, child("pretrade.check"):
            pass
    finally:
        server.stop(None)
    received = [
        (resource.resource, s)
        for request in collector.requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for s in scope.spans
    ]
    by_name = {s.name: s for _, s in received}
    assert set(by_name) == {CHECK, "pretrade.check"}
    rpc, check = by_name[CHECK], by_name["pretrade.check"]
    assert rpc.trace_id.hex() == f"{span.get_span_context().trace_id:032x}" == check.trace_id.hex()
    assert check.parent_span_id == rpc.span_id
    attributes = {a.key: a.value.string_value for a in rpc.attributes}
    assert attributes["rpc.service"] == "execgw.v1.PreTradeService"
    assert attributes["rpc.method"] == "CheckOrder"
    service = {a.key: a.value.string_value for a in received[0][0].attributes}
    assert service["service.name"] == "execgw"


def test_otlp_exporter_without_its_package_then_start_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if the optional package were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    with pytest.raises(ConfigurationError) as refused:
        Tracing("otlp", 0.01)
    assert "pip install opentelemetry-exporter-otlp-proto-grpc" in refused.value.problems[0]
