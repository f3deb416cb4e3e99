"""MarketStateService: market data in, halt/pause/auction state out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

from gateway._pb.execgw.v1 import market_state_pb2 as pb
from gateway._pb.execgw.v1 import market_state_pb2_grpc as pb_grpc
from gateway._pb.execgw.v1.common_pb2 import Reason
from gateway.api import convert, market_convert
from gateway.api.base import Context, Servicer
from gateway.domain.feed import EventRefused
from gateway.halt_guard import MARKET_TOPIC, EncodedUpdate, HaltGuard
from gateway.metrics import Metrics
from gateway.state_stream import Update

MAX_REJECTIONS_LISTED = 100
MIN_HEARTBEAT_MS = 100
CANCEL_GRACE_SECONDS = 0.005
_CONFLATED = pb.MarketStateUpdate(conflated=True).SerializeToString()


class MarketStateServicer(Servicer, pb_grpc.MarketStateServiceServicer):
    SERVICE = pb.DESCRIPTOR.services_by_name["MarketStateService"]
    ENCODED_RESPONSES = frozenset({"SubscribeMarketState"})

    def __init__(self, metrics: Metrics, guard: HaltGuard, heartbeat_seconds: float = 5.0) -> None:
        super().__init__(metrics)
        self.guard = guard
        self.heartbeat_seconds = heartbeat_seconds

    async def PublishMarketData(
        self, request_iterator: AsyncIterator[pb.MarketDataEvent], context: Context
    ) -> pb.PublishMarketDataSummary:
        summary = pb.PublishMarketDataSummary()
        feed = self.guard.feed
        feed.opened()
        cleanly = False
        try:
            await self._publish_all(request_iterator, summary)
            # A dropped call ends the request stream as the publisher's close does, and grpc
            # cancels this handler a moment later: wait that moment before calling it clean.
            await asyncio.sleep(CANCEL_GRACE_SECONDS)
            cleanly = True
        finally:
            feed.closed(cleanly=cleanly)
        return summary

    async def _publish_all(
        self,
        request_iterator: AsyncIterator[pb.MarketDataEvent],
        summary: pb.PublishMarketDataSummary,
    ) -> None:
        index = -1
        async for message in request_iterator:
            index += 1
            event, problems = market_convert.feed_event(message)
            reason: Reason | None = None
            if event is None:
                self.metrics.market_events.labels("INVALID_EVENT").inc()
                reason = Reason(
                    code="INVALID_EVENT",
                    message="; ".join(f"{p.field}: {p.description}" for p in problems),
                    field=problems[0].field if problems else "",
                )
            else:
                try:
                    self.guard.publish(event)
                except EventRefused as refused:
                    reason = Reason(code=refused.reason, message=refused.message)
            if reason is None:
                summary.accepted += 1
                continue
            summary.rejected += 1
            if len(summary.rejections) < MAX_REJECTIONS_LISTED:
                summary.rejections.add(
                    index=index,
                    feed_sequence=message.feed_sequence,
                    symbol=message.symbol,
                    reason=reason,
                )

    def _snapshot(
        self, symbols: list[str], resync: bool, sequence: int, now: datetime
    ) -> pb.MarketStateUpdate:
        engine = self.guard.engine
        update = pb.MarketStateUpdate(sequence=sequence)
        update.time.FromDatetime(now)
        snapshot = update.snapshot
        snapshot.resync = resync
        names = symbols or sorted(engine.symbols)
        for name in names:
            state = engine.get(name)
            if state is not None:
                snapshot.symbols.append(market_convert.symbol_state(engine, state, now))
        snapshot.market.CopyFrom(market_convert.market_state(engine, now))
        return update

    @staticmethod
    def _message(update: Update[EncodedUpdate]) -> bytes:
        # Appending a field to an encoded message sets it (protobuf merges concatenations).
        return update.value + _CONFLATED if update.conflated else update.value

    # Yields encoded updates too (ENCODED_RESPONSES), which the generated signature cannot say.
    async def SubscribeMarketState(  # type: ignore[override]
        self, request: pb.SubscribeMarketStateRequest, context: Context
    ) -> AsyncIterator[pb.MarketStateUpdate | bytes]:
        problems: convert.Problems = []
        for i, symbol in enumerate(request.symbols):
            convert.symbol(symbol, f"symbols[{i}]", problems)
        if 0 < request.heartbeat_interval_ms < MIN_HEARTBEAT_MS:
            problems.append(
                convert.FieldViolation(
                    "heartbeat_interval_ms", f"must be 0 (default) or >= {MIN_HEARTBEAT_MS}"
                )
            )
        convert.raise_if(problems)
        symbols = sorted(set(request.symbols))
        topics = [*symbols, MARKET_TOPIC] if symbols else None
        heartbeat = (
            request.heartbeat_interval_ms / 1000
            if request.heartbeat_interval_ms
            else self.heartbeat_seconds
        )
        subscription, start = self.guard.states.subscribe(topics, request.resume_after_sequence)
        self.metrics.subscribers.inc()
        try:
            last = start.sequence
            if start.snapshot is not None:
                yield self._snapshot(symbols, start.resync, start.sequence, self.guard.now())
            for update in start.replay:
                last = update.sequence
                yield self._message(update)
            while True:
                updates = await subscription.wait_updates(heartbeat)
                if updates is None:
                    beat = pb.MarketStateUpdate(sequence=last, heartbeat=pb.Heartbeat())
                    beat.time.FromDatetime(self.guard.now())
                    yield beat
                    continue
                if not updates:
                    return
                for update in updates:
                    last = update.sequence
                    yield self._message(update)
        finally:
            subscription.close()
            self.metrics.subscribers.dec()

    async def GetMarketState(
        self, request: pb.GetMarketStateRequest, context: Context
    ) -> pb.GetMarketStateResponse:
        problems: convert.Problems = []
        for i, symbol in enumerate(request.symbols):
            convert.symbol(symbol, f"symbols[{i}]", problems)
        convert.raise_if(problems)
        now = self.guard.now()
        snapshot = self._snapshot(sorted(set(request.symbols)), False, 0, now).snapshot
        return pb.GetMarketStateResponse(
            symbols=snapshot.symbols, market=snapshot.market, sequence=self.guard.states.sequence
        )
