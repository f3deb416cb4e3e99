"""Servicer base: every RPC method goes through the one error translator, and through the access
check of ``gateway.api.access`` when authentication or a per-client limit is configured.

A servicer subclasses the generated ``*Servicer`` and ``Servicer`` and names its service
descriptor; ``__init_subclass__`` wraps each RPC method it defines, by the method's streaming kind.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, ClassVar

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError
from opentelemetry.trace import Status, StatusCode

from gateway import errors
from gateway.api import status
from gateway.metrics import Metrics
from gateway.tracing import Tracing

if TYPE_CHECKING:
    from gateway.api.access import Access

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]


class Servicer:
    """Mixin for the gateway's servicers."""

    SERVICE: ClassVar[ServiceDescriptor]
    # Set by the server when tracing is on.
    tracing: Tracing = Tracing.off()
    # Set by the server when authentication or a per-client limit is on: every call is admitted
    # by it first (None, the default: the one check a call pays).
    access: Access | None = None
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


def _code_of(error: BaseException) -> grpc.StatusCode:
    if isinstance(error, errors.ExecgwError):
        return status.status_code_for(error)
    return grpc.StatusCode.INTERNAL


async def _fail(servicer: Servicer, method: str, context: Context, error: BaseException) -> None:
    if isinstance(error, errors.ExecgwError):
        code = status.status_code_for(error)
        servicer.metrics.rpc_errors.labels(method, code.name).inc()
        await status.abort(context, status.to_status(error))
    log.exception("unexpected error in %s", method, exc_info=error)
    servicer.metrics.rpc_errors.labels(method, grpc.StatusCode.INTERNAL.name).inc()
    await status.abort(context, status.internal_status())


def _aborted_code(context: Context) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


class _Observed:
    """One RPC's outcome for the metrics and its span (when sampled): what both wrappers share."""

    __slots__ = ("code", "counts", "span", "started", "token", "tracing")

    def __init__(self, servicer: Servicer, name: str, path: str, context: Context) -> None:
        self.started = time.perf_counter_ns()
        self.code = "OK"
        self.counts = servicer.metrics.rpcs.method(name)
        self.tracing = tracing = servicer.tracing
        self.span = (
            tracing.rpc_span(path, context.invocation_metadata()) if tracing.enabled else None
        )
        self.token = tracing.enter(self.span) if self.span is not None else None

    def failed(self, error: BaseException, context: Context) -> None:
        if isinstance(error, grpc.aio.AbortError):
            self.code = _aborted_code(context)
        elif isinstance(error, asyncio.CancelledError):
            self.code = "CANCELLED"
        else:
            self.code = _code_of(error).name
        if self.span is not None and isinstance(error, errors.ExecgwError):
            self.span.set_attribute("execgw.reason", error.reason)

    def end(self) -> None:
        self.counts.observe(self.code, time.perf_counter_ns() - self.started)
        span = self.span
        if span is not None:
            self.tracing.leave(self.token)
            span.set_attribute("rpc.grpc.status_code", self.code)
            if self.code != "OK":
                span.set_status(Status(StatusCode.ERROR, self.code))
            span.end()


def _translated(handler: Callable[..., Any], method: MethodDescriptor) -> Callable[..., Any]:
    name = method.full_name
    # The span name of the RPC semantic conventions: package.Service/Method.
    path = f"{method.containing_service.full_name}/{method.name}"
    request_type = method.input_type.full_name
    streamed_requests = method.client_streaming

    def admitted(self: Servicer, request: Any, context: Context) -> tuple[Any, Any]:
        """The request checked (well-formed, let in by access control) and its lease, if any."""
        if streamed_requests:
            request = _checked(request, request_type)
        elif request is _MALFORMED:
            raise _malformed(request_type)
        if self.access is not None:
            return self.access.admit(name, request, context)
        return request, None

    if method.server_streaming:

        @functools.wraps(handler)
        async def streaming(self: Servicer, request: Any, context: Context) -> AsyncIterator[Any]:
            observed = _Observed(self, name, path, context)
            lease = None
            try:
                request, lease = admitted(self, request, context)
                async for item in handler(self, request, context):
                    yield item
            except (grpc.aio.AbortError, asyncio.CancelledError) as error:
                observed.failed(error, context)
                raise
            except Exception as error:  # noqa: BLE001  # translated, never swallowed
                observed.failed(error, context)
                await _fail(self, name, context, error)
            finally:
                if lease is not None:
                    lease.release()
                observed.end()

        return streaming

    @functools.wraps(handler)
    async def unary(self: Servicer, request: Any, context: Context) -> Any:
        observed = _Observed(self, name, path, context)
        lease = None
        try:
            request, lease = admitted(self, request, context)
            return await handler(self, request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError) as error:
            observed.failed(error, context)
            raise
        except Exception as error:  # noqa: BLE001  # translated, never swallowed
            observed.failed(error, context)
            await _fail(self, name, context, error)
        finally:
            if lease is not None:
                lease.release()
            observed.end()

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
    """Register ``servicer`` with the generated ``add`` function.

    Requests that are not a valid message of their type decode to ``MalformedRequest`` (the
    wrapper answers INVALID_ARGUMENT; grpc itself would answer UNKNOWN), and the methods named in
    ``ENCODED_RESPONSES`` may yield encoded bytes as well as messages.
    """
    captured = _Captured()
    add(servicer, captured)
    handlers = {}
    for name, generated in captured.handlers.items():
        # grpc's handlers are namedtuples.
        handler = generated._replace(  # type: ignore[attr-defined]
            request_deserializer=_decoded_or_malformed(generated.request_deserializer)
        )
        if name in servicer.ENCODED_RESPONSES:
            handler = handler._replace(response_serializer=_encoded_or(handler.response_serializer))
        handlers[name] = handler
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(captured.service, handlers),)
    )
    server.add_registered_method_handlers(captured.service, handlers)


def _encoded_or(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes]:
    assert serialize is not None

    def serializer(message: Any) -> bytes:
        return message if type(message) is bytes else serialize(message)

    return serializer


class MalformedRequest:
    """What a request that is not a valid protobuf message of its type decodes to."""

    __slots__ = ()


_MALFORMED = MalformedRequest()


def _decoded_or_malformed(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    assert deserialize is not None

    def deserializer(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return _MALFORMED

    return deserializer


def _malformed(type_name: str) -> errors.InvalidArgument:
    return errors.InvalidArgument.field(
        "request", f"is not a valid {type_name} message", reason="MALFORMED_REQUEST"
    )


async def _checked(requests: AsyncIterator[Any], type_name: str) -> AsyncIterator[Any]:
    # A stream of requests: a malformed one ends the stream with INVALID_ARGUMENT.
    async for request in requests:
        if request is _MALFORMED:
            raise _malformed(type_name)
        yield request
