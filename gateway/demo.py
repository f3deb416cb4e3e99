"""``execgw demo``: a scripted trading day in about a minute, told through the gateway's own API.

The demo plays every part around one gateway: in process on a fresh embedded PostgreSQL, or any
gateway given by ``--target`` that runs with ``market_clock = "feed"`` on an empty journal.

- The **feed handler** (``gateway.oms_simulator``) publishes a labelled synthetic session
  (``gateway.session_generator``): reference data for a few dozen symbols, quotes and trades, LULD
  limit states and pauses, news halts, Reg SHO Rule 201 triggers and a Level 1 market-wide circuit
  breaker, paced so that the session's minutes pass in ``DemoSpec.seconds`` of wall time.
- The **OMS** (``gateway.oms_simulator``) submits orders through the checks and the router, has the
  simulated venues execute them, reports venue events and fills, and cancels resting orders when
  the gateway says a halt hit them.
- The **operator** watches halt and auction state live (``gateway.watch``, compacted), and after the
  close runs the ``execgw`` commands: P&L attribution, routing report, reconciliation against the
  broker statement the demo writes from its own fills, and audit verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import TextIO

import grpc
from google.protobuf import json_format

from gateway import session_generator
from gateway._pb.execgw.v1 import market_state_pb2 as ms
from gateway.domain.calendar import EXCHANGE_TZ, TradingCalendar
from gateway.domain.venues import load_venues
from gateway.errors import ExecgwError
from gateway.oms_simulator import ACCOUNTS, TIMEOUT, DayTally, FeedHandler, SimulatedOms
from gateway.settings import Settings
from gateway.watch import watch

__all__ = ["ACCOUNTS", "DemoError", "DemoResult", "DemoSpec", "play_day", "run"]

_GRID = timedelta(seconds=5)  # feed time between publications when paced (a smooth live view)
_OPEN = dt_time(9, 30)
_PHASE = re.compile(r"#\d+\s+\S+\s+(\S+)")  # a watch line: time, sequence, symbol, phase
_ROUTINE_PHASES = frozenset({"PRE_OPEN", "CONTINUOUS"})
# Changes the live view shows; band and reference-data updates are left out.
_LIVE = frozenset(
    {
        "HALT",
        "PAUSE",
        "RESUME",
        "LIMIT_STATE",
        "AUCTION_PHASE",
        "CIRCUIT_BREAKER",
        "SHORT_SALE_RESTRICTION",
        "OPERATIONAL_HALT",
    }
)


class DemoError(ExecgwError):
    """The day cannot be played: a trade date not over yet, a gateway that played it already,
    or a failed RPC."""

    reason = "DEMO_FAILED"


@dataclass(frozen=True, slots=True)
class DemoSpec:
    """What to play. ``seconds`` is the wall time the session is paced over (0: no pacing)."""

    seed: int = 7
    symbols: int = 36
    orders: int = 3000
    minutes: int = 50
    seconds: float = 45.0
    trade_date: date | None = None  # default: the last trading day before today
    live_view: bool = True


@dataclass(slots=True)
class DemoResult(DayTally):
    """What happened, for the summary and for tests."""

    trade_date: date = date.min
    incidents: Counter[str] = field(default_factory=Counter)
    live_lines: int = 0
    statement_rows: int = 0
    reports: dict[str, str] = field(default_factory=dict)
    reconciled: bool = False
    audit_valid: bool = False
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.reconciled and self.audit_valid and not self.fill_errors


# --- the session -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Session:
    trade_date: date
    open_at: datetime
    end_at: datetime
    events: list[tuple[datetime, ms.MarketDataEvent]]
    symbols: tuple[str, ...]
    labels: Counter[str]


def _session(spec: DemoSpec, calendar: TradingCalendar) -> _Session:
    today = datetime.now(EXCHANGE_TZ).date()
    day = spec.trade_date or calendar.previous_trading_day(today)
    if day >= today:
        raise DemoError(f"trade date {day}: must be before today ({today}); its fills are past")
    text = session_generator.generate(
        session_generator.SessionSpec(
            seed=spec.seed, symbols=spec.symbols, trade_date=day, minutes=spec.minutes
        ),
        calendar,
    )
    events: list[tuple[datetime, ms.MarketDataEvent]] = []
    labels: Counter[str] = Counter()
    for line in text.splitlines():
        value = json.loads(line)
        if "session" in value:
            continue
        if "label" in value:
            labels[value["label"]["kind"]] += 1
            continue
        message = json_format.ParseDict(value, ms.MarketDataEvent())
        events.append((message.event_time.ToDatetime(tzinfo=UTC), message))
    symbols = tuple(sorted({m.symbol for _, m in events if m.HasField("reference_data")}))
    open_at = datetime.combine(day, _OPEN, tzinfo=EXCHANGE_TZ)
    return _Session(
        day, open_at, open_at + timedelta(minutes=spec.minutes), events, symbols, labels
    )


# --- the operator's views ----------------------------------------------------------------------


class _LiveView(io.StringIO):
    """What ``execgw watch`` prints, kept to halts, pauses, limit states, auctions and breakers.

    Symbols' lines that only follow a market-wide halt are left out (the MARKET line says it), and
    so are the routine pre-open and open of every symbol.
    """

    def __init__(self, out: TextIO, result: DemoResult) -> None:
        super().__init__()
        self._out = out
        self._result = result
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if self._wanted(line):
                self._out.write(f"  | {line}\n")
                self._result.live_lines += 1
        return len(text)

    def flush(self) -> None:
        self._out.flush()

    @staticmethod
    def _wanted(line: str) -> bool:
        head, _, changes = line.rpartition("  changes=")
        kinds = set(changes.split(" ")[0].split(",")) & _LIVE
        if " MARKET " in head:
            return "CIRCUIT_BREAKER" in kinds
        kinds.discard("CIRCUIT_BREAKER")
        phase = _PHASE.search(head)
        if kinds == {"AUCTION_PHASE"} and phase and phase.group(1) in _ROUTINE_PHASES:
            return False  # every symbol's pre-open and open: not news
        return bool(kinds)


def _progress(result: DemoResult, at: datetime, oms: SimulatedOms) -> str:
    clock = at.astimezone(EXCHANGE_TZ).strftime("%H:%M:%S")
    refused = result.orders - result.accepted
    return (
        f"  -- {clock} ET  orders {result.orders:,} ({result.accepted:,} accepted, {refused:,} "
        f"refused, {result.refused_while_halted:,} of them halted)  fills {result.fills:,}  "
        f"resting {len(oms.resting)}  cancel instructions "
        f"{sum(result.cancel_instructions.values())}"
    )


def _summary(result: DemoResult, session: _Session) -> list[str]:
    incidents = ", ".join(f"{kind} {n}" for kind, n in sorted(result.incidents.items()))
    refused = result.orders - result.accepted
    by_reason = ", ".join(f"{code} {n:,}" for code, n in result.refusals.most_common(8))
    cancels = ", ".join(f"{code} {n}" for code, n in result.cancel_instructions.most_common())
    return [
        "",
        f"trading day {session.trade_date}: {len(session.symbols)} symbols, scripted incidents "
        f"({incidents})",
        f"  market data  {result.events:,} events published, {result.events_refused:,} refused",
        f"  orders       {result.orders:,} submitted: {result.accepted:,} accepted and routed, "
        f"{refused:,} refused ({result.refused_while_halted:,} because the symbol or market was "
        "halted or paused)",
        f"               refusals by reason: {by_reason or '-'}",
        f"  halts        {sum(result.cancel_instructions.values())} cancel instructions received "
        f"({cancels or '-'}), {result.cancelled_on_instruction} resting orders cancelled on them; "
        f"{result.hold_instructions} hold instructions",
        f"  OMS cancels  {result.cancelled_by_oms:,} resting orders cancelled when their time "
        "was up",
        f"  fills        {result.fills:,} journaled ({result.shares:,} shares), "
        f"{sum(result.fill_errors.values())} refused",
        f"  statement    {result.statement_rows} rows (positions and cash per account), written "
        "from the OMS's own fills",
        f"  live view    {result.live_lines} state changes shown",
    ]


# --- the day -------------------------------------------------------------------------------------


def _order_times(rng: random.Random, session: _Session, count: int) -> list[datetime]:
    start = session.open_at + timedelta(seconds=30)
    span_ms = int((session.end_at - start).total_seconds() * 1000) - 30_000
    return sorted(start + timedelta(milliseconds=rng.randrange(span_ms)) for _ in range(count))


def _boundaries(spec: DemoSpec, session: _Session, orders: list[datetime]) -> list[datetime]:
    moments = set(orders)
    if spec.seconds > 0:
        at = session.open_at
        while at < session.end_at:
            moments.add(at)
            at += _GRID
    return sorted(moments)


async def _play(
    channel: grpc.aio.Channel,
    *,
    target: str,
    spec: DemoSpec,
    session: _Session,
    result: DemoResult,
    out: TextIO,
) -> str:
    """Publish the session and run the OMS through it, with the live view on; returns the
    broker's statement of the day (from the OMS's acknowledged fills)."""
    rng = random.Random(spec.seed)
    today = session.trade_date
    feed = FeedHandler(channel, session.events, result)
    oms = SimulatedOms(
        channel, feed, session.symbols, result, rng=rng, venues=load_venues(trade_date=today)
    )
    stop = asyncio.Event()

    async def live_view() -> None:
        await watch(target, out=_LiveView(out, result), stop=stop)

    instructions = asyncio.create_task(oms.follow_instructions(), name="demo-instructions")
    view = asyncio.create_task(live_view(), name="demo-live-view") if spec.live_view else None
    try:
        orders = _order_times(rng, session, spec.orders)
        await feed.publish_until(session.open_at - timedelta(milliseconds=1))
        loop = asyncio.get_running_loop()
        started = loop.time()
        rate = (session.end_at - session.open_at) / spec.seconds if spec.seconds > 0 else None
        shown = started
        n = 0
        for at in _boundaries(spec, session, orders):
            if rate is not None:
                due = started + (at - session.open_at) / rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
            await feed.publish_until(at)
            if result.events_refused:
                raise DemoError(
                    f"{target} refused {result.events_refused} of the session's events: it has "
                    "played this trading day already; use a fresh gateway (market_clock=feed, "
                    "empty journal)"
                )
            await oms.follow(at)
            await oms.cancel_expired(at)
            while n < len(orders) and orders[n] <= at:
                n += 1
                order = oms.order(n)
                if order is not None:
                    await feed.refresh(order.symbol, at)
                    await oms.submit(order, at)
            if loop.time() - shown >= 5.0:
                shown = loop.time()
                print(_progress(result, at, oms), file=out, flush=True)
        await feed.publish_until(session.end_at)
        await asyncio.sleep(0.2)  # the last instructions and state changes arrive
        await oms.follow(session.end_at)
        await oms.close(session.end_at)
        print(_progress(result, session.end_at, oms), file=out, flush=True)
        return oms.drop_copy.statement()
    finally:
        stop.set()  # the live view ends at once; the instruction stream is cancelled
        oms.drop_copy.cancel()
        instructions.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await instructions
        if view is not None:
            await asyncio.wait_for(view, TIMEOUT)


async def _reports(
    settings: Settings, trade_date: date, statement: Path, result: DemoResult, out: TextIO
) -> None:
    """The operator's end of day: the ``execgw`` commands, against this gateway."""
    from gateway.cli import build_parser

    day = trade_date.isoformat()
    commands = {
        "pnl": ["report", "pnl", "--start-date", day, "--group-by", "account"],
        "routing": ["report", "routing", "--start-date", day],
        "reconcile": ["reconcile", "--date", day, "--statement", str(statement)],
        "audit": ["audit", "verify"],
    }
    parser = build_parser()
    for name, argv in commands.items():
        args = parser.parse_args(argv)
        print(f"\n$ execgw {' '.join(argv)}", file=out)
        printed = io.StringIO()
        passed = True
        try:
            with contextlib.redirect_stdout(printed):
                await args.run(settings, args)
        except ExecgwError as exc:
            passed = False
            printed.write(f"execgw: {exc.message}\n")
        out.write(printed.getvalue())
        result.reports[name] = printed.getvalue()
        if name == "reconcile":
            result.reconciled = passed
        elif name == "audit":
            result.audit_valid = passed


