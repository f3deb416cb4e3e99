"""The benchmark command's report: Markdown tables from its results, the machine description, and
the "latest figures" section of ``benchmarks/README.md``.

Pure functions of the results dictionary that ``python -m benchmarks`` builds and writes as JSON,
so the formatting is tested on synthetic figures (``tests/test_benchmarks.py``).
"""

from __future__ import annotations

import math
import os
import platform
import re
import statistics
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent / "README.md"
BEGIN = "<!-- latest-results:begin (written by python -m benchmarks --update-readme) -->"
END = "<!-- latest-results:end -->"
UNARY_RPCS = ("CheckOrder", "SubmitOrder", "RouteOrder", "RecordFill")
TRACING_GOAL = 0.95


def spread(values: Sequence[float | None], fmt: str = ",.0f") -> str:
    """``median [min-max]`` of the values that are numbers; ``-`` when there are none."""
    numbers = [v for v in values if v is not None and not math.isnan(v)]
    if not numbers:
        return "-"
    median = statistics.median(numbers)
    if len(numbers) == 1:
        return f"{median:{fmt}}"
    return f"{median:{fmt}} [{min(numbers):{fmt}}-{max(numbers):{fmt}}]"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, columns padded so it also reads as plain text."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]
    )


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _column(rounds: Sequence[dict[str, Any]], key: str) -> list[float | None]:
    """The values of ``key``, rounds that got no answer at all left out (they are flagged)."""
    return [r.get(key) for r in rounds if not r.get("failed")]


def cpu_ratios(
    under: Sequence[dict[str, Any]], over: Sequence[dict[str, Any]]
) -> list[float | None]:
    """Per round, ``under``'s CPU per request over ``over``'s: the throughput ratio over/under
    that the CPU cost implies when both are CPU-bound on one core."""
    found: list[float | None] = []
    for u, o in zip(under, over, strict=False):
        a, b = u.get("cpu_us_per_request"), o.get("cpu_us_per_request")
        found.append(a / b if a and b else None)
    return found


def unary_section(unary: dict[str, Any], settings: dict[str, Any]) -> tuple[str, list[str]]:
    """The unary table and the flags it raised (non-OK statuses, errors under load)."""
    flags: list[str] = []
    rows = []
    for rpc in [r for r in UNARY_RPCS if r in unary] + [r for r in unary if r not in UNARY_RPCS]:
        entry = unary[rpc]
        ratios = entry.get("ratios", [])
        by_cpu = cpu_ratios(entry["rounds"].get("baseline", []), entry["rounds"].get("gateway", []))
        for target in ("baseline", "gateway"):
            rounds = entry["rounds"].get(target, [])
            status = entry["status"][target]
            errors = sum(r.get("errors") or 0 for r in rounds)
            failed = sum(bool(r.get("failed")) for r in rounds)
            no_half = sum(
                not r.get("failed") and _missing(r.get("half_load_p50_ms")) for r in rounds
            )
            if no_half:
                flags.append(
                    f"{rpc} {target}: the half-load run of {no_half} round(s) got no answer "
                    "(a stalled server or connection); left out of the half-load medians"
                )
            if failed:
                flags.append(
                    f"{rpc} {target}: {failed} of {len(rounds)} rounds got no answer at all "
                    "(a stalled server or connection); left out of the medians"
                )
            cell = (
                status["first"]
                if status["first"] == status["repeat"]
                else (f"{status['first']} / repeat {status['repeat']}")
            )
            if status["first"] != "OK" or status["repeat"] != "OK" or errors:
                flags.append(
                    f"{rpc} {target}: grpc-status first {status['first']}, repeated "
                    f"{status['repeat']}, {errors:,} error answers under load"
                )
                cell = f"**{cell}**" + (f", {errors:,} errors" if errors else "")
            rows.append(
                [
                    rpc if target == "baseline" else "",
                    target,
                    cell,
                    spread(_column(rounds, "rps")),
                    spread(_column(rounds, "p50_ms"), ".2f"),
                    spread(_column(rounds, "p99_ms"), ".2f"),
                    spread(_column(rounds, "p999_ms"), ".2f"),
                    spread(_column(rounds, "half_load_p50_ms"), ".2f"),
                    spread(_column(rounds, "half_load_p99_ms"), ".2f"),
                    spread(_column(rounds, "half_load_p999_ms"), ".2f"),
                    spread(_column(rounds, "cpu_us_per_request")),
                    spread(ratios, ".2f") if target == "gateway" else "",
                    spread(by_cpu, ".2f") if target == "gateway" else "",
                ]
            )
    header = [
        "RPC",
        "target",
        "grpc-status",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "half-load p50",
        "half-load p99",
        "half-load p99.9",
        "CPU us/req",
        "gateway/baseline req/s",
        "baseline/gateway CPU us/req",
    ]
    intro = (
        f"Unary RPCs: h2load -c {settings.get('clients')} -m {settings.get('streams')}, "
        f"{settings.get('rounds')} rounds x {settings.get('seconds')} s per target, alternating; "
        "servers pinned to core 0, h2load to core 1; half load = 1 connection with 1 request in "
        "flight, paced at half the round's saturated rate; latencies in ms; median [min-max] "
        "over rounds. "
        "SubmitOrder and RecordFill: h2load repeats one body, so after the first request these "
        "rows measure the idempotent duplicate answer (first-time path below). The last "
        "column is the throughput ratio the servers' CPU per request implies: on a shared "
        "machine it is the steadier of the two."
    )
    paths = [
        f"- {rpc}: gateway answered {unary[rpc]['path']}" for rpc in unary if unary[rpc].get("path")
    ]
    return "\n".join([intro, "", table(header, rows), "", *paths]), flags


