"""The one place where gateway errors become gRPC statuses.

Every servicer method is wrapped (see ``gateway.api.base``) so that:
- an ``ExecgwError`` becomes its status code with google.rpc details: ErrorInfo carrying the stable
  reason, BadRequest field violations for invalid arguments, and RetryInfo for a limit the caller
  may retry after;
- cancellation and gRPC's own abort propagate untouched;
- anything else becomes INTERNAL with a generic message; the traceback is logged, never sent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import cast

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway import errors

log = logging.getLogger(__name__)

ERROR_DOMAIN = "execgw.v1"

_CODES: tuple[tuple[type[errors.ExecgwError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.NotImplementedYet, grpc.StatusCode.UNIMPLEMENTED),
    (errors.ConfigurationError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.StreamIdle, grpc.StatusCode.DEADLINE_EXCEEDED),
)


def status_code_for(error: errors.ExecgwError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]  # any protobuf message
    return packed


def to_status(error: errors.ExecgwError, metadata: Mapping[str, str] | None = None) -> grpc.Status:
    """The gRPC status (with rich details in the trailers) for a gateway error."""
    code = status_code_for(error)
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=ERROR_DOMAIN, metadata=dict(metadata or {})
            )
        )
    ]
    if isinstance(error, errors.InvalidArgument):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, errors.ResourceExhausted) and error.retry_after is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromNanoseconds(max(0, math.ceil(error.retry_after * 1e9)))
        details.append(_pack(retry))
    status = status_pb2.Status(code=code.value[0], message=error.message, details=details)
    return cast(grpc.Status, rpc_status.to_status(status))


def internal_status() -> grpc.Status:
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message="internal error; the gateway logged the details",
        details=[_pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))],
    )
    return cast(grpc.Status, rpc_status.to_status(status))


async def abort(context: grpc.aio.ServicerContext[object, object], status: grpc.Status) -> None:
    """End the RPC with ``status``; raises grpc's AbortError, which callers must not catch."""
    await context.abort(status.code, status.details, status.trailing_metadata)
