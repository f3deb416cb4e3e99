"""Access control over real TLS: certificates made by the test, tokens from a clients file.

A gateway with TLS and bearer tokens serves the role table and the account entitlements; one with
mutual TLS names clients by their certificates; one with low limits shows them trigger and recover.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from gateway import cli
from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import journal_pb2 as jn
from gateway._pb.execgw.v1 import journal_pb2_grpc as jn_grpc
from gateway._pb.execgw.v1 import market_state_pb2 as ms
from gateway._pb.execgw.v1 import market_state_pb2_grpc as ms_grpc
from gateway._pb.execgw.v1 import pretrade_pb2 as pt
from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pt_grpc
from gateway._pb.execgw.v1 import routing_pb2 as rt
from gateway._pb.execgw.v1 import routing_pb2_grpc as rt_grpc
from gateway.api.access import RPC_ROLES
from gateway.clients import Role, client_entry, new_token, token_hash
from gateway.server import Gateway, serve
from gateway.settings import Settings
from gateway.transport import client_channel
from tests.certificates import CertificateAuthority, Issued
from tests.conftest import gateway_settings, serving
from tests.grpc_errors import decode
from tests.service.test_halt_safety import OPEN, open_market, order

SERVICES = [
    module.DESCRIPTOR.services_by_name[name]
    for module, name in (
        (pt, "PreTradeService"),
        (rt, "RoutingService"),
        (jn, "JournalService"),
        (ms, "MarketStateService"),
    )
]
METHODS = [method for service in SERVICES for method in service.methods]
DENIED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@dataclass
class Clients:
    """The clients file and the token of each client in it."""

    file: Path
    tokens: dict[str, str]
    entries: dict[str, str]

    def write(self) -> None:
        self.file.write_text("\n".join(self.entries.values()))

    def revoke(self, name: str) -> None:
        del self.entries[name]
        self.write()


CLIENTS: dict[str, tuple[tuple[Role, ...], tuple[str, ...]]] = {
    "oms-a": ((Role.OMS,), ("ACC-A",)),
    "oms-b": ((Role.OMS,), ("ACC-B",)),
    "feed": ((Role.FEED,), ()),
    "operator": ((Role.OPERATOR,), ("*",)),
    "reader": ((Role.READER,), ("*",)),
    "spare": ((Role.READER,), ("*",)),
}
# The client that plays each role in the role table.
PLAYERS = {Role.OMS: "oms-a", Role.FEED: "feed", Role.OPERATOR: "operator", Role.READER: "reader"}


def make_clients(folder: Path) -> Clients:
    tokens, entries = {}, {}
    for name, (roles, accounts) in CLIENTS.items():
        tokens[name] = new_token()
        entries[name] = client_entry(name, roles, accounts, token_hash(tokens[name]))
    clients = Clients(folder / "clients.toml", tokens, entries)
    clients.write()
    return clients


@dataclass
class Pki:
    ca: CertificateAuthority
    server: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = CertificateAuthority(tmp_path_factory.mktemp("pki"))
    return Pki(ca, ca.issue_server())


def tls_channel(
    port: int, pki: Pki, token: str | None = None, certificate: Issued | None = None
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        pki.ca.cert_pem,
        certificate.key_pem if certificate else None,
        certificate.cert_pem if certificate else None,
    )
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return grpc.aio.secure_channel(f"localhost:{port}", credentials)


def retry_delay(error: grpc.aio.AioRpcError) -> float | None:
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None


# --- the TLS + token gateway ------------------------------------------------------------------


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Clients:
    return make_clients(tmp_path_factory.mktemp("clients"))


@pytest.fixture(scope="module")
async def gateway(
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    pki: Pki,
    clients: Clients,
) -> AsyncIterator[Gateway]:
    settings = gateway_settings(
        module_database_url,
        tmp_path_factory.mktemp("gateway"),
        market_clock="feed",
        stream_heartbeat_seconds=0.2,
        tls_cert_file=pki.server.cert_file,
        tls_key_file=pki.server.key_file,
        clients_file=clients.file,
        clients_reload_poll_seconds=0.1,
    )
    async with serving(settings) as running:
        async with tls_channel(running.port, pki, clients.tokens["feed"]) as feed:
            stub = ms_grpc.MarketStateServiceStub(feed)
            await stub.PublishMarketData(iter(open_market()))
        yield running


@pytest.fixture(scope="module")
async def channels(gateway: Gateway, pki: Pki, clients: Clients) -> AsyncIterator[Any]:
    opened = {name: tls_channel(gateway.port, pki, token) for name, token in clients.tokens.items()}
    yield opened
    for channel in opened.values():
        await channel.close()


def _request(method: MethodDescriptor, account: str) -> Any:
    """A request to ``method`` naming ``account`` wherever it names one."""
    request: Any = message_factory.GetMessageClass(method.input_type)()
    if "order" in method.input_type.fields_by_name:
        request.order.CopyFrom(order(account=account, client_order_id=f"table-{method.name}"))
    if "fill" in method.input_type.fields_by_name:
        request.fill.account = account
    return request


async def _call(
    channel: grpc.aio.Channel, method: MethodDescriptor, request: Any
) -> grpc.StatusCode:
    """Call ``method`` as a client would; the status it ends with (streams end at the deadline)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    output = message_factory.GetMessageClass(method.output_type)
    kind = (method.client_streaming, method.server_streaming)
    options: dict[str, Any] = {
        "request_serializer": type(request).SerializeToString,
        "response_deserializer": output.FromString,
    }
    try:
        if kind == (False, False):
            await channel.unary_unary(path, **options)(request, timeout=1.0)
        elif kind == (True, False):
            await channel.stream_unary(path, **options)(iter([request]), timeout=1.0)
        elif kind == (False, True):
            async for _ in channel.unary_stream(path, **options)(request, timeout=1.0):
                pass
        else:
            async for _ in channel.stream_stream(path, **options)(iter([request]), timeout=1.0):
                pass
    except grpc.aio.AioRpcError as error:
        if error.code() in DENIED:
            assert decode(error).reason, "a refusal carries its reason"
        return error.code()
    return grpc.StatusCode.OK


