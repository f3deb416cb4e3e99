"""JournalService: durable fills, positions, P&L, reconciliation and the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway._pb.execgw.v1 import journal_pb2 as pb
from gateway._pb.execgw.v1 import journal_pb2_grpc as pb_grpc
from gateway.api import convert
from gateway.api.base import Context, Servicer
from gateway.errors import NotImplementedYet

_LIQUIDITY = frozenset(range(1, 5))
_FILL_KINDS = frozenset({pb.FILL_KIND_NEW, pb.FILL_KIND_CORRECTION, pb.FILL_KIND_BUST})


def validate_fill(fill: pb.Fill, field: str, problems: convert.Problems) -> None:
    """Check the fields of a fill that the edge can judge alone."""
    convert.venue(fill.venue, f"{field}.venue", problems, required=True)
    convert.identifier(fill.exec_id, f"{field}.exec_id", problems)
    convert.identifier(fill.account, f"{field}.account", problems)
    convert.symbol(fill.symbol, f"{field}.symbol", problems)
    convert.enum_value(fill.side, convert.SIDES, f"{field}.side", problems)
    convert.quantity(fill.quantity, f"{field}.quantity", problems)
    convert.decimal(fill.price, f"{field}.price", problems)
    if fill.liquidity and fill.liquidity not in _LIQUIDITY:
        problems.append(
            convert.FieldViolation(f"{field}.liquidity", f"unknown value {fill.liquidity}")
        )
    convert.timestamp(
        fill.transaction_time,
        fill.HasField("transaction_time"),
        f"{field}.transaction_time",
        problems,
    )
    if fill.kind and fill.kind not in _FILL_KINDS:
        problems.append(convert.FieldViolation(f"{field}.kind", f"unknown value {fill.kind}"))
    if fill.kind in (pb.FILL_KIND_CORRECTION, pb.FILL_KIND_BUST) and not fill.corrects_exec_id:
        problems.append(
            convert.FieldViolation(
                f"{field}.corrects_exec_id", "is required for corrections and busts"
            )
        )


def _date_range(request: pb.GetPnlRequest, problems: convert.Problems) -> None:
    start = convert.trade_date(request.start_date, "start_date", problems)
    end = convert.trade_date(request.end_date, "end_date", problems)
    if start and end and start > end:
        problems.append(convert.FieldViolation("end_date", "must not be before start_date"))


class JournalServicer(Servicer, pb_grpc.JournalServiceServicer):
    SERVICE = pb.DESCRIPTOR.services_by_name["JournalService"]

    async def RecordFill(
        self, request: pb.RecordFillRequest, context: Context
    ) -> pb.RecordFillResponse:
        problems: convert.Problems = []
        if not request.HasField("fill"):
            problems.append(convert.FieldViolation("fill", "is required"))
        else:
            validate_fill(request.fill, "fill", problems)
        convert.raise_if(problems)
        raise NotImplementedYet("RecordFill: the durable journal is not implemented yet")

    async def RecordFills(
        self, request_iterator: AsyncIterator[pb.RecordFillRequest], context: Context
    ) -> AsyncIterator[pb.RecordFillResponse]:
        raise NotImplementedYet("RecordFills: the durable journal is not implemented yet")
        yield pb.RecordFillResponse()  # pragma: no cover  # makes this an async generator

    async def GetPositions(
        self, request: pb.GetPositionsRequest, context: Context
    ) -> pb.GetPositionsResponse:
        problems: convert.Problems = []
        for i, account in enumerate(request.accounts):
            convert.identifier(account, f"accounts[{i}]", problems)
        for i, symbol in enumerate(request.symbols):
            convert.symbol(symbol, f"symbols[{i}]", problems)
        convert.raise_if(problems)
        raise NotImplementedYet("GetPositions: positions are not implemented yet")

    async def GetPnl(self, request: pb.GetPnlRequest, context: Context) -> pb.GetPnlResponse:
        problems: convert.Problems = []
        _date_range(request, problems)
        convert.raise_if(problems)
        raise NotImplementedYet("GetPnl: P&L attribution is not implemented yet")

    async def Reconcile(
        self, request: pb.ReconcileRequest, context: Context
    ) -> pb.ReconcileResponse:
        problems: convert.Problems = []
        convert.trade_date(request.trade_date, "trade_date", problems)
        for i, position in enumerate(request.positions):
            convert.identifier(position.account, f"positions[{i}].account", problems)
            convert.symbol(position.symbol, f"positions[{i}].symbol", problems)
        for i, cash in enumerate(request.cash):
            convert.identifier(cash.account, f"cash[{i}].account", problems)
            convert.decimal(cash.amount, f"cash[{i}].amount", problems, positive=False)
        convert.raise_if(problems)
        raise NotImplementedYet("Reconcile: reconciliation is not implemented yet")

    async def VerifyAuditTrail(
        self, request: pb.VerifyAuditTrailRequest, context: Context
    ) -> pb.VerifyAuditTrailResponse:
        raise NotImplementedYet("VerifyAuditTrail: the audit hash chain is not implemented yet")
