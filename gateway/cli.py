"""The ``execgw`` command: serve, migrate, health, report, replay, watch."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from gateway import __version__, logs
from gateway import settings as settings_module
from gateway.client_commands import add_client_commands
from gateway.errors import ExecgwError
from gateway.journal_commands import add_journal_commands, add_pnl_report
from gateway.settings import Settings

log = logging.getLogger("execgw")


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="TOML settings file (default: $EXECGW_CONFIG)", default=None
    )
    for field in dataclasses.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        # argparse formats help with %: a literal one in a setting's help must not break --help.
        text = field.metadata.get("help", "").replace("%", "%%")
        if str(field.type) == "bool":
            parser.add_argument(
                flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
        else:
            parser.add_argument(
                flag,
                dest=field.name,
                default=None,
                metavar=field.name.upper(),
                help=text,
            )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Settings)
        if getattr(args, f.name, None) is not None
    }
    return settings_module.load(config_file=args.config, overrides=overrides)


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # not on every platform; asyncio's loop works, only slower
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _serve(settings: Settings) -> None:
    from gateway.server import serve

    await serve(settings)


async def _migrate(settings: Settings) -> None:
    from gateway.server import database_config
    from storage.database import connect, resolve_url
    from storage.migrations import apply_migrations

    config = database_config(settings)
    url, embedded = await resolve_url(config)
    try:
        connection = await connect(url, config.connect_timeout)
        try:
            applied = await apply_migrations(connection, lock_timeout=config.migration_lock_timeout)
        finally:
            await connection.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
    names = [f"{m.version:04d}_{m.name}" for m in applied]
    print(f"applied {len(names)} migration(s)" + (": " + ", ".join(names) if names else ""))


async def _health(settings: Settings) -> None:
    """Exit 0 when the gateway's gRPC health service reports SERVING (container HEALTHCHECK)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    host = "127.0.0.1" if settings.grpc_host in ("0.0.0.0", "::", "") else settings.grpc_host
    target = f"{host}:{settings.grpc_port}"
    from gateway.transport import client_channel

    async with client_channel(settings, target) as channel:
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
        except grpc.aio.AioRpcError as exc:
            raise _Unhealthy(f"{target}: {exc.code().name}: {exc.details()}") from exc
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"{target}: {status}")
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        raise _Unhealthy(f"{target}: {status}")


class _Unhealthy(ExecgwError):
    reason = "NOT_SERVING"