def test_every_rpc_of_the_protos_has_its_roles() -> None:
    assert {m.full_name for m in METHODS} == set(RPC_ROLES)


def test_readme_role_table_is_the_enforced_one() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 6 and cells[0].startswith("`") and "Service/" in cells[0]:
            roles = {role for role, mark in zip(Role, cells[1:5], strict=True) if mark == "x"}
            documented["execgw.v1." + cells[0].strip("`").replace("/", ".")] = roles
    assert documented == RPC_ROLES


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_each_role_reaches_exactly_its_rpcs(channels: dict[str, Any], role: Role) -> None:
    player = PLAYERS[role]
    account = CLIENTS[player][1][0] if CLIENTS[player][1] else "ACC-A"
    outcomes = {
        method.full_name: await _call(channels[player], method, _request(method, account))
        for method in METHODS
    }
    reached = {name for name, code in outcomes.items() if code not in DENIED}
    expected = {name for name, roles in RPC_ROLES.items() if role in roles}
    assert reached == expected, outcomes
    assert all(
        outcomes[name] is grpc.StatusCode.PERMISSION_DENIED for name in RPC_ROLES.keys() - expected
    )


async def test_no_token_then_unauthenticated_and_health_still_open(
    gateway: Gateway, pki: Pki
) -> None:
    async with tls_channel(gateway.port, pki) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pt_grpc.PreTradeServiceStub(anonymous).CheckOrder(
                pt.CheckOrderRequest(order=order())
            )
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert decode(refused.value).reason == "NO_CREDENTIALS"
        health = await health_pb2_grpc.HealthStub(anonymous).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(anonymous)
        async for answer in reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        ):
            listed = {s.name for s in answer.list_services_response.service}
            assert "execgw.v1.PreTradeService" in listed


async def test_each_decision_logged_with_client_and_method_never_the_token(
    channels: dict[str, Any], clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="gateway.api.access"):
        await _refused(
            jn_grpc.JournalServiceStub(channels["feed"]).GetPositions(jn.GetPositionsRequest())
        )
        await rt_grpc.RoutingServiceStub(channels["operator"]).ListVenues(rt.ListVenuesRequest())
    decisions = [
        (getattr(r, "client", None), getattr(r, "method", None), getattr(r, "outcome", None))
        for r in caplog.records
    ]
    assert ("feed", "execgw.v1.JournalService.GetPositions", "PERMISSION_DENIED") in decisions
    assert ("operator", "execgw.v1.RoutingService.ListVenues", "OK") in decisions
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert not any(token in logged for token in clients.tokens.values())


