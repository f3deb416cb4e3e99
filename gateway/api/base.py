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
