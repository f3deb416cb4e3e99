"""The ghz configurations in benchmarks/ghz stay in step with the protos.

ghz is not installed here, so the test checks what would make a run fail: the call names an RPC of
the gateway, the config relies on server reflection (no proto or protoset paths), and the request
body parses into the RPC's request message with protobuf's JSON rules (unknown fields and enum
names are errors). Every unary RPC has a config, and so does the subscription stream. Against a
running gateway, every service a config calls is listed by server reflection, and every body is
accepted as valid (an answer, or a refusal that is not about the request's shape).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway._pb.execgw.v1 import journal_pb2, market_state_pb2, pretrade_pb2, routing_pb2

GHZ = Path(__file__).resolve().parent.parent / "benchmarks" / "ghz"
CONFIGS = sorted(GHZ.glob("*.json"))
# ghz renders these template actions in string values before sending.
TEMPLATE = re.compile(r"\{\{\s*\.(RequestNumber|TimestampUnixMilli|WorkerID)\s*\}\}")
STREAM = "execgw.v1.MarketStateService.SubscribeMarketState"
# Answers that say the request itself is wrong, or the RPC is missing.
SHAPE_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED}


def _methods() -> dict[str, MethodDescriptor]:
    found = {}
    for module in (pretrade_pb2, routing_pb2, journal_pb2, market_state_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found[f"{service.full_name}.{method.name}"] = method
    return found


METHODS = _methods()


def _load(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return config


def _rendered(value: Any) -> Any:
    """The body as ghz sends it: template actions replaced by a sample value."""
    if isinstance(value, str):
        return TEMPLATE.sub("7", value)
    if isinstance(value, list):
        return [_rendered(v) for v in value]
    if isinstance(value, dict):
        return {k: _rendered(v) for k, v in value.items()}
    return value


def test_every_unary_rpc_and_the_subscription_stream_have_a_config() -> None:
    calls = {_load(path)["call"] for path in CONFIGS}
    unary = {
        name
        for name, method in METHODS.items()
        if not method.client_streaming and not method.server_streaming
    }
    assert unary <= calls, f"no ghz config for {sorted(unary - calls)}"
    assert STREAM in calls


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_uses_reflection_and_its_data_parses_into_the_request(path: Path) -> None:
    config = _load(path)
    assert not {"proto", "protoset", "import-paths"} & config.keys(), "use server reflection"
    assert config["insecure"] is True
    assert re.fullmatch(r"[\w.-]+:\d+", config["host"])
    method = METHODS.get(config["call"])
    assert method is not None, f"{config['call']} is not an RPC of the gateway"
    assert not method.client_streaming, "ghz configs here are for unary and server-streaming RPCs"
    request = message_factory.GetMessageClass(method.input_type)()
    json_format.ParseDict(_rendered(config["data"]), request)  # ParseError on any drift
    if "order" in request.DESCRIPTOR.fields_by_name:
        order = getattr(request, "order")  # noqa: B009  # the message class is built at run time
        assert order.limit_price and order.quantity > 0, "a realistic, allowed order"
    if method.server_streaming:
        assert config.get("stream-call-count") or config.get("stream-call-duration"), (
            "an endless stream needs a count or duration to end each call"
        )


def test_templated_ids_are_unique_per_request() -> None:
    """SubmitOrder and RecordFill would otherwise answer duplicates after the first request."""
    for name in ("pretrade_submit_order", "journal_record_fill"):
        text = (GHZ / f"{name}.json").read_text(encoding="utf-8")
        assert "{{.RequestNumber}}" in text, name


async def test_configs_against_a_gateway_then_reflection_lists_their_services_and_bodies_are_valid(
    channel: grpc.aio.Channel,
) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    listed = {s.name async for answer in call for s in answer.list_services_response.service}
    for path in CONFIGS:
        config = _load(path)
        method = METHODS[config["call"]]
        assert method.containing_service.full_name in listed, path.name
        request_class = message_factory.GetMessageClass(method.input_type)
        request = json_format.ParseDict(_rendered(config["data"]), request_class())
        response_class = message_factory.GetMessageClass(method.output_type)
        route = f"/{method.containing_service.full_name}/{method.name}"
        kind = channel.unary_stream if method.server_streaming else channel.unary_unary
        rpc = kind(
            route,
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        try:
            if method.server_streaming:
                stream = rpc(request, timeout=5)
                assert await stream.read() is not grpc.aio.EOF, path.name
                stream.cancel()
            else:
                await rpc(request, timeout=30)
        except grpc.aio.AioRpcError as error:
            assert error.code() not in SHAPE_ERRORS, f"{path.name}: {error.details()}"