async def test_unknown_token_then_unauthenticated(gateway: Gateway, pki: Pki) -> None:
    async with tls_channel(gateway.port, pki, new_token()) as stranger:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pt_grpc.PreTradeServiceStub(stranger).CheckOrder(
                pt.CheckOrderRequest(order=order())
            )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert decode(refused.value).reason == "INVALID_TOKEN"


async def test_plaintext_client_on_the_tls_port_then_no_connection(gateway: Gateway) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as plain:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pt_grpc.PreTradeServiceStub(plain).CheckOrder(
                pt.CheckOrderRequest(order=order()), timeout=2
            )
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def _fill(n: int, account: str) -> jn.Fill:
    message = jn.Fill(
        venue="NASDAQ",
        exec_id=f"acl-{account}-{n}",
        account=account,
        symbol="AAPL",
        side=common.SIDE_BUY,
        quantity=100,
        price="100.01",
        liquidity=common.LIQUIDITY_REMOVED,
        kind=jn.FILL_KIND_NEW,
    )
    message.transaction_time.FromDatetime(OPEN)
    return message


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def test_oms_client_cannot_read_or_write_another_clients_account(
    channels: dict[str, Any],
) -> None:
    a = jn_grpc.JournalServiceStub(channels["oms-a"])
    b = jn_grpc.JournalServiceStub(channels["oms-b"])
    await a.RecordFill(jn.RecordFillRequest(fill=_fill(1, "ACC-A")))
    await b.RecordFill(jn.RecordFillRequest(fill=_fill(1, "ACC-B")))

    writes = await _refused(a.RecordFill(jn.RecordFillRequest(fill=_fill(2, "ACC-B"))))
    assert writes.code() is grpc.StatusCode.PERMISSION_DENIED
    assert decode(writes).reason == "ACCOUNT_NOT_ENTITLED"

    reads = await _refused(a.GetPositions(jn.GetPositionsRequest(accounts=["ACC-B"])))
    assert reads.code() is grpc.StatusCode.PERMISSION_DENIED
    pnl = await _refused(a.GetPnl(jn.GetPnlRequest(accounts=["ACC-A", "ACC-B"])))
    assert pnl.code() is grpc.StatusCode.PERMISSION_DENIED

    # No account filter: limited to the client's own accounts.
    own = await a.GetPositions(jn.GetPositionsRequest())
    assert {p.account for p in own.positions} == {"ACC-A"}
    everyone = await jn_grpc.JournalServiceStub(channels["reader"]).GetPositions(
        jn.GetPositionsRequest()
    )
    assert {"ACC-A", "ACC-B"} <= {p.account for p in everyone.positions}

    # A stream of fills ends at the first one for a foreign account, after answering the rest.
    answers = []
    with pytest.raises(grpc.aio.AioRpcError) as stream_refused:
        requests = [
            jn.RecordFillRequest(fill=_fill(3, "ACC-A")),
            jn.RecordFillRequest(fill=_fill(3, "ACC-B")),
        ]
        async for answer in a.RecordFills(iter(requests)):
            answers.append(answer)
    assert stream_refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert [x.ack.fill.account for x in answers] == ["ACC-A"]

    # A batch with one foreign fill is refused whole, naming it; nothing of it is recorded.
    mixed = jn.RecordFillBatch(
        fills=[
            jn.RecordFillRequest(fill=_fill(4, "ACC-A")),
            jn.RecordFillRequest(fill=_fill(4, "ACC-B")),
        ]
    )
    with pytest.raises(grpc.aio.AioRpcError) as batch_refused:
        async for _ in a.RecordFillBatches(iter([mixed])):
            pass
    assert batch_refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "fills[1].fill.account" in (batch_refused.value.details() or "")
    held = await a.GetPositions(jn.GetPositionsRequest(accounts=["ACC-A"]))
    assert [p.quantity for p in held.positions] == [200]  # E1 and E3 only


