"""JournalService: durable fills, positions, P&L, reconciliation and the audit trail."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Generic, TypeVar

from gateway import tracing
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
# Fills in one RecordFillBatches message, and batches of one stream taken in ahead of answers.
MAX_BATCH = 1000
MAX_BATCHES_IN_FLIGHT = 16
# Original acknowledgements kept for retries (see ``_Acknowledged``).
ACKNOWLEDGEMENTS_KEPT = 32_768
T = TypeVar("T")
Req = TypeVar("Req")
Out = TypeVar("Out")
Ans = TypeVar("Ans")
# RecordFill's span attribute (constants: nothing built per call when the call is not sampled).
_DUPLICATE = {"execgw.duplicate": True}
_NEW = {"execgw.duplicate": False}


class _Acknowledged:
    """The latest acknowledgements this gateway gave for new fills, by (venue, exec id).

    A retry that sends the same fill again, field for field, is answered with its original
    acknowledgement marked duplicate (what the API promises), without validating, pricing or
    journaling it again: the fill it names was committed before that acknowledgement was given,
    and a committed fill never changes. Anything else (a changed fill, an unknown one, one
    acknowledged long ago) takes the full path, which finds duplicates and conflicts itself.
    """

    __slots__ = ("_acks", "_size")

    def __init__(self, size: int = ACKNOWLEDGEMENTS_KEPT) -> None:
        self._acks: OrderedDict[tuple[str, str], tuple[pb.Fill, pb.FillAck]] = OrderedDict()
        self._size = size

    def get(self, fill: pb.Fill) -> pb.FillAck | None:
        """The original acknowledgement of exactly this fill, if kept."""
        found = self._acks.get((fill.venue, fill.exec_id))
        if found is None or found[0] != fill:
            return None
        return found[1]

    def add(self, fill: pb.Fill, ack: pb.FillAck) -> None:
        acks = self._acks
        if len(acks) >= self._size:
            acks.popitem(last=False)
        acks[(fill.venue, fill.exec_id)] = (fill, ack)


class _Pipeline(Generic[T]):
    """The requests of one stream in flight, in request order, between its reader and answerer.

    Plain attributes and one wake-up future instead of an ``asyncio.Queue`` and a semaphore: a
    stream passes tens of thousands of fills a second, and those cost microseconds each.
    """

    __slots__ = ("_answerer_waits", "_limit", "_loop", "_reader_waits", "closed", "items")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.items: deque[T] = deque()
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._reader_waits: asyncio.Future[None] | None = None
        self._answerer_waits: asyncio.Future[None] | None = None

    def put(self, item: T) -> None:
        self.items.append(item)
        self._wake_answerer()

    def close(self) -> None:
        self.closed = True
        self._wake_answerer()

    def _wake_answerer(self) -> None:
        waiter = self._answerer_waits
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_room(self) -> None:
        """Wait while ``limit`` requests await their answers."""
        while len(self.items) >= self._limit:
            self._reader_waits = self._loop.create_future()
            await self._reader_waits

    async def wait_item(self) -> bool:
        """Wait for a request to answer; False when the reader is done and none is left."""
        while not self.items:
            if self.closed:
                return False
            self._answerer_waits = self._loop.create_future()
            await self._answerer_waits
        return True

    def taken(self) -> None:
        """The oldest request was answered: let the reader go on once half the room is free."""
        waiter = self._reader_waits
        if waiter is not None and not waiter.done() and len(self.items) <= self._limit // 2:
            waiter.set_result(None)


async def _pipelined(
    requests: AsyncIterator[Req],
    take: Callable[[Req], Out],
    commits: Callable[[Out], list[asyncio.Future[Recorded]]],
    answer: Callable[[Req, Out], Ans],
    limit: int,
) -> AsyncIterator[Ans]:
    """Answer a stream's requests in order, each once its commits are done.

    A reader task takes requests in (``take`` validates and queues their fills) while earlier
    ones wait for their commit, so one stream fills the writer's batches, at most ``limit`` ahead
    of the answers: a client that does not read its answers is slowed by HTTP/2 flow control, it
    cannot grow the gateway's memory. The writer commits in submission order, so once the oldest
    request is answered the rest of its batch is too: their answers go out without another wait.
    """
    pipeline: _Pipeline[tuple[Req, Out]] = _Pipeline(limit)

    async def read() -> None:
        try:
            async for request in requests:
                await pipeline.wait_room()
                pipeline.put((request, take(request)))
        finally:
            pipeline.close()

    reader = asyncio.create_task(read(), name="journal-stream-reader")
    items = pipeline.items
    try:
        while await pipeline.wait_item():
            request, outcome = items[0]
            waiting = [future for future in commits(outcome) if not future.done()]
            if waiting:
                await asyncio.wait(waiting)  # once per writer batch: the rest are done with it
            items.popleft()
            pipeline.taken()
            yield answer(request, outcome)
        await reader  # a failed read ends the call with its error
    finally:
        reader.cancel()
        for _, left in items:
            for future in commits(left):
                future.cancel()


class JournalServicer(Servicer, pb_grpc.JournalServiceServicer):
    SERVICE = pb.DESCRIPTOR.services_by_name["JournalService"]

    def __init__(self, metrics: Metrics, journal: TradeJournal | None = None) -> None:
        super().__init__(metrics)
        self._journal = journal
        self._acknowledged = _Acknowledged()

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
        response = pb.RecordFillResponse(request_id=request.request_id)
        self._ack_into(request, recorded, response.ack)
        return response

    def _ack_into(
        self, request: pb.RecordFillRequest, recorded: Recorded, into: pb.FillAck
    ) -> None:
        assert self._journal is not None
        jc.ack_to_proto(recorded, self._journal.marks(recorded.fill.symbol), into)
        if not recorded.stored.duplicate:
            self._acknowledged.add(request.fill, into)

    def _retried(self, request: pb.RecordFillRequest) -> pb.FillAck | None:
        """The original acknowledgement when ``request`` repeats a fill acknowledged here."""
        if self._journal is None:
            return None
        ack = self._acknowledged.get(request.fill)
        if ack is not None:
            self._journal.count_retry()
        return ack

    async def RecordFill(
        self, request: pb.RecordFillRequest, context: Context
    ) -> pb.RecordFillResponse:
        ack = self._retried(request)
        if ack is not None:
            tracing.annotate(_DUPLICATE)
            return self._answer(request, ack)
        submitted = self._submit(request)
        with tracing.child("journal.commit"):
            recorded = await submitted
        tracing.annotate(_DUPLICATE if recorded.stored.duplicate else _NEW)
        return self._ack(request, recorded)

    async def RecordFills(
        self, request_iterator: AsyncIterator[pb.RecordFillRequest], context: Context
    ) -> AsyncIterator[pb.RecordFillResponse]:
        # One answer per request, in request order, each after its commit (see ``_pipelined``).
        loop = asyncio.get_running_loop()
        async for answer in _pipelined(
            request_iterator,
            lambda request: self._outcome(request, loop),
            lambda outcome: [] if isinstance(outcome, pb.FillAck) else [outcome],
            self._answer,
            MAX_IN_FLIGHT,
        ):
            yield answer

    def _outcome(
        self, request: pb.RecordFillRequest, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[Recorded] | pb.FillAck:
        """A stream request taken in: its original ack (a retry), or its commit or error."""
        retried = self._retried(request)
        if retried is not None:
            return retried
        try:
            return self._submit(request)
        except ExecgwError as error:
            failed: asyncio.Future[Recorded] = loop.create_future()
            failed.set_exception(error)
            return failed

    def _answer(
        self, request: pb.RecordFillRequest, outcome: asyncio.Future[Recorded] | pb.FillAck
    ) -> pb.RecordFillResponse:
        """The answer to one request: its ack (the original, for a retry), or its error."""
        response = pb.RecordFillResponse(request_id=request.request_id)
        self._answer_into(request, outcome, response)
        return response

    def _answer_into(
        self,
        request: pb.RecordFillRequest,
        outcome: asyncio.Future[Recorded] | pb.FillAck,
        into: pb.RecordFillResponse,
    ) -> None:
        if isinstance(outcome, pb.FillAck):
            into.ack.CopyFrom(outcome)
            into.ack.duplicate = True
            return
        error = outcome.exception()
        if error is None:
            self._ack_into(request, outcome.result(), into.ack)
            return
        if not isinstance(error, ExecgwError):
            raise error
        jc.stream_error(error, into.error)

    async def RecordFillBatches(
        self, request_iterator: AsyncIterator[pb.RecordFillBatch], context: Context
    ) -> AsyncIterator[pb.RecordFillBatchResponse]:
        # RecordFills per batch: one answer per batch, in order, once its last fill committed.
        loop = asyncio.get_running_loop()

        def take(batch: pb.RecordFillBatch) -> list[asyncio.Future[Recorded] | pb.FillAck] | None:
            if not 0 < len(batch.fills) <= MAX_BATCH:
                return None
            return [self._outcome(request, loop) for request in batch.fills]

        def commits(
            outcomes: list[asyncio.Future[Recorded] | pb.FillAck] | None,
        ) -> list[asyncio.Future[Recorded]]:
            return [o for o in outcomes or () if isinstance(o, asyncio.Future)]

        async for answer in _pipelined(
            request_iterator, take, commits, self._batch_answer, MAX_BATCHES_IN_FLIGHT
        ):
            yield answer

    def _batch_answer(
        self,
        batch: pb.RecordFillBatch,
        outcomes: list[asyncio.Future[Recorded] | pb.FillAck] | None,
    ) -> pb.RecordFillBatchResponse:
        response = pb.RecordFillBatchResponse(batch_id=batch.batch_id)
        if outcomes is None:
            count = len(batch.fills)
            problem = "is empty" if not count else f"has {count} fills (at most {MAX_BATCH})"
            jc.stream_error(
                convert.InvalidArgument(
                    [convert.FieldViolation("fills", problem)], reason="INVALID_BATCH"
                ),
                response.error,
            )
            return response
        results = response.results
        for request, outcome in zip(batch.fills, outcomes, strict=True):
            into = results.add(request_id=request.request_id)
            self._answer_into(request, outcome, into)
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
