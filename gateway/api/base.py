"""Servicer base: every RPC method goes through the one error translator.

A servicer subclasses the generated ``*Servicer`` and ``Servicer`` and names its service
descriptor; ``__init_subclass__`` wraps each RPC method it defines, by the method's streaming kind.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from gateway import errors
from gateway.api import status
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]


class Servicer:
    """Mixin for the gateway's servicers."""

    SERVICE: ClassVar[ServiceDescriptor]
    # Methods whose responses may be yielded already encoded (bytes): a stream that sends one
    # message to many subscribers encodes it once.
    ENCODED_RESPONSES: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Every subclass, not only the one naming the service: an override of an RPC method in a
        # further subclass must be translated too.
        service = getattr(cls, "SERVICE", None)
        if service is None:
            return
        for method in service.methods:
            handler = cls.__dict__.get(method.name)
            if handler is not None and not getattr(handler, "_execgw_translated", False):
                wrapped = _translated(handler, method)
                wrapped._execgw_translated = True  # type: ignore[attr-defined]  # marker
                setattr(cls, method.name, wrapped)


async def _fail(servicer: Servicer, method: str, context: Context, error: BaseException) -> None:
    if isinstance(error, errors.ExecgwError):
        code = status.status_code_for(error)
        servicer.metrics.rpc_errors.labels(method, code.name).inc()
        await status.abort(context, status.to_status(error))
    log.exception("unexpected error in %s", method, exc_info=error)
    servicer.metrics.rpc_errors.labels(method, grpc.StatusCode.INTERNAL.name).inc()
    await status.abort(context, status.internal_status())


def _translated(handler: Callable[..., Any], method: MethodDescriptor) -> Callable[..., Any]:
    name = method.full_name
    if method.server_streaming:

        @functools.wraps(handler)
        async def streaming(self: Servicer, request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                async for item in handler(self, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as error:  # noqa: BLE001  # translated, never swallowed
                await _fail(self, name, context, error)

        return streaming

    @functools.wraps(handler)
    async def unary(self: Servicer, request: Any, context: Context) -> Any:
        try:
            return await handler(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001  # translated, never swallowed
            await _fail(self, name, context, error)

    return unary


class _Captured:
    """Stands in for the server while a generated ``add_*_to_server`` registers its handlers."""

    service = ""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.service, self.handlers = service, handlers


def add_to_server(
    add: Callable[[Any, Any], None], servicer: Servicer, server: grpc.aio.Server
) -> None:
    """Register ``servicer`` with the generated ``add`` function, letting the methods named in
    ``ENCODED_RESPONSES`` yield encoded bytes as well as messages."""
    captured = _Captured()
    add(servicer, captured)
    handlers = {
        name: handler._replace(  # type: ignore[attr-defined]  # grpc's handlers are namedtuples
            response_serializer=_encoded_or(handler.response_serializer)
        )
        if name in servicer.ENCODED_RESPONSES
        else handler
        for name, handler in captured.handlers.items()
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(captured.service, handlers),)
    )
    server.add_registered_method_handlers(captured.service, handlers)


def _encoded_or(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes]:
    assert serialize is not None

    def serializer(message: Any) -> bytes:
        return message if type(message) is bytes else serialize(message)

    return serializer
