"""Generated and malformed requests to every RPC: never INTERNAL, never a crash, no stray state.

Hypothesis builds requests from the protos' descriptors, so every field of every message is
exercised, with values chosen to hit the edges the validators must catch: empty, huge and
non-ASCII strings, decimal strings that are not prices (NaN, 1e400, too many places), integers at
their type's limits, unknown enum numbers, timestamps outside the representable range, deep and
repeated messages. Raw bytes that are not a protobuf message at all are sent too.

The gateway runs in a thread of this process with its own event loop (a real server on
127.0.0.1:0 and a real PostgreSQL); the test calls it through blocking gRPC stubs, which is what
lets Hypothesis drive it. Afterwards the journal holds exactly the fills that were acknowledged.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway._pb.execgw.v1 import journal_pb2, market_state_pb2, pretrade_pb2, routing_pb2
from gateway.server import Gateway
from tests.conftest import gateway_settings

SERVICES = [
    service
    for module in (pretrade_pb2, routing_pb2, journal_pb2, market_state_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
]
METHODS: list[MethodDescriptor] = [m for s in SERVICES for m in s.methods]
# What a gateway may answer to a request it cannot honour; INTERNAL and UNKNOWN mean a bug.
EXPECTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.DEADLINE_EXCEEDED,  # a stream cut by the test's deadline
}

_EDGE_STRINGS = (
    "",
    " ",
    "AAPL",
    "MSFT",
    "ACC-1",
    "ord-1",
    "NASDAQ",
    "NYSE",
    "IEX",
    "187.25",
    "0",
    "-1",
    "0.0000001",
    "1e400",
    "1E+2",
    "NaN",
    "-Infinity",
    "sNaN",
    "1_000",
    "99999999999999999999999999999999999",
    "2026-11-24",
    "2026-02-30",
    "T1",
    "LUDP",
    "H10",
    "\x00",
    "é",
    "😀",
    "a" * 65,
    "A" * 17,
)
_LIMITS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (low, high, 0, 1, -1, 100, 10**9, 10**12) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(_EDGE_STRINGS), st.text(max_size=40))
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-3, max(numbers) + 3))
    return _integers(*_LIMITS[kind])


def _timestamp() -> st.SearchStrategy[dict[str, int]]:
    # Inside and outside what datetime can hold (years 1..9999), and nanos out of range.
    seconds = st.one_of(
        st.sampled_from([0, -1, 1_795_532_400, 1_795_600_000, 253_402_300_800, -62_135_596_801]),
        st.integers(-(2**40), 2**40),
    )
    return st.fixed_dictionaries(
        {}, optional={"seconds": seconds, "nanos": st.integers(-(10**9), 2 * 10**9)}
    )


def message_fields(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Field values for a message: each field present or not, nested messages to depth 3."""
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp()
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3:
                continue
            if field.message_type.GetOptions().map_entry:
                continue
            value: st.SearchStrategy[Any] = st.deferred(
                lambda f=field: message_fields(f.message_type, depth + 1)
            )
        else:
            value = _scalar(field)
        if field.is_repeated:
            value = st.lists(value, max_size=3)
        optional[field.name] = value
    return st.fixed_dictionaries({}, optional=optional)


def _build(descriptor: Descriptor, values: dict[str, Any]) -> Message:
    """A message from generated values (a oneof keeps the last member set)."""
    message = message_factory.GetMessageClass(descriptor)()
    _fill(message, values)
    return message


def _fill(message: Message, values: dict[str, Any]) -> None:
    fields = message.DESCRIPTOR.fields_by_name
    for name, value in values.items():
        field = fields.get(name)
        if field is None:  # Timestamp's seconds/nanos
            setattr(message, name, value)
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                for item in value:
                    _fill(getattr(message, name).add(), item)
            else:
                _fill(getattr(message, name), value)
                getattr(message, name).SetInParent()
        elif field.is_repeated:
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)


