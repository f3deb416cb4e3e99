"""Decode the google.rpc details of a failed call, as a client would."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class Decoded:
    code: grpc.StatusCode
    message: str
    reason: str | None
    fields: dict[str, str]


def decode(error: grpc.aio.AioRpcError) -> Decoded:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # AioRpcError has the same API
    reason = None
    fields: dict[str, str] = {}
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                fields.update({v.field: v.description for v in bad.field_violations})
    return Decoded(error.code(), error.details() or "", reason, fields)