async def test_oms_client_cannot_touch_another_clients_orders(channels: dict[str, Any]) -> None:
    a = pt_grpc.PreTradeServiceStub(channels["oms-a"])
    b = pt_grpc.PreTradeServiceStub(channels["oms-b"])
    submitted = await b.SubmitOrder(
        pt.SubmitOrderRequest(order=order(account="ACC-B", client_order_id="b-1"))
    )
    assert submitted.order.order.account == "ACC-B"

    foreign = await _refused(
        a.SubmitOrder(pt.SubmitOrderRequest(order=order(account="ACC-B", client_order_id="a-1")))
    )
    assert foreign.code() is grpc.StatusCode.PERMISSION_DENIED
    cancel = await _refused(a.CancelOrder(pt.CancelOrderRequest(client_order_id="b-1")))
    assert cancel.code() is grpc.StatusCode.PERMISSION_DENIED
    report = await _refused(
        a.ReportOrderEvent(
            pt.ReportOrderEventRequest(
                client_order_id="b-1", event_type=pt.ORDER_EVENT_TYPE_CANCELED, venue="NASDAQ"
            )
        )
    )
    assert report.code() is grpc.StatusCode.PERMISSION_DENIED
    instructions = a.StreamOrderInstructions(pt.StreamOrderInstructionsRequest(accounts=["ACC-B"]))
    with pytest.raises(grpc.aio.AioRpcError) as listen:
        async for _ in instructions:
            pass
    assert listen.value.code() is grpc.StatusCode.PERMISSION_DENIED
    # Its own order it may cancel.
    mine = await b.CancelOrder(pt.CancelOrderRequest(client_order_id="b-1"))
    assert mine.order.order.client_order_id == "b-1"


async def test_revoked_token_stops_working_without_a_restart(
    gateway: Gateway, channels: dict[str, Any], clients: Clients
) -> None:
    rt_stub = rt_grpc.RoutingServiceStub(channels["spare"])
    await rt_stub.ListVenues(rt.ListVenuesRequest())
    clients.revoke("spare")
    # The file watch (0.1 s here) picks the change up; SIGHUP does the same at once.
    for _ in range(100):
        try:
            await rt_stub.ListVenues(rt.ListVenuesRequest())
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED
            assert decode(error).reason == "INVALID_TOKEN"
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the revoked token still works")
    # The other clients are unaffected.
    await rt_grpc.RoutingServiceStub(channels["reader"]).ListVenues(rt.ListVenuesRequest())


async def test_sighup_then_revoked_token_refused_at_once(
    database_url: str, tmp_path: Path, pki: Pki
) -> None:
    clients = make_clients(tmp_path)
    settings = gateway_settings(
        database_url,
        tmp_path,
        tls_cert_file=pki.server.cert_file,
        tls_key_file=pki.server.key_file,
        clients_file=clients.file,
        clients_reload_poll_seconds=0.0,  # SIGHUP only
    )
    ready: asyncio.Future[Gateway] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, on_ready=ready.set_result))
    try:
        gateway = await asyncio.wait_for(asyncio.shield(ready), 60)
        async with tls_channel(gateway.port, pki, clients.tokens["reader"]) as channel:
            stub = rt_grpc.RoutingServiceStub(channel)
            await stub.ListVenues(rt.ListVenuesRequest())
            clients.revoke("reader")
            await asyncio.sleep(0.2)
            await stub.ListVenues(rt.ListVenuesRequest())  # no poll: still valid until SIGHUP
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.1)
            revoked = await _refused(stub.ListVenues(rt.ListVenuesRequest()))
            assert revoked.code() is grpc.StatusCode.UNAUTHENTICATED
    finally:
        if ready.done():
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 30)


async def test_broken_clients_file_then_previous_clients_stay(
    gateway: Gateway, channels: dict[str, Any], clients: Clients
) -> None:
    good = clients.file.read_text()
    clients.file.write_text(good + "\n[[clients]]\nname = 'x'\nroles = ['superuser']\n")
    try:
        assert gateway.reload_clients() is False
        stub = ms_grpc.MarketStateServiceStub(channels["reader"])
        await stub.GetMarketState(ms.GetMarketStateRequest())
    finally:
        clients.file.write_text(good)
        assert gateway.reload_clients() is True