async def _report_routing(settings: Settings, args: argparse.Namespace) -> None:
    """Print the hindsight routing report of the gateway at grpc_host:grpc_port."""
    import grpc

    from gateway._pb.execgw.v1 import routing_pb2, routing_pb2_grpc

    host = "127.0.0.1" if settings.grpc_host in ("0.0.0.0", "::", "") else settings.grpc_host
    target = f"{host}:{settings.grpc_port}"
    request = routing_pb2.GetRoutingReportRequest(
        start_date=args.start_date, end_date=args.end_date or args.start_date, symbols=args.symbol
    )
    from gateway.transport import client_channel

    async with client_channel(settings, target) as channel:
        try:
            report = await routing_pb2_grpc.RoutingServiceStub(channel).GetRoutingReport(
                request, timeout=args.timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise ExecgwError(f"{target}: {exc.code().name}: {exc.details()}") from exc
    print(f"routing report {request.start_date} to {request.end_date}")
    print(f"  decisions {report.decisions}, with fills {report.decisions_with_fills}")
    print(f"  accuracy {report.accuracy:.1%} (tolerance {report.tolerance_per_share} $/share)")
    print(f"  realised cost     {report.realized_cost_per_share} $/share")
    print(
        f"  listing baseline  {report.baseline_listing_cost_per_share} $/share "
        f"(slippage {report.slippage_reduction_vs_listing_pct:+.1f}% lower)"
    )
    print(
        f"  lowest-fee        {report.baseline_lowest_fee_cost_per_share} $/share "
        f"(slippage {report.slippage_reduction_vs_lowest_fee_pct:+.1f}% lower)"
    )
    print(f"  savings vs listing baseline ${report.total_cost_savings}")
    print(
        f"  {'venue':<10} {'decisions':>9} {'shares':>10} {'accuracy':>8} {'cost/sh':>10} savings"
    )
    for v in report.venues:
        print(
            f"  {v.venue:<10} {v.decisions:>9} {v.filled_shares:>10} {v.accuracy:>8.1%} "
            f"{v.realized_cost_per_share:>10} ${v.cost_savings}"
        )


def _add_report_commands(commands: Any) -> None:
    report = commands.add_parser("report", help="print a report from a running gateway")
    kinds = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    summary = "hindsight analysis of routing decisions linked to fills"
    routing = kinds.add_parser("routing", help=summary, description=summary)
    _add_setting_flags(routing)
    routing.add_argument("--start-date", required=True, help="first trade date, YYYY-MM-DD")
    routing.add_argument("--end-date", help="last trade date (default: the start date)")
    routing.add_argument(
        "--symbol", action="append", default=[], help="only this symbol (repeatable)"
    )
    routing.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    routing.set_defaults(run=_report_routing)
    add_pnl_report(kinds, _add_setting_flags)


def _grpc_target(settings: Settings) -> str:
    host = "127.0.0.1" if settings.grpc_host in ("0.0.0.0", "::", "") else settings.grpc_host
    return f"{host}:{settings.grpc_port}"


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    """Generate a session, or replay one and score it; the exit status is the verdict."""
    from gateway import replay, session_generator

    if args.route:
        return _replay_route(settings, args)
    if args.generate is not None:
        if args.file is not None:
            print("execgw replay: give FILE or --generate OUT, not both", file=sys.stderr)
            return 2
        spec = session_generator.SessionSpec(
            seed=1 if args.seed is None else args.seed,
            symbols=6 if args.symbols is None else args.symbols,
            trade_date=args.date,
            minutes=args.minutes,
        )
        try:
            events, labels, size = session_generator.write(args.generate, spec)
        except (session_generator.GeneratorError, OSError) as exc:
            print(f"execgw replay: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.generate}: {events} events, {labels} labels, {size:,} bytes")
        return 0
    if args.file is None:
        print(
            "execgw replay: give a session FILE (or 'sample'), or --generate OUT", file=sys.stderr
        )
        return 2
    from gateway.server import market_settings

    try:
        with replay.open_session(args.file) as (source, lines):
            report = replay.replay(
                lines,
                source=source,
                settings=market_settings(settings),
                tolerance=timedelta(seconds=args.tolerance),
                tick_interval=timedelta(seconds=args.tick_seconds),
            )
    except replay.ReplayError as exc:
        print(f"execgw replay: {exc.message}", file=sys.stderr)
        return 2
    passed, verdict = replay.verdict(report, args.min_detection_rate, args.max_false_positives)
    return _verdict(
        args.json,
        lambda: replay.to_json(report),
        lambda: replay.format_report(report),
        passed,
        verdict,
    )


def _replay_route(settings: Settings, args: argparse.Namespace) -> int:
    """Run a simulated day through the router and report; the exit status is the verdict."""
    from gateway import routing_simulation

    if args.file is not None or args.generate is not None:
        print(
            "execgw replay: --route simulates its own day; give no FILE or --generate",
            file=sys.stderr,
        )
        return 2
    try:
        run = routing_simulation.run_day(
            settings,
            orders=args.orders,
            symbols=50 if args.symbols is None else args.symbols,
            seed=args.seed,
            trade_date=args.date,
        )
    except ExecgwError as exc:
        print(f"execgw replay: {exc.message}", file=sys.stderr)
        return 2
    passed, verdict = routing_simulation.verdict(
        run.report, args.min_accuracy, args.min_slippage_reduction
    )
    return _verdict(
        args.json,
        lambda: routing_simulation.to_json(run),
        lambda: routing_simulation.format_report(run),
        passed,
        verdict,
    )


def _verdict(
    as_json: bool,
    document: Callable[[], dict[str, Any]],
    text: Callable[[], str],
    passed: bool,
    reason: str,
) -> int:
    """Print a report with its verdict (JSON or text); the exit status is the verdict."""
    if as_json:
        found = document()
        found["verdict"] = {"passed": passed, "reason": reason}
        print(json.dumps(found, indent=2))
    else:
        print(text())
        print(f"\n  {'PASS' if passed else 'FAIL'}: {reason}")
    return 0 if passed else 1


def _watch(settings: Settings, args: argparse.Namespace) -> int:
    """Print the gateway's market-state changes until Ctrl-C; exit 0 on Ctrl-C or SIGTERM."""
    from gateway.watch import watch

    target = args.target or _grpc_target(settings)
    symbols = sorted({s.strip().upper() for s in args.symbols.split(",") if s.strip()})

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            last = await watch(
                target,
                out=sys.stdout,
                stop=stop,
                symbols=symbols,
                resume_after=args.resume_after,
                reconnect_timeout=args.reconnect_timeout,
            )
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        print(f"execgw watch: stopped; resume with --resume-after {last}", file=sys.stderr)

    _run(run())
    return 0


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be a number >= 0")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text}: must be > 0")
    return value


