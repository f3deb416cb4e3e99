"""``execgw watch``: follow a gateway's market-state stream and print one line per change.

The snapshot comes first (one line per symbol, then the market-wide line), then one line per
update, in sequence order. When the connection is lost (UNAVAILABLE, the stream ends, or no message
and no heartbeat for ``idle_timeout``) it resubscribes with the last sequence seen, so the gateway
resumes without gaps while it still retains them (or sends a fresh snapshot marked resync).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TextIO

import grpc

from gateway._pb.execgw.v1 import market_state_pb2 as pb
from gateway._pb.execgw.v1 import market_state_pb2_grpc as pb_grpc
from gateway.domain.calendar import EXCHANGE_TZ
from gateway.errors import ExecgwError

log = logging.getLogger(__name__)

HEARTBEAT_MS = 2000
IDLE_TIMEOUT = 3 * HEARTBEAT_MS / 1000
# Worth another try after a pause: the gateway unreachable, or shedding load (gRPC's queue bound
# answers CANCELLED, the gateway's own limits RESOURCE_EXHAUSTED).
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


class WatchError(ExecgwError):
    """The stream failed for a reason a retry cannot fix, or the gateway stayed unreachable."""

    reason = "WATCH_FAILED"


class _Signal(enum.Enum):
    STOP = "the watch was asked to stop"
    END = "the stream ended"
    SILENT = "no message or heartbeat within the idle timeout"


def _clock(update: pb.MarketStateUpdate) -> str:
    at = update.time.ToDatetime(tzinfo=UTC) if update.HasField("time") else datetime.now(UTC)
    return at.astimezone(EXCHANGE_TZ).strftime("%H:%M:%S.%f")[:-3] + " ET"


def _changes(values: Iterable[pb.StateChange.ValueType]) -> str:
    return ",".join(pb.StateChange.Name(v).removeprefix("STATE_CHANGE_") for v in values) or "-"


def symbol_line(head: str, state: pb.SymbolState, changes: str) -> str:
    """One symbol's state: phase, halt code, bands, limit state, Reg SHO restriction, changes."""
    halt = "-"
    if state.HasField("halt"):
        halt = state.halt.reason_code + (" (inferred)" if state.halt.inferred else "")
    band = f"{state.band.lower}-{state.band.upper}" if state.band.lower else "-"
    limit = (
        pb.LimitState.Name(state.limit_state).removeprefix("LIMIT_STATE_")
        if state.limit_state
        else "-"
    )
    phase = pb.TradingPhase.Name(state.phase).removeprefix("TRADING_PHASE_")
    return (
        f"{head}  {state.symbol:<8} {phase:<17} "
        f"halt={halt}  bands={band}  limit={limit}  "
        f"ssr={'yes' if state.short_sale_restricted else 'no'}  changes={changes}"
    )


def market_line(head: str, market: pb.MarketWideState, changes: str) -> str:
    """The market-wide state: circuit breaker level, halt end, index level."""
    level = pb.CircuitBreakerLevel.Name(market.level).removeprefix("CIRCUIT_BREAKER_LEVEL_") or "-"
    halted = "for the day" if market.halted_for_day else "-"
    if market.HasField("halted_until"):
        until = market.halted_until.ToDatetime(tzinfo=UTC).astimezone(EXCHANGE_TZ)
        halted = until.strftime("until %H:%M:%S ET")
    index = f"{market.index_level or '-'}/{market.index_prior_close or '-'}"
    return (
        f"{head}  {'MARKET':<8} breaker={level}  halted={halted}  index={index}  "
        f"trade_date={market.trade_date or '-'}  changes={changes}"
    )


def format_update(update: pb.MarketStateUpdate) -> list[str]:
    """The lines printed for one stream message (none for a heartbeat)."""
    head = f"{_clock(update)}  #{update.sequence}"
    kind = update.WhichOneof("update")
    conflated = " (conflated)" if update.conflated else ""
    if kind == "snapshot":
        snapshot = update.snapshot
        resync = " (resync)" if snapshot.resync else ""
        lines = [f"{head}  snapshot of {len(snapshot.symbols)} symbols{resync}"]
        lines += [symbol_line(head, s, "SNAPSHOT") for s in snapshot.symbols]
        lines.append(market_line(head, snapshot.market, "SNAPSHOT"))
        return lines
    if kind == "symbol":
        changes = _changes(update.symbol.changes) + conflated
        return [symbol_line(head, update.symbol.state, changes)]
    if kind == "market":
        return [market_line(head, update.market.state, _changes(update.market.changes) + conflated)]
    return []


async def _next(
    call: grpc.aio.UnaryStreamCall[pb.SubscribeMarketStateRequest, pb.MarketStateUpdate],
    stop: asyncio.Event,
    idle_timeout: float,
) -> pb.MarketStateUpdate | _Signal:
    """The next message of the stream, or why there is none. AioRpcError propagates."""
    read = asyncio.create_task(call.read(), name="watch-read")
    stopping = asyncio.create_task(stop.wait(), name="watch-stop")
    try:
        done, _ = await asyncio.wait(
            (read, stopping), timeout=idle_timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopping.cancel()
        if not read.done():
            read.cancel()
    if read in done:
        message = read.result()
        return message if isinstance(message, pb.MarketStateUpdate) else _Signal.END
    return _Signal.STOP if stopping in done else _Signal.SILENT


async def watch(
    target: str,
    *,
    out: TextIO,
    stop: asyncio.Event,
    symbols: Sequence[str] = (),
    resume_after: int = 0,
    idle_timeout: float = IDLE_TIMEOUT,
    reconnect_timeout: float = 60.0,
) -> int:
    """Print the market-state stream of the gateway at ``target`` until ``stop`` is set.

    Returns the last sequence seen (to resume from). Raises WatchError when the gateway refuses
    the subscription or stays unreachable for ``reconnect_timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    last = resume_after
    failing_since: float | None = None
    backoff = 0.25
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.MarketStateServiceStub(channel)
        while not stop.is_set():
            request = pb.SubscribeMarketStateRequest(
                symbols=list(symbols),
                resume_after_sequence=last,
                heartbeat_interval_ms=HEARTBEAT_MS,
            )
            call = stub.SubscribeMarketState(request)
            try:
                while isinstance(
                    update := await _next(call, stop, idle_timeout), pb.MarketStateUpdate
                ):
                    failing_since, backoff = None, 0.25
                    last = max(last, update.sequence)
                    for line in format_update(update):
                        print(line, file=out, flush=True)
                problem = update.value
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _RETRYABLE:
                    raise WatchError(f"{target}: {exc.code().name}: {exc.details()}") from exc
                problem = f"{exc.code().name}: {exc.details()}"
            finally:
                call.cancel()
            if stop.is_set():
                break
            now = loop.time()
            failing_since = failing_since if failing_since is not None else now
            if now - failing_since > reconnect_timeout:
                raise WatchError(f"{target}: unreachable for {reconnect_timeout:.0f} s ({problem})")
            log.warning("%s: %s; resubscribing after sequence %d", target, problem, last)
            try:
                await asyncio.wait_for(stop.wait(), backoff)
            except TimeoutError:
                backoff = min(backoff * 2, 5.0)
    return last