@pytest.fixture(scope="module")
def live(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway serving from a thread of its own, for blocking clients."""
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        settings_ = gateway_settings(
            module_database_url,
            tmp_path_factory.mktemp("fuzz"),
            market_clock="feed",
            stream_heartbeat_seconds=0.2,
        )
        gateway = Gateway(settings_)
        await gateway.start()
        stop = asyncio.Event()
        holder.update(gateway=gateway, loop=asyncio.get_running_loop(), stop=stop)
        started.set()
        try:
            await stop.wait()
        finally:
            await gateway.stop()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as error:  # noqa: BLE001  # surfaced to the test below
            holder["error"] = error
            started.set()

    thread = threading.Thread(target=run, name="fuzz-gateway", daemon=True)
    thread.start()
    assert started.wait(60), "the gateway did not start"
    if "error" in holder:
        raise holder["error"]
    try:
        yield holder["gateway"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(30)
    assert "error" not in holder, holder.get("error")


@pytest.fixture(scope="module")
def channel(live: Gateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{live.port}") as opened:
        yield opened


# Fills the gateway acknowledged (venue, exec id), collected over the whole module.
ACKNOWLEDGED: set[tuple[str, str]] = set()


def _call(channel: grpc.Channel, method: MethodDescriptor, request: bytes) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_type = message_factory.GetMessageClass(method.output_type)

    def serialize(raw: bytes) -> bytes:
        return raw

    try:
        if method.client_streaming:
            call = channel.stream_stream if method.server_streaming else channel.stream_unary
            handle = call(
                path, request_serializer=serialize, response_deserializer=response_type.FromString
            )
            result = handle(iter([request, request]), timeout=5)
            responses = list(result) if method.server_streaming else [result]
        elif method.server_streaming:
            stream = channel.unary_stream(
                path, request_serializer=serialize, response_deserializer=response_type.FromString
            )(request, timeout=0.5)
            responses = []
            try:
                for item in stream:
                    responses.append(item)
                    if len(responses) >= 3:
                        stream.cancel()
                        break
            except grpc.RpcError as error:
                if error.code() not in (
                    grpc.StatusCode.CANCELLED,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    raise
            return grpc.StatusCode.OK
        else:
            responses = [
                channel.unary_unary(
                    path,
                    request_serializer=serialize,
                    response_deserializer=response_type.FromString,
                )(request, timeout=5)
            ]
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    for response in responses:
        _note_acks(response)
    return grpc.StatusCode.OK


def _note_acks(response: Message) -> None:
    if isinstance(response, journal_pb2.RecordFillResponse) and response.HasField("ack"):
        ack = response.ack
        ACKNOWLEDGED.add((ack.fill.venue, ack.fill.exec_id))


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name for m in METHODS])
def test_generated_requests_never_get_internal_errors(
    channel: grpc.Channel, method: MethodDescriptor
) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(values=message_fields(method.input_type))
    def check(values: dict[str, Any]) -> None:
        request = _build(method.input_type, values)
        code = _call(channel, method, request.SerializeToString())
        assert code in EXPECTED, f"{method.full_name} answered {code.name} to {request}"

    check()


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name for m in METHODS])
@settings(max_examples=15, deadline=None, database=None)
@given(raw=st.one_of(st.binary(min_size=1, max_size=64), st.sampled_from([b"\xff", b"\x0a\xff"])))
def test_bytes_that_are_not_a_message_get_invalid_argument(
    channel: grpc.Channel, method: MethodDescriptor, raw: bytes
) -> None:
    code = _call(channel, method, raw)
    assert code in EXPECTED, f"{method.full_name} answered {code.name} to {raw!r}"


def test_server_still_serves_and_journal_holds_exactly_the_acknowledged_fills(
    channel: grpc.Channel, live: Gateway, module_database_url: str
) -> None:
    health = channel.unary_unary(
        "/execgw.v1.MarketStateService/GetMarketState",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=market_state_pb2.GetMarketStateResponse.FromString,
    )
    assert health(market_state_pb2.GetMarketStateRequest(), timeout=5) is not None

    async def stored() -> set[tuple[str, str]]:
        connection = await asyncpg.connect(module_database_url)
        try:
            rows = await connection.fetch("SELECT venue, exec_id FROM trade_fills")
        finally:
            await connection.close()
        return {(r["venue"], r["exec_id"]) for r in rows}

    assert asyncio.run(stored()) == ACKNOWLEDGED


_TIMES = (0, -1, 253_402_300_800, 2**40, -(2**40))
_TIMED = [
    (
        "/execgw.v1.JournalService/RecordFill",
        journal_pb2.RecordFillRequest,
        lambda r, s: setattr(r.fill.transaction_time, "seconds", s),
    ),
    (
        "/execgw.v1.PreTradeService/ReportOrderEvent",
        pretrade_pb2.ReportOrderEventRequest,
        lambda r, s: setattr(r.event_time, "seconds", s),
    ),
]


@pytest.mark.parametrize("seconds", _TIMES)
@pytest.mark.parametrize(("path", "request_type", "set_time"), _TIMED, ids=["RecordFill", "Event"])
def test_times_outside_what_a_datetime_holds_get_invalid_argument(
    channel: grpc.Channel, path: str, request_type: type[Message], set_time: Any, seconds: int
) -> None:
    request = request_type()
    set_time(request, seconds)
    call = channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString())
    with pytest.raises(grpc.RpcError) as refused:
        call(request, timeout=5)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_market_data_event_time_outside_what_a_datetime_holds_is_refused_on_the_stream(
    channel: grpc.Channel,
) -> None:
    events = []
    for seconds in _TIMES:
        event = market_state_pb2.MarketDataEvent(symbol="ZZZZ")
        event.event_time.seconds = seconds
        event.trade.price = "10.00"
        events.append(event)
    publish = channel.stream_unary(
        "/execgw.v1.MarketStateService/PublishMarketData",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=market_state_pb2.PublishMarketDataSummary.FromString,
    )
    summary = publish(iter(events), timeout=5)
    assert summary.rejected == len(events)