def first_time_section(first_time: dict[str, Any]) -> tuple[str, list[str]]:
    """The first-time path table; runs that answered nothing in their window are left out of
    it and flagged (a stalled client or server: their figures would be zeros)."""
    flags: list[str] = []
    if not first_time:
        return "", flags
    rows = []
    for rpc, runs in first_time.items():
        for label, key in (
            ("gateway, distinct requests (first-time path)", "unique"),
            ("gateway, one repeated request (duplicate path)", "repeat"),
            ("baseline, one repeated request (client ceiling)", "baseline"),
        ):
            results = [r for r in runs.get(key, []) if r.get("requests")]
            stalled = len(runs.get(key, [])) - len(results)
            if stalled:
                flags.append(
                    f"first-time path, {rpc} {label}: {stalled} run(s) answered no request in "
                    "their window; left out of the table"
                )
            if not results:
                continue
            errors = sum(sum(r.get("errors", {}).values()) for r in results)
            rows.append(
                [
                    rpc,
                    label,
                    spread(_column(results, "rps")),
                    spread(_column(results, "p50_ms"), ".2f"),
                    spread(_column(results, "p99_ms"), ".2f"),
                    spread(_column(results, "p999_ms"), ".2f"),
                    spread(_column(results, "cpu_us_per_request")),
                    f"**{errors:,}**" if errors else "0",
                ]
            )
    intro = (
        "First-time path: a Python grpc.aio client (core 1) with a distinct client_order_id / "
        "exec_id per call, against the same client repeating one request. The client is the "
        "bottleneck near the baseline's rate: compare the gateway's two rows (server CPU per "
        "request is the client-independent figure), not with the h2load table."
    )
    header = ["RPC", "path", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU us/req", "errors"]
    return "\n".join([intro, "", table(header, rows)]), flags


def stream_section(stream: dict[str, Any]) -> str:
    if not stream:
        return ""
    if stream.get("error"):
        return f"RecordFills stream: not measured ({stream['error']})"
    rates, ceiling = stream.get("fills_per_s", []), stream.get("writer_fills_per_s", [])
    ratio = "-"
    if rates and ceiling:
        ratio = f"{statistics.median(rates) / statistics.median(ceiling):.2f}"
    rows = [
        [
            "RecordFills over gRPC (durable acks/s)",
            spread(rates),
            spread(stream.get("empty_handler_per_s", [])),
            spread(ceiling),
            ratio,
            f"{stream.get('errors', 0):,}",
        ]
    ]
    batched = stream.get("batched_fills_per_s", [])
    if batched:
        batch_ratio = "-"
        if ceiling:
            batch_ratio = f"{statistics.median(batched) / statistics.median(ceiling):.2f}"
        rows.append(
            [
                "RecordFillBatches over gRPC (durable acks/s)",
                spread(batched),
                "-",
                spread(ceiling),
                batch_ratio,
                "-",
            ]
        )
    header = [
        "stream",
        "fills/s",
        "empty-handler echo msgs/s",
        "in-process writer ceiling fills/s",
        "gRPC/ceiling",
        "stream errors",
    ]
    intro = f"Journal stream ({stream.get('setup', 'bench_journal_grpc.py stream')}):"
    return "\n".join([intro, "", table(header, rows)])


def fanout_section(fanout: dict[str, Any]) -> str:
    if not fanout:
        return ""
    if fanout.get("error"):
        return f"SubscribeMarketState fan-out: not measured ({fanout['error']})"
    rows = []
    for n, entry in sorted(fanout.get("phases", {}).items(), key=lambda kv: int(kv[0])):
        rows.append(
            [
                f"{int(n):,}",
                _ms(entry.get("gateway", {}).get("p50_ms")),
                _ms(entry.get("gateway", {}).get("p99_ms")),
                _ms(entry.get("gateway", {}).get("max_ms")),
                _ms(entry.get("floor", {}).get("p99_ms")),
                _ms(entry.get("stalled", {}).get("p99_ms")),
                entry.get("gateway", {}).get("delivered", "-"),
                _cores(entry.get("gateway", {}).get("others_cores")),
            ]
        )
    header = [
        "subscribers",
        "gateway p50 ms",
        "gateway p99 ms",
        "gateway max ms",
        "floor p99 ms",
        "gateway + stalled subscriber p99 ms",
        "delivered/expected",
        "other load, cores",
    ]
    intro = (
        f"SubscribeMarketState fan-out (bench_fanout.py, {fanout.get('probes')} halt/resume "
        "probes per phase; latency from the feed's send to each subscriber's receive; floor = "
        "a minimal grpc.aio fan-out server; other load = CPU other processes used meanwhile "
        "in the gateway phase):"
    )
    return "\n".join([intro, "", table(header, rows)])


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def memory_section(memory: dict[str, Any]) -> str:
    if not memory:
        return ""
    rows = [
        [label, f"{memory[key]:,.0f}"]
        for key, label in (
            ("gateway_peak_rss_mb", "gateway peak RSS (VmHWM) after every unary load"),
            ("baseline_peak_rss_mb", "baseline peak RSS (VmHWM)"),
            (
                "fanout_gateway_rss_mb",
                "fan-out gateway RSS, largest after a phase (up to 1,000 subscribers)",
            ),
        )
        if memory.get(key) is not None
    ]
    return table(["memory", "MB"], rows)


def tracing_section(tracing: dict[str, Any]) -> str:
    if not tracing:
        return ""
    if not tracing.get("available"):
        return (
            "Tracing: not measured (`python -m gateway serve --help` lists no "
            "`--tracing-exporter`)."
        )
    off, on = tracing["rounds"].get("off", []), tracing["rounds"].get("on", [])
    ratios = tracing.get("ratios", [])
    by_cpu = cpu_ratios(off, on)
    rows = [
        [
            "CheckOrder",
            spread(_column(off, "rps")),
            spread(_column(on, "rps")),
            spread(ratios, ".3f"),
            spread(_column(off, "cpu_us_per_request")),
            spread(_column(on, "cpu_us_per_request")),
            spread(by_cpu, ".3f"),
            spread(tracing.get("control_ratios", []), ".3f"),
            f">= {TRACING_GOAL}: req/s {_tracing_verdict(ratios)}, CPU {_tracing_verdict(by_cpu)}",
        ]
    ]
    header = [
        "RPC",
        "off req/s",
        "1% sampled req/s",
        "on/off req/s",
        "off CPU us/req",
        "1% CPU us/req",
        "off/on CPU us/req",
        "A/A control req/s",
        "goal",
    ]
    intro = (
        "Tracing overhead: fresh gateways started and primed together, one with `"
        + " ".join(tracing.get("flags", ["--tracing-exporter", "console"]))
        + "` (console output discarded), the others without. One after the other: the traced "
        f"and an untraced gateway in {len(off)} alternating rounds with the first gateway; h2load "
        "as above, saturation only. A/A control: the untraced fresh gateway over the first one, "
        "both untraced: how far apart two identical servers measure here."
    )
    parts = [intro, "", table(header, rows)]
    side = tracing.get("side_by_side")
    if side:
        parts += ["", _side_by_side(side)]
    return "\n".join(parts)


def _tracing_verdict(values: Sequence[float | None]) -> str:
    numbers = [v for v in values if v is not None and not math.isnan(v)]
    if not numbers:
        return "-"
    return "met" if statistics.median(numbers) >= TRACING_GOAL else "MISSED"


def _side_by_side(side: dict[str, Any]) -> str:
    """The paired comparison: both gateways on the core at once, by CPU per request."""
    off, on = side.get("off", []), side.get("on", [])
    implied = cpu_ratios(off, on)
    control = cpu_ratios(side.get("control_first", []), side.get("control_twin", []))
    rows = [
        [
            "CheckOrder",
            spread(_column(off, "cpu_us_per_request")),
            spread(_column(on, "cpu_us_per_request")),
            spread(implied, ".3f"),
            spread(control, ".3f"),
            f">= {TRACING_GOAL}: {_tracing_verdict(implied)}",
        ]
    ]
    header = [
        "RPC",
        "off CPU us/req",
        "1% CPU us/req",
        "on/off throughput (off/on CPU us/req)",
        "A/A control",
        "goal",
    ]
    intro = (
        f"Side by side ({len(off)} rounds): the traced and the untraced gateway driven at "
        "once, both on core 0, each by its own h2load; then the two untraced ones the same way "
        "(the A/A control of this method). Both meet the same interference at the same moment, "
        "so the ratio of their CPU per request (the throughput ratio it implies) moves less with "
        "the machine's load than figures measured one after the other; read it against its A/A "
        "control. Sharing the core, each costs more per request than alone."
    )
    return "\n".join([intro, "", table(header, rows)])


def hot_paths_section(hot: dict[str, Any]) -> str:
    if not hot:
        return ""
    if hot.get("error"):
        return f"Hot paths: not measured ({hot['error']})"
    from benchmarks.bench_hot_paths import LABELS

    rows = [
        [
            LABELS.get(name, name),
            f"{row['p50_us']:.2f}",
            f"{row['p99_us']:.2f}",
            f"{row['p999_us']:.2f}",
            f"{row['mean_us']:.2f}",
        ]
        for name, row in hot.get("cases", {}).items()
    ]
    intro = f"Hot paths in-process (bench_hot_paths.py, {hot.get('setup', '')}):"
    return "\n".join(
        [intro, "", table(["operation", "p50 us", "p99 us", "p99.9 us", "mean us"], rows)]
    )


def tidy(note: str) -> str:
    """A note quoting a JSON log line (cut short by its writer): its message only."""
    found = re.search(r'\{"time": .*?"level": "(\w+)".*?"message": "([^"]*)', note)
    if found is None:
        return note
    message = found.group(2).split(" (/", 1)[0].strip()  # the writer appended its log's path
    return note[: found.start()] + f"{found.group(1)} {message}"


def format_report(results: dict[str, Any]) -> str:
    """Every section that has figures, then the flags (non-OK answers) if any."""
    settings = results.get("settings", {})
    parts = [
        f"execgw benchmarks ({'quick' if settings.get('quick') else 'full'} run, "
        f"{results.get('elapsed_s', 0):.0f} s)"
    ]
    flags: list[str] = []
    if results.get("unary"):
        text, flags = unary_section(results["unary"], settings)
        parts.append(text)
    if results.get("first_time"):
        text, stalled = first_time_section(results["first_time"])
        parts.append(text)
        flags.extend(stalled)
    for section, render in (
        ("stream", stream_section),
        ("fanout", fanout_section),
        ("memory", memory_section),
        ("tracing", tracing_section),
        ("hot_paths", hot_paths_section),
    ):
        text = render(results.get(section) or {})
        if text:
            parts.append(text)
    flags.extend(tidy(note) for note in results.get("notes", []))
    if flags:
        parts.append("FLAGS:\n" + "\n".join(f"- {flag}" for flag in flags))
    return "\n\n".join(parts) + "\n"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    try:
        h2load = subprocess.run(
            ["h2load", "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        h2load = ""
    return {
        "nproc": int(nproc) if nproc.isdigit() else os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": version("grpcio"),
        "uvloop": version("uvloop"),
        "protobuf": version("protobuf"),
        "asyncpg": version("asyncpg"),
        "h2load": h2load.strip().splitlines()[0] if h2load.strip() else "not found",
    }


def format_machine(description: dict[str, Any]) -> str:
    d = description
    return (
        f"{d.get('nproc')} cores ({d.get('cpu_model')}), {d.get('memory_gb')} GB, "
        f"Linux {d.get('kernel')}; Python {d.get('python')}, grpcio {d.get('grpcio')}, "
        f"uvloop {d.get('uvloop')}, protobuf {d.get('protobuf')}, asyncpg {d.get('asyncpg')}, "
        f"{d.get('h2load')}; PostgreSQL {d.get('postgresql', '?')}"
    )


def readme_section(results: dict[str, Any]) -> str:
    return "\n".join(
        [
            BEGIN,
            "",
            f"Measured {results.get('started_at', '?')} on: "
            f"{format_machine(results.get('machine', {}))}.",
            "",
            format_report(results).rstrip(),
            "",
            END,
        ]
    )


def update_readme(results: dict[str, Any], readme: Path = README) -> None:
    """Replace the section between the markers with the figures of ``results``."""
    text = readme.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme}: the latest-results markers are missing")
    readme.write_text(text[:start] + readme_section(results) + text[end + len(END) :])
