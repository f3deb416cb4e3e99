"""Health, reflection and graceful shutdown, seen from a gRPC client."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway.server import Gateway, serve
from tests.conftest import gateway_settings

SERVICES = {
    "execgw.v1.PreTradeService",
    "execgw.v1.RoutingService",
    "execgw.v1.JournalService",
    "execgw.v1.MarketStateService",
}


async def test_running_gateway_then_health_serving_for_all_and_each_service(
    channel: grpc.aio.Channel,
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", *sorted(SERVICES)):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_reflection_then_lists_the_four_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    answer = await call.read()
    await call.done_writing()
    names = {s.name for s in answer.list_services_response.service}
    assert names >= SERVICES
    assert "grpc.health.v1.Health" in names


async def test_reflection_then_describes_a_service_without_proto_files(
    channel: grpc.aio.Channel,
) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo()
    await call.write(
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="execgw.v1.JournalService")
    )
    answer = await call.read()
    await call.done_writing()
    assert answer.file_descriptor_response.file_descriptor_proto


async def test_metrics_endpoint_then_serving_gauge_exposed(gateway: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.metrics_port)
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    assert "execgw_serving 1.0" in body


def _slow_service(started: asyncio.Event) -> object:
    async def sleep(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        started.set()
        await asyncio.sleep(0.5)
        return b"finished:" + request

    def install(server: grpc.aio.Server) -> str:
        handler = grpc.unary_unary_rpc_method_handler(sleep)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("execgw.test.Slow", {"Sleep": handler}),)
        )
        return "execgw.test.Slow"

    return install


async def test_sigterm_during_rpc_then_rpc_completes_and_health_turns_not_serving(
    database_url: str, tmp_path: Path
) -> None:
    started = asyncio.Event()
    ready: asyncio.Future[Gateway] = asyncio.get_running_loop().create_future()
    settings = gateway_settings(database_url, tmp_path, shutdown_grace_seconds=5.0)
    task = asyncio.create_task(
        serve(settings, extra_services=[_slow_service(started)], on_ready=ready.set_result)
    )
    running = await asyncio.wait_for(ready, 30)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING

        slow = channel.unary_unary("/execgw.test.Slow/Sleep")(b"order-42")
        await asyncio.wait_for(started.wait(), 10)
        os.kill(os.getpid(), signal.SIGTERM)

        after = await asyncio.wait_for(watch.read(), 10)
        assert after.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await asyncio.wait_for(slow, 10) == b"finished:order-42"
        watch.cancel()
    await asyncio.wait_for(task, 15)
    assert task.done() and task.exception() is None


async def test_second_gateway_on_a_taken_port_then_start_fails_clearly(
    gateway: Gateway, module_database_url: str, tmp_path: Path
) -> None:
    from gateway.errors import ConfigurationError

    second = Gateway(
        gateway_settings(module_database_url, tmp_path, grpc_port=gateway.port, metrics_port=-1)
    )
    with pytest.raises(ConfigurationError, match="grpc_port"):
        await second.start()