# --- mutual TLS ---------------------------------------------------------------------------------


@pytest.fixture
async def mtls(database_url: str, tmp_path: Path, pki: Pki) -> AsyncIterator[Gateway]:
    clients_file = tmp_path / "clients.toml"
    clients_file.write_text(
        client_entry("oms-cert", [Role.OMS], ["ACC-A"], token_hash(new_token()))
    )
    settings = gateway_settings(
        database_url,
        tmp_path,
        tls_cert_file=pki.server.cert_file,
        tls_key_file=pki.server.key_file,
        tls_client_ca_file=pki.ca.cert_file,
        clients_file=clients_file,
    )
    async with serving(settings) as running:
        yield running


async def test_mutual_tls_names_the_client_by_its_certificate(mtls: Gateway, pki: Pki) -> None:
    known = pki.ca.issue("oms-cert")
    async with tls_channel(mtls.port, pki, certificate=known) as channel:
        journal = jn_grpc.JournalServiceStub(channel)
        await journal.GetPositions(jn.GetPositionsRequest())
        foreign = await _refused(journal.GetPositions(jn.GetPositionsRequest(accounts=["ACC-B"])))
        assert foreign.code() is grpc.StatusCode.PERMISSION_DENIED
        operator = await _refused(journal.VerifyAuditTrail(jn.VerifyAuditTrailRequest()))
        assert decode(operator).reason == "ROLE_NOT_ALLOWED"

    # A SAN names the client too.
    by_san = pki.ca.issue("some-host", dns_names=("oms-cert",))
    async with tls_channel(mtls.port, pki, certificate=by_san) as channel:
        await jn_grpc.JournalServiceStub(channel).GetPositions(jn.GetPositionsRequest())

    stranger = pki.ca.issue("stranger")
    async with tls_channel(mtls.port, pki, certificate=stranger) as channel:
        unknown = await _refused(
            jn_grpc.JournalServiceStub(channel).GetPositions(jn.GetPositionsRequest())
        )
    assert unknown.code() is grpc.StatusCode.PERMISSION_DENIED
    assert decode(unknown).reason == "UNKNOWN_CLIENT"


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
async def test_mutual_tls_without_a_trusted_certificate_then_no_connection(
    mtls: Gateway, pki: Pki, tmp_path: Path, who: str
) -> None:
    certificate = None
    if who != "no certificate":
        other = CertificateAuthority(tmp_path, "other CA")
        certificate = other.issue("oms-cert")
    async with tls_channel(mtls.port, pki, certificate=certificate) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await jn_grpc.JournalServiceStub(channel).GetPositions(
                jn.GetPositionsRequest(), timeout=3
            )
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


# --- limits -------------------------------------------------------------------------------------


@pytest.fixture
async def limited(
    database_url: str, tmp_path: Path, pki: Pki
) -> AsyncIterator[tuple[Gateway, Clients]]:
    clients = make_clients(tmp_path)
    settings = gateway_settings(
        database_url,
        tmp_path,
        market_clock="feed",
        tls_cert_file=pki.server.cert_file,
        tls_key_file=pki.server.key_file,
        clients_file=clients.file,
        rate_limit_per_second=5.0,
        rate_limit_burst=3,
        max_streams_per_client=2,
        stream_idle_seconds=0.5,
    )
    async with serving(settings) as running:
        yield running, clients


async def test_rate_limit_then_resource_exhausted_with_retry_info_and_recovery(
    limited: tuple[Gateway, Clients], pki: Pki
) -> None:
    gateway, clients = limited
    async with (
        tls_channel(gateway.port, pki, clients.tokens["reader"]) as busy,
        tls_channel(gateway.port, pki, clients.tokens["operator"]) as other,
    ):
        stub = ms_grpc.MarketStateServiceStub(busy)
        for _ in range(3):  # the burst
            await stub.GetMarketState(ms.GetMarketStateRequest())
        over = await _refused(stub.GetMarketState(ms.GetMarketStateRequest()))
        assert over.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert decode(over).reason == "RATE_LIMITED"
        delay = retry_delay(over)
        assert delay is not None and 0 < delay <= 0.2 + 1e-6
        # Another client has a bucket of its own.
        await rt_grpc.RoutingServiceStub(other).ListVenues(rt.ListVenuesRequest())
        await asyncio.sleep(delay)
        await stub.GetMarketState(ms.GetMarketStateRequest())