async def play_day(
    settings: Settings, spec: DemoSpec, target: str, out: TextIO, workdir: Path
) -> DemoResult:
    """Play the day against the gateway at ``target`` (``settings`` name it too, for the
    commands), write the broker statement into ``workdir`` and run the end-of-day commands."""
    calendar = TradingCalendar.default()
    session = _session(spec, calendar)
    result = DemoResult(trade_date=session.trade_date, incidents=session.labels)
    started = time.perf_counter()
    pace = f"over {spec.seconds:g} s" if spec.seconds > 0 else "as fast as it goes"
    print(
        f"demo: {session.trade_date} 09:30-{session.end_at:%H:%M} ET, {len(session.symbols)} "
        f"symbols, {len(session.events):,} market data events, {spec.orders:,} orders, {pace}; "
        f"gateway {target}",
        file=out,
        flush=True,
    )
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            text = await _play(
                channel, target=target, spec=spec, session=session, result=result, out=out
            )
        except grpc.aio.AioRpcError as exc:
            raise DemoError(f"{target}: {exc.code().name}: {exc.details()}") from exc
    statement = workdir / f"broker-statement-{session.trade_date}.csv"
    statement.write_text(text, encoding="utf-8")
    result.statement_rows = text.count("\n") - 1
    for line in _summary(result, session):
        print(line, file=out)
    await _reports(settings, session.trade_date, statement, result, out)
    result.seconds = time.perf_counter() - started
    verdict = "passed" if result.passed else "FAILED"
    print(
        f"\ndemo {verdict} in {result.seconds:.1f} s: reconciliation "
        f"{'clean' if result.reconciled else 'with breaks'}, audit trail "
        f"{'valid' if result.audit_valid else 'BROKEN'}",
        file=out,
        flush=True,
    )
    return result


