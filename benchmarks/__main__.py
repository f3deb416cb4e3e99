"""One benchmark command: the gateway against its baselines, every figure in one table.

    python -m benchmarks [--quick] [--json FILE] [--update-readme] [--only SECTION,...]
    python -m benchmarks --report-from FILE [--update-readme]

In one run, on one PostgreSQL (EXECGW_DATABASE_URL, or an embedded one in a temporary folder):

- unary: the gateway and the empty-handler baseline (``empty_server.py``, answering with the
  gateway's own answers) pinned to core 0, driven by the same h2load client on core 1 in
  alternating rounds, for CheckOrder, SubmitOrder, RouteOrder and RecordFill (``grpc_load.py``);
  grpc-status checked with a real client and the gateway's error counter read after each round;
  then the first-time path of SubmitOrder and RecordFill with distinct requests
  (``unique_load.py``); the gateway's peak RSS; and, when the gateway has a
  ``--tracing-exporter`` setting, CheckOrder with tracing at 1% sampling against tracing off;
- stream: RecordFills over gRPC against the in-process writer ceiling (``bench_journal_grpc.py
  stream``, which runs ``bench_journal_writer.py``);
- fanout: SubscribeMarketState halt fan-out at 1, 100 and 1,000 subscribers (``bench_fanout.py``);
- hot_paths: the in-process microbenchmarks (``bench_hot_paths.py``).

Prints progress, then the report (Markdown tables, median [min-max] over rounds); every figure
goes into a JSON file (``--json FILE``, by default ``benchmarks/results/<time>.json``),
``--update-readme`` puts the report and the machine description into
``benchmarks/README.md``. About 11 minutes, ``--quick`` about 4. Requires h2load (Debian package
nghttp2-client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"  # one JSON file per run (not kept in git)
sys.path.insert(0, str(ROOT))

from benchmarks import grpc_load, report  # noqa: E402  # after the path is set
from benchmarks.bench_fanout import BUSY_CORES, GOALS_MS  # noqa: E402
from benchmarks.requests import REQUESTS  # noqa: E402

SECTIONS = ("unary", "stream", "fanout", "hot_paths")
TRACING_FLAGS = ("--tracing-exporter", "console", "--tracing-sample-ratio", "0.01")


@dataclass(frozen=True)
class Plan:
    """How long each part runs."""

    rounds: int = 4
    seconds: float = 4.0
    clients: int = 4
    streams: int = 16
    prime_symbols: int = 3_000
    unique_rounds: int = 2
    unique_seconds: float = 3.0
    unique_concurrency: int = 64
    stream_rounds: int = 3
    stream_seconds: float = 4.0
    fanout_subscribers: str = "1,100,1000"
    fanout_probes: int = 100
    hot_iterations: int = 50_000
    hot_symbols: int = 3_000
    # Tracing costs a few percent against run-to-run noise of about ten: more, shorter rounds.
    tracing_rounds: int = 10
    tracing_seconds: float = 3.0
    # Side by side (both gateways on the core at once): a paired comparison, steadier per round.
    tracing_pair_rounds: int = 8


FULL = Plan()
QUICK = Plan(
    rounds=2,
    seconds=2.0,
    prime_symbols=1_000,
    unique_rounds=1,
    unique_seconds=1.5,
    stream_rounds=1,
    stream_seconds=2.0,
    fanout_probes=20,
    hot_iterations=10_000,
    hot_symbols=1_000,
    tracing_rounds=2,
    tracing_seconds=2.0,
    tracing_pair_rounds=2,
)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def tracing_available() -> bool:
    """Whether this gateway has the tracing settings (they may land after this benchmark)."""
    output = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout
    return "--tracing-exporter" in output


def _encoded(answer: grpc_load.Answer) -> bytes:
    response = answer.under_load
    return response.SerializeToString() if response is not None else b""


def run_unary(url: str, folder: Path, plan: Plan, results: dict[str, Any]) -> None:
    """The h2load table, the first-time path, peak RSS and the tracing comparison."""
    load = grpc_load.Load(plan.seconds, plan.clients, plan.streams)
    specs = {rpc: REQUESTS[rpc] for rpc in report.UNARY_RPCS}
    servers: list[grpc_load.Server] = []
    unary: dict[str, Any] = {}
    notes: list[str] = results.setdefault("notes", [])
    try:
        progress(f"unary: starting the gateway, priming {plan.prime_symbols:,} symbols")
        gateway = grpc_load.start_gateway(url, folder, feed_clock=True)
        servers.append(gateway)
        grpc_load.prime([gateway], list(specs.values()), plan.prime_symbols)
        answers = {rpc: grpc_load.check(gateway, spec) for rpc, spec in specs.items()}
        # The baseline answers each RPC with what the gateway answers under load.
        baseline = grpc_load.start_baseline(
            {spec.method: _encoded(answers[rpc]) for rpc, spec in specs.items()}, folder
        )
        servers.append(baseline)
        base_answers = {rpc: grpc_load.check(baseline, spec) for rpc, spec in specs.items()}
        for rpc, spec in specs.items():
            progress(f"unary: {rpc}, {plan.rounds} rounds x 2 targets")
            rounds = grpc_load.alternate([baseline, gateway], spec, plan.rounds, load, folder)
            answer = answers[rpc]
            path = grpc_load.describe(answer.under_load)
            if spec.duplicate_after_first:
                first = grpc_load.describe(answer.response)
                path = f"{path} (first request: {first})"
            if "error answer" in path:
                notes.append(f"{rpc}: the gateway answered {path}")
            unary[rpc] = {
                "method": spec.method,
                "status": {
                    "gateway": {"first": answer.first, "repeat": answer.repeat},
                    "baseline": {
                        "first": base_answers[rpc].first,
                        "repeat": base_answers[rpc].repeat,
                    },
                },
                "path": path,
                "duplicate_after_first": spec.duplicate_after_first,
                "rounds": {name: [asdict(r) for r in rs] for name, rs in rounds.items()},
                "ratios": grpc_load.ratios(rounds),
            }
            results["unary"] = unary
            if rpc == "CheckOrder":
                results["tracing"] = run_tracing(url, folder, plan, gateway, servers)
        results["first_time"] = first_time(gateway, baseline, plan)
        results["memory"] = {
            "gateway_peak_rss_mb": gateway.peak_rss_mb(),
            "baseline_peak_rss_mb": baseline.peak_rss_mb(),
        }
        for server in servers:
            lines = server.log_errors()
            if lines:
                notes.append(
                    f"{server.name} log: {len(lines)} error lines, e.g. {lines[0][:160]} "
                    f"({server.log})"
                )
    finally:
        for server in servers:
            server.stop()


def run_tracing(
    url: str,
    folder: Path,
    plan: Plan,
    gateway: grpc_load.Server,
    servers: list[grpc_load.Server],
) -> dict[str, Any]:
    """CheckOrder on fresh gateways started and primed together, one with 1% sampling to the
    console exporter (stdout discarded), two without.

    One after the other: the traced gateway and an untraced one in alternating rounds, with the
    first gateway as an A/A control (two untraced gateways differ by this much on this machine).
    Side by side: the traced and the untraced gateway driven at once, then the two untraced
    ones (the A/A control of that method), by CPU per request (``grpc_load.side_by_side``)."""
    if not tracing_available():
        progress("tracing: the gateway has no --tracing-exporter setting; skipped")
        return {"available": False}
    rounds = plan.tracing_rounds
    progress(f"tracing: CheckOrder, 1% sampling vs off vs the A/A control, {rounds} rounds")
    spec = REQUESTS["CheckOrder"]
    started = []
    try:
        for name, flags in (
            ("gateway-untraced", ()),
            ("gateway-traced", TRACING_FLAGS),
            ("gateway-untraced-twin", ()),
        ):
            started.append(grpc_load.start_gateway(url, folder, True, flags, name=name))
            servers.append(started[-1])
        control, traced, twin = started
        grpc_load.prime(started, [spec], plan.prime_symbols)
        answer = grpc_load.check(traced, spec)
        load = grpc_load.Load(plan.tracing_seconds, plan.clients, plan.streams, half_load=False)
        measured = grpc_load.alternate([gateway, control, traced], spec, rounds, load, folder)
        progress(
            f"tracing: side by side, traced with untraced then A/A, "
            f"{plan.tracing_pair_rounds} rounds"
        )
        (off, on), (first, second) = grpc_load.side_by_side(
            [(control, traced), (control, twin)], spec, plan.tracing_pair_rounds, load, folder
        )
    finally:
        for server in started:
            server.stop()
            servers.remove(server)
    return {
        "available": True,
        "flags": list(TRACING_FLAGS),
        "status": {"first": answer.first, "repeat": answer.repeat},
        "rounds": {
            "off": [asdict(r) for r in measured[control.name]],
            "on": [asdict(r) for r in measured[traced.name]],
            "control": [asdict(r) for r in measured[gateway.name]],
        },
        "ratios": grpc_load.ratios(measured, traced.name, control.name),
        "control_ratios": grpc_load.ratios(measured, control.name, gateway.name),
        # The A/A control: the untraced gateway (first) and its untraced twin (second).
        "side_by_side": {"off": off, "on": on, "control_first": first, "control_twin": second},
    }


def first_time(gateway: grpc_load.Server, baseline: grpc_load.Server, plan: Plan) -> dict[str, Any]:
    """Distinct requests against one repeated request, the same Python client for both."""
    found: dict[str, Any] = {}
    for rpc in report.UNARY_RPCS:
        if REQUESTS[rpc].unique is None:
            continue
        progress(f"first-time path: {rpc}, {plan.unique_rounds} rounds x 3 runs (Python client)")
        runs: dict[str, list[dict[str, Any]]] = {"unique": [], "repeat": [], "baseline": []}
        for index in range(plan.unique_rounds):
            seconds, concurrency = plan.unique_seconds, plan.unique_concurrency
            runs["unique"].append(
                grpc_load.python_client(
                    gateway, rpc, seconds, concurrency, False, first=index * 10_000_000
                )
            )
            runs["repeat"].append(grpc_load.python_client(gateway, rpc, seconds, concurrency, True))
            runs["baseline"].append(
                grpc_load.python_client(baseline, rpc, seconds, concurrency, True)
            )
        found[rpc] = runs
    return found


def _numbers(line: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", line)]


def parse_journal_stream(output: str) -> dict[str, Any]:
    """The figures ``bench_journal_grpc.py stream`` prints (it has no JSON option, and its
    wording changes): the gateway's durable acknowledgements per second, the stream errors, and
    the writer ceiling from the ``bench_journal_writer.py`` output it includes."""
    lines = output.splitlines()

    def after(line: str, word: str) -> list[float]:
        return _numbers(line.split(word, 1)[1])

    acks = next(
        (
            line
            for line in lines
            if "fills/s" in line
            and ("acknowledged" in line or line.strip().startswith("gateway durable"))
        ),
        None,
    )
    # bench_journal_writer.py's own line: "durable fills/s  39,000  [38,000-40,000]".
    ceiling = [line for line in lines if line.strip().startswith("durable fills/s")]
    if acks is None or not ceiling:
        return {"error": "could not find its figures in the output", "raw": output}
    errors_line = next((line for line in lines if "stream errors" in line), "")
    errors = after(errors_line, "errors") if errors_line else []
    empty = next((line for line in lines if "empty-handler echo" in line), None)
    found: dict[str, Any] = {
        # median, min, max as printed: the report's spread of these is median [min-max].
        "fills_per_s": after(acks, "fills/s")[:3],
        "errors": int(errors[-1]) if errors else 0,
        "writer_fills_per_s": after(ceiling[-1], "fills/s")[:3],
        "raw": output,
    }
    if empty is not None:
        found["empty_handler_per_s"] = after(empty, "/s")[:3]
    batched = next((line for line in lines if "gateway batched fills/s" in line), None)
    if batched is not None:
        found["batched_fills_per_s"] = after(batched, "fills/s")[:3]
    return found


def run_stream(url: str, plan: Plan) -> dict[str, Any]:
    progress(f"stream: RecordFills, {plan.stream_rounds} rounds, then the writer ceiling")
    command = [
        *(sys.executable, str(ROOT / "benchmarks" / "bench_journal_grpc.py"), "stream"),
        *("--seconds", f"{plan.stream_seconds:g}", "--rounds", str(plan.stream_rounds)),
    ]
    env = {**os.environ, "EXECGW_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    found = parse_journal_stream(done.stdout)
    found["setup"] = (
        f"bench_journal_grpc.py stream, {plan.stream_rounds} rounds x {plan.stream_seconds:g} s; "
        "gateway on core 0, client on core 1; writer on core 0, same database"
    )
    return found


def fanout_summary(phases: list[dict[str, Any]], probes: int) -> dict[str, Any]:
    """p50/p99/max by subscriber count: the gateway, the floor server, the gateway with a stalled
    subscriber (phases as ``bench_fanout.py --json`` writes them)."""
    found: dict[str, dict[str, Any]] = {}
    for phase in phases:
        n = str(phase["subscribers"])
        kind = "stalled" if phase.get("stalled") else phase["target"]
        latencies = sorted(phase.get("latencies_ms") or [])
        found.setdefault(n, {})[kind] = {
            "p50_ms": grpc_load.pct(latencies, 0.5),
            "p99_ms": grpc_load.pct(latencies, 0.99),
            "max_ms": latencies[-1] if latencies else float("nan"),
            "delivered": f"{len(latencies):,}/{int(n) * probes:,}",
            "others_cores": phase.get("others_cores"),
            "rss_mb": (phase.get("server") or {}).get("rss_mb"),
        }
    return found


def run_fanout(url: str, plan: Plan, folder: Path) -> dict[str, Any]:
    progress(f"fan-out: {plan.fanout_subscribers} subscribers, {plan.fanout_probes} probes")
    out = folder / "fanout.json"
    command = [
        *(sys.executable, str(ROOT / "benchmarks" / "bench_fanout.py")),
        *("--subscribers", plan.fanout_subscribers, "--probes", str(plan.fanout_probes)),
        *("--json", str(out)),
    ]
    env = {**os.environ, "EXECGW_DATABASE_URL": url}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0 or not out.exists():
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    phases = json.loads(out.read_text())
    lines = done.stdout.splitlines()
    notes = [line.strip()[:200] for line in lines if "NOTE" in line or "ERROR" in line]
    busy = sum("BUSY MACHINE" in line for line in lines)
    if busy:
        notes.append(
            f"{busy} of {len(phases)} phases ran while other processes used more than "
            f"{BUSY_CORES} cores (BUSY MACHINE): their latencies say little"
        )
    summary = fanout_summary(phases, plan.fanout_probes)
    for n, goal in GOALS_MS.items():
        for kind, label in (("gateway", ""), ("stalled", " with a stalled subscriber")):
            p99 = summary.get(str(n), {}).get(kind, {}).get("p99_ms")
            if p99 is not None and p99 > goal:
                notes.append(
                    f"p99 {p99:.2f} ms at {n:,} subscribers{label} misses the goal of {goal:g} ms"
                )
    return {
        "probes": plan.fanout_probes,
        "phases": summary,
        "notes": notes,
        "output": done.stdout,
    }


def run_hot_paths(plan: Plan, folder: Path) -> dict[str, Any]:
    progress(f"hot paths: {plan.hot_iterations:,} calls per case")
    out = folder / "hot_paths.json"
    command = [
        *("taskset", "-c", "0", sys.executable, str(ROOT / "benchmarks" / "bench_hot_paths.py")),
        *("--iterations", str(plan.hot_iterations), "--symbols", str(plan.hot_symbols)),
        *("--json", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    return {
        "setup": f"{plan.hot_iterations:,} calls per case, {plan.hot_symbols:,} symbols, core 0",
        "cases": json.loads(out.read_text()),
    }


def section_database(url: str, section: str) -> str:
    """A fresh database for ``section`` on the embedded server, so no section starts a gateway
    on the journal another one filled (a gateway replays the journal at start: its memory and
    start-up time grow with it). On a server of the user's (EXECGW_DATABASE_URL) the sections
    share its database: this command creates no databases there."""
    if os.environ.get("EXECGW_DATABASE_URL"):
        return url
    import asyncpg

    name = f"execgw_bench_{section}"

    async def create() -> None:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def postgres_version(url: str) -> str:
    import asyncpg

    async def ask() -> str:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            return str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()

    return asyncio.run(ask())


def without_nan(value: Any) -> Any:
    """JSON has no NaN: None instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nan(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="short rounds (about 4 minutes)")
    parser.add_argument(
        "--json",
        type=Path,
        help="write every figure to this file (default: benchmarks/results/ with the run's time)",
    )
    parser.add_argument(
        "--update-readme", action="store_true", help="write the report into benchmarks/README.md"
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"sections to run ({','.join(SECTIONS)})"
    )
    parser.add_argument(
        "--report-from",
        type=Path,
        metavar="JSON",
        help="measure nothing: print (and with --update-readme, write) the report of a --json file",
    )
    parser.add_argument("--rounds", type=int, help="unary rounds (overrides the plan)")
    parser.add_argument("--seconds", type=float, help="seconds per unary run (overrides)")
    args = parser.parse_args(argv)
    if args.report_from:
        saved = json.loads(args.report_from.read_text())
        print(report.format_report(saved))
        if args.update_readme:
            report.update_readme(saved)
            print(f"report written to {report.README}")
        return
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    if "unary" in sections and shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install nghttp2-client")
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = replace(plan, rounds=args.rounds)
    if args.seconds:
        plan = replace(plan, seconds=args.seconds)

    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine(),
        "settings": {"quick": args.quick, "sections": sections, **asdict(plan)},
        "notes": [],
    }
    folder = Path(tempfile.mkdtemp(prefix="execgw-benchmarks-"))
    with grpc_load.database(folder) as url:
        results["machine"]["postgresql"] = postgres_version(url)
        if "unary" in sections:
            run_unary(section_database(url, "unary"), folder, plan, results)
        if "stream" in sections:
            results["stream"] = run_stream(section_database(url, "stream"), plan)
        if "fanout" in sections:
            results["fanout"] = run_fanout(section_database(url, "fanout"), plan, folder)
            results["notes"].extend(f"fan-out: {n}" for n in results["fanout"].get("notes", []))
            sizes = [
                figures["rss_mb"]
                for phase in results["fanout"].get("phases", {}).values()
                for figures in phase.values()
                if figures.get("rss_mb") is not None
            ]
            if sizes:
                results.setdefault("memory", {})["fanout_gateway_rss_mb"] = max(sizes)
    if "hot_paths" in sections:
        results["hot_paths"] = run_hot_paths(plan, folder)
    results["elapsed_s"] = time.monotonic() - started

    print()
    print(report.format_report(results))
    written = args.json or RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    written.parent.mkdir(parents=True, exist_ok=True)
    written.write_text(json.dumps(without_nan(results), indent=1))
    print(f"figures written to {written}")
    if args.update_readme:
        report.update_readme(results)
        print(f"report written to {report.README}")


if __name__ == "__main__":
    main()
