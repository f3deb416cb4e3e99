"""JournalService: durable fills, positions, P&L, reconciliation and the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from gateway._pb.execgw.v1 import journal_pb2 as pb
from gateway._pb.execgw.v1 import journal_pb2_grpc as pb_grpc
from gateway.api import convert
from gateway.api import journal_convert as jc
from gateway.api.base import Context, Servicer
from gateway.domain.fills import trade_date_of
from gateway.errors import ExecgwError, NotImplementedYet
from gateway.metrics import Metrics
from gateway.trade_journal import Recorded, TradeJournal

# Requests of one RecordFills stream taken in ahead of their answers.
MAX_IN_FLIGHT = 4096
_InFlight = tuple[pb.RecordFillRequest, "asyncio.Future[Recorded]"]


class JournalServicer(Servicer, pb_grpc.JournalServiceServicer):
    SERVICE = pb.DESCRIPTOR.services_by_name["JournalService"]

    def __init__(self, metrics: Metrics, journal: TradeJournal | None = None) -> None:
        super().__init__(metrics)
        self._journal = journal

    def _require_journal(self) -> TradeJournal:
        if self._journal is None:
            raise NotImplementedYet("the trade journal is not started in this gateway")
        return self._journal

    def _submit(self, request: pb.RecordFillRequest) -> asyncio.Future[Recorded]:
        """Validate and queue one fill (raises at once for a bad fill or a journal that is down)."""
        now = datetime.now(UTC)
        if not request.HasField("fill"):
            raise convert.InvalidArgument([convert.FieldViolation("fill", "is required")])
        fill = jc.fill_from_proto(request.fill, now)
        return self._require_journal().submit(fill, now)

    def _ack(self, request: pb.RecordFillRequest, recorded: Recorded) -> pb.RecordFillResponse:
        assert self._journal is not None
        response = pb.RecordFillResponse(request_id=request.request_id)
        jc.ack_to_proto(recorded, self._journal.marks(recorded.fill.symbol), response.ack)
        return response

    async def RecordFill(
        self, request: pb.RecordFillRequest, context: Context
    ) -> pb.RecordFillResponse:
        return self._ack(request, await self._submit(request))

    async def RecordFills(
        self, request_iterator: AsyncIterator[pb.RecordFillRequest], context: Context
    ) -> AsyncIterator[pb.RecordFillResponse]:
        # One answer per request, in request order, each after its commit. A reader takes
        # requests in while earlier ones wait for their commit (so one stream fills the writer's
        # batches), at most MAX_IN_FLIGHT ahead of the answers: a client that does not read its
        # answers is slowed by HTTP/2 flow control, it cannot grow the gateway's memory.
        queue: asyncio.Queue[_InFlight | None] = asyncio.Queue()  # bounded by ``slots``
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await slots.acquire()
                    try:
                        future = self._submit(request)
                    except ExecgwError as error:
                        future = asyncio.get_running_loop().create_future()
                        future.set_exception(error)
                    queue.put_nowait((request, future))
            finally:
                queue.put_nowait(None)

        reader = asyncio.create_task(read(), name="record-fills-reader")
        try:
            while (item := await queue.get()) is not None:
                request, future = item
                await asyncio.wait((future,))
                slots.release()
                yield self._answer(request, future)
            await reader  # a failed read ends the call with its error
        finally:
            reader.cancel()
            while not queue.empty():
                left = queue.get_nowait()
                if left is not None:
                    left[1].cancel()

    def _answer(
        self, request: pb.RecordFillRequest, future: asyncio.Future[Recorded]
    ) -> pb.RecordFillResponse:
        """The stream's answer to one request: its ack, or its error (the stream goes on)."""
        error = future.exception()
        if error is None:
            return self._ack(request, future.result())
        if not isinstance(error, ExecgwError):
            raise error
        response = pb.RecordFillResponse(request_id=request.request_id)
        jc.stream_error(error, response.error)
        return response

    async def GetPositions(
        self, request: pb.GetPositionsRequest, context: Context
    ) -> pb.GetPositionsResponse:
        problems: convert.Problems = []
        for i, account in enumerate(request.accounts):
            convert.identifier(account, f"accounts[{i}]", problems)
        for i, symbol in enumerate(request.symbols):
            convert.symbol(symbol, f"symbols[{i}]", problems)
        convert.raise_if(problems)
        journal = self._require_journal()
        response = pb.GetPositionsResponse()
        for position in journal.positions(
            set(request.accounts),
            set(request.symbols),
            include_lots=request.include_lots,
            include_flat=request.include_flat,
        ):
            jc.position_to_proto(position, journal.marks(position.symbol), response.positions.add())
        return response

    async def GetPnl(self, request: pb.GetPnlRequest, context: Context) -> pb.GetPnlResponse:
        query = jc.pnl_query(request)
        today = trade_date_of(datetime.now(UTC))
        return jc.pnl_report(await self._require_journal().pnl(query, today))

    async def Reconcile(
        self, request: pb.ReconcileRequest, context: Context
    ) -> pb.ReconcileResponse:
        day, statement = jc.statement(request)
        run = await self._require_journal().reconcile(day, statement, datetime.now(UTC))
        return jc.reconciliation(run)

    async def VerifyAuditTrail(
        self, request: pb.VerifyAuditTrailRequest, context: Context
    ) -> pb.VerifyAuditTrailResponse:
        report = await self._require_journal().verify()
        return pb.VerifyAuditTrailResponse(
            valid=report.valid,
            rows_checked=report.rows_checked,
            chains_checked=report.chains_checked,
            first_bad_row=report.first_bad_row,
            problem=f"{report.problem.value}: {report.detail}" if report.problem else "",
        )