async def run(
    settings: Settings, spec: DemoSpec, *, target: str | None = None, out: TextIO
) -> DemoResult:
    """Play the demo day against ``target``, or against a gateway started here for it.

    The gateway started here listens on a free port of 127.0.0.1, keeps exchange time from the
    feed, and uses ``settings.database_url`` or else an embedded PostgreSQL in a temporary folder,
    removed afterwards with the broker statement.
    """
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="execgw-demo-")))
        if target is None:
            from gateway.server import Gateway

            local = replace(
                settings,
                grpc_host="127.0.0.1",
                grpc_port=0,
                metrics_port=0,
                market_clock="feed",
                shutdown_grace_seconds=1.0,
            )
            if local.database_url is None:
                local = replace(local, data_dir=workdir / "postgres")
            print(
                "demo: starting a gateway (embedded PostgreSQL)"
                if local.database_url is None
                else "demo: starting a gateway",
                file=out,
                flush=True,
            )
            gateway = Gateway(local)
            await gateway.start()
            stack.push_async_callback(gateway.stop)
            target = f"127.0.0.1:{gateway.port}"
            settings = replace(local, grpc_port=gateway.port)
            print(
                f"demo: gateway serving on {target}, metrics on "
                f"http://127.0.0.1:{gateway.metrics_port}/metrics",
                file=out,
                flush=True,
            )
        else:
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit():
                raise DemoError(f"--target {target!r}: expected HOST:PORT")
            settings = replace(settings, grpc_host=host, grpc_port=int(port))
        return await play_day(settings, spec, target, out, workdir)