def _add_replay_command(commands: Any) -> None:
    summary = (
        "replay a recorded or synthetic session (JSON Lines) through the market-state engine and "
        "score the halts, pauses, limit states and circuit breakers it detects against the "
        "session's labels (docs/replay.md)"
    )
    replay = commands.add_parser(
        "replay", help="replay a session and score detection", description=summary
    )
    _add_setting_flags(replay)
    replay.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="session file; 'sample' is the packaged sample session",
    )
    replay.add_argument("--json", action="store_true", help="print the report as JSON")
    replay.add_argument(
        "--tolerance",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="how far a detection may be from its label's time (default 30)",
    )
    replay.add_argument(
        "--min-detection-rate",
        type=_non_negative,
        default=1.0,
        metavar="RATE",
        help="exit 1 when the overall detection rate is below this (default 1.0; a session "
        "without labels passes)",
    )
    replay.add_argument(
        "--max-false-positives",
        type=int,
        default=None,
        metavar="N",
        help="exit 1 when there are more false positives (default: not checked)",
    )
    replay.add_argument(
        "--tick-seconds",
        type=_positive,
        default=1.0,
        metavar="SECONDS",
        help="grid of time-driven rule evaluation in feed time (default 1)",
    )
    generate = replay.add_argument_group("generating a labelled synthetic session")
    generate.add_argument(
        "--generate", type=Path, metavar="OUT", help="write a session to OUT instead of replaying"
    )
    generate.add_argument(
        "--seed",
        type=int,
        default=None,
        help="same seed, same file or day (default 1; --route: the simulator's)",
    )
    generate.add_argument(
        "--symbols",
        type=int,
        default=None,
        metavar="K",
        help="number of symbols, at least 4 (default 6; --route: 50)",
    )
    generate.add_argument(
        "--date",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="trading day (default: one of 2026, chosen by the seed; --route: 2026-11-24)",
    )
    generate.add_argument(
        "--minutes",
        type=int,
        default=60,
        help="minutes of trading from 09:30 ET, at least 50 (default 60)",
    )
    route = replay.add_argument_group(
        "routing a simulated day (--route): orders through the router built from these settings "
        "and venue_profiles_file, fills from the venue simulator, then the hindsight report"
    )
    route.add_argument(
        "--route",
        action="store_true",
        help="simulate a trading day of orders through the router instead of reading a FILE",
    )
    route.add_argument(
        "--orders", type=int, default=20_000, metavar="N", help="orders (default 20000)"
    )
    route.add_argument(
        "--min-accuracy",
        type=_non_negative,
        default=0.95,
        metavar="RATE",
        help="exit 1 when routing accuracy is below this (default 0.95)",
    )
    route.add_argument(
        "--min-slippage-reduction",
        type=float,
        default=10.0,
        metavar="PCT",
        help="exit 1 when slippage is not this many percent lower than the listing-exchange "
        "baseline (default 10)",
    )
    replay.set_defaults(handler=_replay)


