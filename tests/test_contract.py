"""Every RPC declared in the protos is implemented by a servicer the gateway serves."""

from __future__ import annotations

import inspect

import pytest

from gateway._pb.execgw.v1 import journal_pb2, market_state_pb2, pretrade_pb2, routing_pb2
from gateway.api.journal import JournalServicer
from gateway.api.market_state import MarketStateServicer
from gateway.api.pretrade import PreTradeServicer
from gateway.api.routing import RoutingServicer

FILES = (pretrade_pb2, routing_pb2, journal_pb2, market_state_pb2)
SERVICERS = {
    cls.SERVICE.full_name: cls
    for cls in (PreTradeServicer, RoutingServicer, JournalServicer, MarketStateServicer)
}
DECLARED = [
    (service, method)
    for module in FILES
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


def test_every_declared_service_has_a_servicer() -> None:
    declared = {
        service.full_name
        for module in FILES
        for service in module.DESCRIPTOR.services_by_name.values()
    }
    assert declared == set(SERVICERS)


@pytest.mark.parametrize(("service", "method"), DECLARED, ids=lambda v: getattr(v, "name", ""))
def test_every_declared_rpc_is_an_async_method_of_its_servicer(
    service: object, method: object
) -> None:
    servicer = SERVICERS[service.full_name]  # type: ignore[attr-defined]
    handler = getattr(servicer, method.name)  # type: ignore[attr-defined]
    # The generated base class has synchronous placeholders; ours are coroutines or async
    # generators.
    if method.server_streaming:  # type: ignore[attr-defined]
        assert inspect.isasyncgenfunction(handler)
    else:
        assert inspect.iscoroutinefunction(handler)
    assert getattr(handler, "_execgw_translated", False), "RPC bypasses the error translator"
