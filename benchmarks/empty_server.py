"""The baseline: a grpc.aio server on uvloop serving the execgw.v1 services with empty handlers.

Same grpcio, uvloop, generated code and (de)serialisation as the gateway; every handler returns a
constant response built once at start. The gateway's throughput is reported as a ratio of this.

Usage: python benchmarks/empty_server.py --port 50070 [--response PreTradeService/CheckOrder=FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

import grpc
import uvloop

from gateway._pb.execgw.v1 import (
    journal_pb2,
    journal_pb2_grpc,
    market_state_pb2,
    market_state_pb2_grpc,
    pretrade_pb2,
    pretrade_pb2_grpc,
    routing_pb2,
    routing_pb2_grpc,
)

SERVICES = (
    (pretrade_pb2, pretrade_pb2_grpc, "PreTradeService"),
    (routing_pb2, routing_pb2_grpc, "RoutingService"),
    (journal_pb2, journal_pb2_grpc, "JournalService"),
    (market_state_pb2, market_state_pb2_grpc, "MarketStateService"),
)


def _constant_servicer(
    module: Any, grpc_module: Any, service: str, responses: dict[str, bytes]
) -> Any:
    """A servicer whose unary methods return a constant and streams echo one constant each.

    ``responses``: encoded constants by method name (``PreTradeService/CheckOrder``), so the
    baseline sends messages the size of the gateway's; other methods return an empty message.
    """
    base = getattr(grpc_module, f"{service}Servicer")
    descriptor = module.DESCRIPTOR.services_by_name[service]
    methods: dict[str, Any] = {}
    for method in descriptor.methods:
        response = _message_class(method.output_type).FromString(
            responses.get(f"{service}/{method.name}", b"")
        )
        if method.server_streaming:

            async def stream(self: Any, request: Any, context: Any, _r: Any = response) -> Any:
                if hasattr(request, "__aiter__"):
                    async for _ in request:
                        yield _r
                else:
                    yield _r

            methods[method.name] = stream
        else:

            async def unary(self: Any, request: Any, context: Any, _r: Any = response) -> Any:
                if hasattr(request, "__aiter__"):
                    async for _ in request:
                        pass
                return _r

            methods[method.name] = unary
    return type(f"Empty{service}", (base,), methods)()


def _message_class(descriptor: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


async def serve(port: int, responses: dict[str, bytes]) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    for module, grpc_module, service in SERVICES:
        add = getattr(grpc_module, f"add_{service}Servicer_to_server")
        add(_constant_servicer(module, grpc_module, service, responses), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--response",
        action="append",
        default=[],
        metavar="SERVICE/METHOD=FILE",
        help="return the encoded message in FILE from this method (repeatable)",
    )
    args = parser.parse_args()
    constants = {}
    for item in args.response:
        name, _, path = item.partition("=")
        constants[name] = Path(path).read_bytes()
    uvloop.run(serve(args.port, constants))