def _add_watch_command(commands: Any) -> None:
    summary = (
        "subscribe to a gateway's market state and print one line per change, snapshot first; "
        "reconnects and resumes after the last sequence when the connection drops"
    )
    watch = commands.add_parser(
        "watch", help="print market-state changes live", description=summary
    )
    _add_setting_flags(watch)
    watch.add_argument(
        "--target", metavar="HOST:PORT", help="gateway address (default: grpc_host:grpc_port)"
    )
    watch.add_argument(
        "--symbols", default="", metavar="AAPL,MSFT", help="only these symbols (default: all)"
    )
    watch.add_argument(
        "--resume-after",
        type=int,
        default=0,
        metavar="N",
        help="resume after this sequence (default: a fresh snapshot)",
    )
    watch.add_argument(
        "--reconnect-timeout",
        type=_positive,
        default=60.0,
        metavar="SECONDS",
        help="give up after this long unreachable (default 60)",
    )
    watch.set_defaults(handler=_watch)


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    """Play the demo trading day; exit 1 unless it reconciles clean with a valid audit trail."""
    from gateway import demo

    if settings.log_level == "INFO":
        # The demo's own output tells the story; the gateway's INFO lines would drown it.
        logs.configure("WARNING", settings.log_format)
    spec = demo.DemoSpec(
        seed=args.seed,
        symbols=args.symbols,
        orders=args.orders,
        seconds=args.seconds,
        trade_date=args.date,
        live_view=args.live_view,
    )
    results: list[demo.DemoResult] = []

    async def play() -> None:
        results.append(await demo.run(settings, spec, target=args.target, out=sys.stdout))

    _run(play())
    return 0 if results and results[0].passed else 1


def _add_demo_command(commands: Any) -> None:
    summary = (
        "play a scripted trading day in about a minute: market data with LULD pauses, news halts, "
        "a circuit breaker and Reg SHO triggers, a simulated OMS sending orders through the router "
        "to simulated venues, a live view of halts, then P&L, routing report, reconciliation and "
        "audit (in-process gateway on a temporary embedded database, or --target)"
    )
    demo = commands.add_parser("demo", help="play a scripted trading day", description=summary)
    _add_setting_flags(demo)
    demo.add_argument(
        "--target",
        metavar="HOST:PORT",
        help="a running gateway with market_clock=feed and an empty journal (default: start one)",
    )
    demo.add_argument("--orders", type=int, default=3000, help="orders to submit (default 3000)")
    demo.add_argument("--symbols", type=int, default=36, help="symbols, at least 4 (default 36)")
    demo.add_argument(
        "--seconds",
        type=_non_negative,
        default=45.0,
        help="wall time the 50-minute session is paced over; 0 = as fast as possible (default 45)",
    )
    demo.add_argument("--seed", type=int, default=7, help="same seed, same market (default 7)")
    demo.add_argument(
        "--date",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="trade date (default: the last trading day before today)",
    )
    demo.add_argument(
        "--live-view",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="print halt, pause, limit-state, auction and breaker changes as they happen",
    )
    demo.set_defaults(handler=_demo)


COMMANDS: dict[str, tuple[str, Callable[[Settings], Coroutine[Any, Any, None]]]] = {
    "serve": ("run the gateway until SIGTERM or SIGINT", _serve),
    "migrate": ("apply pending database migrations and exit", _migrate),
    "health": ("exit 0 if the gateway at grpc_host:grpc_port reports SERVING", _health),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="execgw",
        description="Halt-safe execution gateway for US equities.",
    )
    parser.add_argument("--version", action="version", version=f"execgw {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, _) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        _add_setting_flags(sub)
    _add_report_commands(commands)
    add_journal_commands(commands, _add_setting_flags)
    _add_replay_command(commands)
    _add_watch_command(commands)
    _add_demo_command(commands)
    add_client_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ExecgwError as exc:
        print(f"execgw: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    if settings.database_url is None and args.command not in (
        "health",
        "report",
        "reconcile",
        "audit",
        "replay",
        "watch",
        "demo",
        "issue-token",
    ):
        print(f"execgw: embedded PostgreSQL data in {settings.data_dir}", file=sys.stderr)
    try:
        handler = getattr(args, "handler", None)
        if handler is not None:  # commands whose exit status is their answer (replay, watch)
            status: int = handler(settings, args)
            return status
        run = getattr(args, "run", None)
        _run(run(settings, args) if run else COMMANDS[args.command][1](settings))
    except ExecgwError as exc:
        log.error("%s", exc.message, extra={"reason": exc.reason})
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