async def _wait_for(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail("condition not met in time")


async def test_stream_limit_per_client_then_refused_until_one_closes(
    limited: tuple[Gateway, Clients], pki: Pki
) -> None:
    gateway, clients = limited
    assert gateway.access is not None
    async with tls_channel(gateway.port, pki, clients.tokens["oms-a"]) as channel:
        stub = ms_grpc.MarketStateServiceStub(channel)
        first = stub.SubscribeMarketState(ms.SubscribeMarketStateRequest())
        second = stub.SubscribeMarketState(ms.SubscribeMarketStateRequest())
        await first.read()
        await second.read()
        third = stub.SubscribeMarketState(ms.SubscribeMarketStateRequest())
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await third.read()
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert decode(refused.value).reason == "TOO_MANY_STREAMS"
        first.cancel()
        await _wait_for(lambda: gateway.access.open_streams("oms-a") == 1)
        await asyncio.sleep(0.25)  # the rate limit (5/s) refills for the next call
        fourth = stub.SubscribeMarketState(ms.SubscribeMarketStateRequest())
        update = await fourth.read()
        assert isinstance(update, ms.MarketStateUpdate) and update.HasField("snapshot")
        second.cancel()
        fourth.cancel()
    await _wait_for(lambda: gateway.access.open_streams("oms-a") == 0)


async def test_client_stream_idle_then_ended_with_stream_idle(
    limited: tuple[Gateway, Clients], pki: Pki
) -> None:
    gateway, clients = limited
    quiet = asyncio.Event()

    async def events() -> AsyncIterator[ms.MarketDataEvent]:
        for event in open_market():
            yield event
        await quiet.wait()  # sends nothing more

    async with tls_channel(gateway.port, pki, clients.tokens["feed"]) as channel:
        stub = ms_grpc.MarketStateServiceStub(channel)
        started = asyncio.get_running_loop().time()
        ended = await _refused(stub.PublishMarketData(events(), timeout=10))
        took = asyncio.get_running_loop().time() - started
        quiet.set()
    assert ended.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert decode(ended).reason == "STREAM_IDLE"
    assert took < 5
    # The events before it went quiet were applied.
    assert gateway.guard is not None and "AAPL" in gateway.guard.engine.symbols


async def test_fill_stream_idle_then_ended_after_answering_what_it_sent(
    limited: tuple[Gateway, Clients], pki: Pki
) -> None:
    gateway, clients = limited
    quiet = asyncio.Event()

    async def requests() -> AsyncIterator[jn.RecordFillRequest]:
        yield jn.RecordFillRequest(fill=_fill(1, "ACC-A"), request_id="r1")
        await quiet.wait()

    answers = []
    async with tls_channel(gateway.port, pki, clients.tokens["oms-a"]) as channel:
        stub = jn_grpc.JournalServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async for answer in stub.RecordFills(requests(), timeout=10):
                answers.append(answer)
        quiet.set()
    assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert decode(ended.value).reason == "STREAM_IDLE"
    assert [a.request_id for a in answers] == ["r1"] and answers[0].HasField("ack")


async def test_deadline_ends_a_subscription_and_frees_its_stream(
    limited: tuple[Gateway, Clients], pki: Pki
) -> None:
    gateway, clients = limited
    async with tls_channel(gateway.port, pki, clients.tokens["reader"]) as channel:
        stub = ms_grpc.MarketStateServiceStub(channel)
        call = stub.SubscribeMarketState(
            ms.SubscribeMarketStateRequest(heartbeat_interval_ms=60_000), timeout=0.5
        )
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async for _ in call:
                pass
    assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    # The handler's wait (a 60 s heartbeat) was cut short by the deadline: its stream is freed.
    access = gateway.access
    assert access is not None
    await _wait_for(lambda: access.open_streams("reader") == 0, 2.0)


async def test_max_message_bytes_then_applied_to_requests_and_responses(
    database_url: str, tmp_path: Path
) -> None:
    settings = gateway_settings(database_url, tmp_path, market_clock="feed", max_message_bytes=1024)
    async with (
        serving(settings) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        market = ms_grpc.MarketStateServiceStub(channel)
        # Many small messages on a stream are fine; each is under the limit.
        events = [e for n in range(30) for e in open_market(f"SYM{n:02}")]
        summary = await market.PublishMarketData(iter(events))
        assert summary.rejected == 0
        small = await market.GetMarketState(ms.GetMarketStateRequest(symbols=["SYM00"]))
        assert len(small.symbols) == 1

        too_big_request = await _refused(
            pt_grpc.PreTradeServiceStub(channel).CheckOrder(
                pt.CheckOrderRequest(order=order(client_order_id="x" * 2000))
            )
        )
        assert too_big_request.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        too_big_response = await _refused(market.GetMarketState(ms.GetMarketStateRequest()))
        assert too_big_response.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_deadline_caps_the_journal_commit_wait_and_the_fill_stays_idempotent(
    database_url: str, tmp_path: Path
) -> None:
    settings = gateway_settings(database_url, tmp_path, market_clock="feed")
    labels = {"grpc_service": "execgw.v1.JournalService", "grpc_method": "RecordFill"}
    async with (
        serving(settings) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        registry = running.metrics.registry
        stub = jn_grpc.JournalServiceStub(channel)
        request = jn.RecordFillRequest(fill=_fill(1, "ACC-D"))
        blocker = await asyncpg.connect(database_url)
        try:
            # Another session holds the fills table: the commit cannot happen.
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE trade_fills IN ACCESS EXCLUSIVE MODE")
            late = await _refused(stub.RecordFill(request, timeout=0.5))
            assert late.code() is grpc.StatusCode.DEADLINE_EXCEEDED

            # The handler's wait for the commit ended with the deadline, the lock still held.
            def cancelled() -> bool:
                value = registry.get_sample_value(
                    "grpc_server_handled_total", {**labels, "grpc_code": "CANCELLED"}
                )
                return bool(value)

            await _wait_for(cancelled, 3.0)
            await transaction.rollback()
        finally:
            await blocker.close()
        # The caller gave up, not the journal: retrying is safe (idempotent on venue, exec_id)
        # and the fill is stored once.
        for _ in range(100):
            again: jn.RecordFillResponse = await stub.RecordFill(request, timeout=10)
            if again.ack.duplicate:
                break
            await asyncio.sleep(0.05)
        assert again.ack.duplicate
        stored = await asyncpg.connect(database_url)
        try:
            count = await stored.fetchval(
                "SELECT count(*) FROM trade_fills WHERE exec_id = $1", request.fill.exec_id
            )
        finally:
            await stored.close()
        assert count == 1


async def test_client_commands_connect_with_tls_and_a_token_file(
    gateway: Gateway, pki: Pki, clients: Clients, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(clients.tokens["reader"] + "\n")
    settings = Settings(
        grpc_host="localhost",
        grpc_port=gateway.port,
        client_ca_file=pki.ca.cert_file,
        client_token_file=token_file,
    )
    await cli._health(settings)  # the `execgw health` command
    async with client_channel(settings, f"localhost:{gateway.port}") as channel:
        positions = await jn_grpc.JournalServiceStub(channel).GetPositions(jn.GetPositionsRequest())
    assert isinstance(positions, jn.GetPositionsResponse)


async def test_token_over_loopback_plaintext_then_accepted(
    database_url: str, tmp_path: Path
) -> None:
    clients = make_clients(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(clients.tokens["operator"])
    settings = gateway_settings(database_url, tmp_path, clients_file=clients.file)
    async with serving(settings) as running:
        client = Settings(grpc_port=running.port, client_token_file=token_file)
        async with client_channel(client, f"127.0.0.1:{running.port}") as channel:
            audit = await jn_grpc.JournalServiceStub(channel).VerifyAuditTrail(
                jn.VerifyAuditTrailRequest()
            )
        assert audit.valid
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as anonymous:
            refused = await _refused(
                jn_grpc.JournalServiceStub(anonymous).VerifyAuditTrail(jn.VerifyAuditTrailRequest())
            )
        assert refused.code() is grpc.StatusCode.UNAUTHENTICATED
