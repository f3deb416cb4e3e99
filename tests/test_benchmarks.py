"""The benchmark command's pieces keep working: the hot-path script on a tiny run, the report on
synthetic figures, the parsing of the other benchmarks' output. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.__main__ import fanout_summary, parse_journal_stream, without_nan
from benchmarks.bench_hot_paths import LABELS

ROOT = Path(__file__).resolve().parent.parent


def _round(target: str, rps: float, errors: int | None = 0) -> dict[str, Any]:
    if not rps:  # a round in which h2load got no answer
        return {"target": target, "requests": 0, "rps": 0.0, "errors": errors, "failed": True}
    return {
        "target": target,
        "requests": int(rps * 4),
        "seconds": 4.0,
        "rps": rps,
        "p50_ms": 9.1,
        "p99_ms": 20.6,
        "p999_ms": 34.4,
        "cpu_us_per_request": 1e6 / rps,
        "half_load_p50_ms": 2.2,
        "half_load_p99_ms": 7.8,
        "half_load_p999_ms": float("nan"),
        "errors": errors,
    }


def _unary(gateway: list[float], baseline: list[float], status: str = "OK") -> dict[str, Any]:
    return {
        "status": {
            "gateway": {"first": "OK", "repeat": status},
            "baseline": {"first": "OK", "repeat": "OK"},
        },
        "path": "allowed=True reasons=none",
        "rounds": {
            "baseline": [_round("baseline", r, None) for r in baseline],
            "gateway": [_round("gateway", r) for r in gateway],
        },
        "ratios": [g / b if g else None for g, b in zip(gateway, baseline, strict=True)],
    }


def synthetic_results(tracing: bool = True) -> dict[str, Any]:
    return {
        "started_at": "2026-11-25 12:00 UTC",
        "elapsed_s": 612.0,
        "machine": {
            "nproc": 2,
            "cpu_model": "AMD EPYC",
            "memory_gb": 23.5,
            "python": "3.11.7",
            "grpcio": "1.85.3",
            "uvloop": "0.23.0",
        },
        "settings": {"quick": False, "rounds": 3, "seconds": 4.0, "clients": 4, "streams": 16},
        "unary": {
            "CheckOrder": _unary([5_100.0, 5_300.0, 5_400.0], [7_000.0, 7_200.0, 7_300.0]),
            "SubmitOrder": _unary(
                [4_000.0, 4_100.0, 4_200.0, 0.0],
                [6_000.0, 6_100.0, 6_200.0, 6_300.0],
                status="ALREADY_EXISTS: duplicate",
            ),
        },
        "first_time": {
            "SubmitOrder": {
                "unique": [
                    {
                        "requests": 8_400,
                        "rps": 2_800.0,
                        "p50_ms": 20.7,
                        "p99_ms": 44.1,
                        "p999_ms": 44.7,
                        "cpu_us_per_request": 349.0,
                        "errors": {"INTERNAL": 3},
                    }
                ],
                "repeat": [
                    {
                        "requests": 15_300,
                        "rps": 5_100.0,
                        "p50_ms": 12.4,
                        "p99_ms": 14.9,
                        "p999_ms": 28.1,
                        "cpu_us_per_request": 193.0,
                        "errors": {},
                    },
                    # A run that answered nothing in its window: left out, flagged.
                    {"requests": 0, "rps": 0.0, "cpu_us_per_request": 0.0, "errors": {}},
                ],
            }
        },
        "stream": {
            "fills_per_s": [21_000.0, 20_000.0, 22_000.0],
            "errors": 0,
            "writer_fills_per_s": [39_000.0, 38_000.0, 40_000.0],
        },
        "fanout": {
            "probes": 100,
            "phases": {
                "1": {
                    "gateway": {
                        "p50_ms": 0.4,
                        "p99_ms": 1.9,
                        "max_ms": 2.0,
                        "delivered": "100/100",
                        "others_cores": 0.1,
                    },
                    "floor": {"p99_ms": 0.3},
                },
                "1000": {
                    "gateway": {
                        "p50_ms": 15.5,
                        "p99_ms": 27.1,
                        "max_ms": 30.4,
                        "delivered": "100,000/100,000",
                        "others_cores": 1.2,
                    },
                    "stalled": {"p99_ms": 31.0},
                },
            },
        },
        "memory": {"gateway_peak_rss_mb": 96.4, "baseline_peak_rss_mb": 46.0},
        "tracing": (
            {
                "available": True,
                "rounds": {
                    "off": [_round("gateway", 5_000.0), _round("gateway", 5_200.0)],
                    "on": [_round("gateway-traced", 4_900.0), _round("gateway-traced", 5_000.0)],
                },
                "ratios": [0.98, 0.96],
                "control_ratios": [1.01, 0.99],
                "side_by_side": {
                    "off": [
                        {"cpu_us_per_request": 300.0, "rps": 1600.0},
                        {"cpu_us_per_request": 310.0, "rps": 1550.0},
                    ],
                    "on": [
                        {"cpu_us_per_request": 309.0, "rps": 1560.0},
                        {"cpu_us_per_request": 316.0, "rps": 1520.0},
                    ],
                    "control_first": [
                        {"cpu_us_per_request": 300.0, "rps": 1600.0},
                        {"cpu_us_per_request": 306.0, "rps": 1570.0},
                    ],
                    "control_twin": [
                        {"cpu_us_per_request": 303.0, "rps": 1590.0},
                        {"cpu_us_per_request": 300.0, "rps": 1600.0},
                    ],
                },
            }
            if tracing
            else {"available": False}
        ),
        "hot_paths": {
            "setup": "1,000 calls per case",
            "cases": {
                name: {"p50_us": 5.0, "p99_us": 7.5, "p999_us": 26.0, "mean_us": 5.2}
                for name in LABELS
            },
        },
        "notes": ["fan-out: 2 of 9 phases ran while other processes used more than 0.3 cores"],
    }


def test_hot_paths_script_when_tiny_run_then_every_case_printed_and_written(
    tmp_path: Path,
) -> None:
    out = tmp_path / "hot.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_hot_paths.py"),
            "--iterations",
            "40",
            "--symbols",
            "30",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for label in LABELS.values():
        assert label in done.stdout
    figures = json.loads(out.read_text())
    assert set(figures) == set(LABELS)
    for row in figures.values():
        assert {"p50_us", "p99_us", "p999_us", "mean_us"} <= set(row)
        assert row["samples"] == 40
        assert 0 < row["p50_us"] <= row["p99_us"] <= row["p999_us"]


def test_fill_path_script_when_tiny_run_then_every_fill_acknowledged_and_figures_printed(
    database_url: str,
) -> None:
    """The in-process fill path on the test database: it exits non-zero if any fill of a run
    was not acknowledged."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_fill_path.py"),
            *("--fills", "300", "--batch", "100", "--runs", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EXECGW_DATABASE_URL": database_url},
    )
    assert done.returncode == 0, done.stderr
    lines = {
        line.strip().split("  ")[0]: line.split()
        for line in done.stdout.splitlines()
        if line.startswith("  ")
    }
    assert float(lines["durable fills/s"][2].replace(",", "")) > 0
    assert float(lines["process CPU us/fill"][3]) > 0


def test_report_when_full_figures_then_every_section_with_medians_and_ranges() -> None:
    text = report.format_report(synthetic_results())
    assert "full run, 612 s" in text
    assert "| CheckOrder " in text
    assert "5,300 [5,100-5,400]" in text  # req/s median [min-max]
    assert "0.74 [0.73-0.74]" in text  # gateway/baseline
    assert "duplicate answer" in text  # what h2load measures for SubmitOrder and RecordFill
    assert "first-time path" in text
    assert "21,000 [20,000-22,000]" in text and "0.54" in text  # stream against the ceiling
    assert "| 1,000 " in text and "27.10" in text  # fan-out p99 at 1,000 subscribers
    assert "| 96 " in text  # peak RSS
    assert "0.970 [0.960-0.980]" in text and ">= 0.95: req/s met, CPU met" in text
    assert text.count("0.74 [0.73-0.74]") == 2  # by req/s and by CPU per request
    assert "1.000 [0.990-1.010]" in text  # the A/A control
    # Side by side: off over on CPU per request, its A/A control, and the verdict on it.
    side = text.split("Side by side", 1)[1]
    assert "0.976 [0.971-0.981]" in side and "1.005 [0.990-1.020]" in side
    assert ">= 0.95: met" in side
    # A round without CPU figures (no answer, or an older or partial JSON) is left out.
    results = synthetic_results()
    side = results["tracing"]["side_by_side"]
    side["off"] += [{"cpu_us_per_request": None, "rps": 0.0}, {"rps": 1.0}]
    side["on"] += [{"cpu_us_per_request": 320.0, "rps": 1500.0}, {}]
    assert "0.976 [0.971-0.981]" in report.format_report(results).split("Side by side", 1)[1]
    assert LABELS["luld_trade"] in text


def test_report_when_an_rpc_answers_an_error_then_flagged() -> None:
    results = synthetic_results()
    results["unary"]["SubmitOrder"]["rounds"]["baseline"][0]["half_load_p50_ms"] = float("nan")
    text = report.format_report(results)
    flags = text.split("FLAGS:", 1)[1]
    assert "SubmitOrder gateway: grpc-status first OK, repeated ALREADY_EXISTS" in flags
    assert "CheckOrder" not in flags
    assert "SubmitOrder gateway: 1 of 4 rounds got no answer at all" in flags
    assert "4,100 [4,000-4,200]" in text  # the failed round is not in the median
    assert "SubmitOrder baseline: the half-load run of 1 round(s) got no answer" in flags
    assert "**3**" in text  # errors of the first-time path
    assert "| 5,100 " in text  # the stalled run is not in the median
    assert "SubmitOrder gateway, one repeated request (duplicate path): 1 run(s)" in flags
    assert "other processes" in flags


def test_report_when_no_tracing_setting_then_says_not_measured() -> None:
    text = report.format_report(synthetic_results(tracing=False))
    assert "Tracing: not measured" in text


def test_report_when_read_back_from_json_then_same_text() -> None:
    results = synthetic_results()
    encoded = json.dumps(without_nan(results))  # JSON has no NaN
    assert "NaN" not in encoded
    assert report.format_report(json.loads(encoded)) == report.format_report(results)


def test_update_readme_when_markers_present_then_only_the_section_changes(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "benchmarks" / "README.md").read_text())
    before = readme.read_text()
    report.update_readme(synthetic_results(), readme)
    after = readme.read_text()
    head = before.split(report.BEGIN)[0]
    tail = before.split(report.END)[1]
    assert after.startswith(head) and after.endswith(tail)
    assert "2 cores (AMD EPYC)" in after and "5,300 [5,100-5,400]" in after
    report.update_readme(synthetic_results(), readme)  # idempotent
    assert readme.read_text() == after


def test_update_readme_when_markers_missing_then_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# nothing here\n")
    with pytest.raises(SystemExit):
        report.update_readme(synthetic_results(), readme)


@pytest.mark.parametrize(
    "output",
    [
        # The wording of bench_journal_grpc.py stream, then and now.
        "RecordFills: 3 rounds x 5.0s, 8 streams x 256 in flight\n"
        "  durable fills/s acknowledged: median 21,000 [20,000-22,000], stream errors 0\n"
        "in-process writer ceiling (bench_journal_writer.py, core 0, same database):\n"
        "  journal writer, 128 callers, 3 runs of 5.0s (median [min-max])\n"
        "  durable fills/s        39,000  [38,000-40,000]\n"
        "  stream / writer ceiling: 0.54\n",
        "RecordFills, 8 streams x 256 fills in flight:\n"
        "  gateway durable fills/s       21,000.00 [20,000.00-22,000.00]\n"
        "  stream errors (sum)           0\n"
        "  empty-handler echo msgs/s     50,000.00 [49,000.00-51,000.00]\n"
        "  writer ceiling (below)        39,000 fills/s\n"
        "in-process writer (bench_journal_writer.py, core 0, same database):\n"
        "  durable fills/s        39,000  [38,000-40,000]\n",
    ],
)
def test_parse_journal_stream_when_either_wording_then_same_figures(output: str) -> None:
    found = parse_journal_stream(output)
    assert found["fills_per_s"] == [21_000, 20_000, 22_000]
    assert found["writer_fills_per_s"] == [39_000, 38_000, 40_000]
    assert found["errors"] == 0


def test_parse_journal_stream_with_batches_then_batched_figures_beside_the_stream() -> None:
    output = (
        "RecordFills, 8 streams x 256 fills in flight:\n"
        "  gateway durable fills/s       6,000.00 [5,000.00-7,000.00]\n"
        "RecordFillBatches, 8 streams x 4 batches of 250 fills in flight:\n"
        "  gateway batched fills/s       11,000.00 [10,000.00-12,000.00]\n"
        "  batch errors (sum)            0\n"
        "in-process writer (bench_journal_writer.py, core 0, same database):\n"
        "  durable fills/s        24,000  [20,000-30,000]\n"
    )
    found = parse_journal_stream(output)
    assert found["fills_per_s"] == [6_000, 5_000, 7_000]
    assert found["batched_fills_per_s"] == [11_000, 10_000, 12_000]
    section = report.stream_section(found)
    assert "RecordFillBatches over gRPC" in section and "0.46" in section


def test_burst_script_when_asked_for_help_then_describes_itself() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "burst.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--normal-rps" in done.stdout and "--factor" in done.stdout


def test_handler_floor_variant_when_served_then_answers_the_real_decision_every_time(
    database_url: str, tmp_path: Path
) -> None:
    """A cut-short CheckOrder still sends the gateway's real answer (the same bytes each time),
    so the variants differ only in the work done before answering."""
    from benchmarks.grpc_load import free_port, grpc_status, server_env, start_server
    from benchmarks.requests import REQUESTS, prime_market

    spec = REQUESTS["CheckOrder"]
    port = free_port()
    command = [
        *(sys.executable, str(ROOT / "benchmarks" / "handler_floor.py"), "--serve", "parsed"),
        *("--", "--grpc-port", str(port), "--metrics-port", "-1", "--database-url", database_url),
        *("--log-level", "WARNING", "--market-clock", "feed"),
    ]
    server = start_server(command, port, server_env(), tmp_path / "floor.log")
    try:
        prime_market(port, 20)
        answers = [grpc_status(port, spec.method, spec.request, spec.response) for _ in range(3)]
    finally:
        server.terminate()
        server.wait(15)
    assert [status for status, _ in answers] == ["OK"] * 3
    first = answers[0][1]
    assert first is not None and first.allowed and first.band.lower
    assert all(response == first for _, response in answers)


def test_parse_journal_stream_when_figures_missing_then_error_not_exception() -> None:
    assert "error" in parse_journal_stream("Traceback (most recent call last):\n")


def test_fanout_summary_when_phases_then_percentiles_by_subscribers() -> None:
    phases = [
        {"target": "floor", "subscribers": 100, "stalled": False, "latencies_ms": [1.0] * 99},
        {
            "target": "gateway",
            "subscribers": 100,
            "stalled": False,
            "latencies_ms": [float(i) for i in range(1, 101)],
            "others_cores": 0.1,
            "server": {"rss_mb": 120.0},
        },
        {"target": "gateway", "subscribers": 100, "stalled": True, "latencies_ms": []},
    ]
    found = fanout_summary(phases, probes=1)
    gateway = found["100"]["gateway"]
    assert (gateway["p50_ms"], gateway["p99_ms"], gateway["max_ms"]) == (51.0, 100.0, 100.0)
    assert gateway["delivered"] == "100/100" and gateway["rss_mb"] == 120.0
    assert found["100"]["floor"]["delivered"] == "99/100"
    assert found["100"]["stalled"]["delivered"] == "0/100"


def test_command_when_report_from_json_then_prints_the_report_without_measuring(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(without_nan(synthetic_results())))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--report-from", str(saved)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == report.format_report(synthetic_results()).strip()


def test_tidy_when_note_quotes_a_json_log_line_then_its_message_only() -> None:
    note = (
        'gateway log: 1 ERROR lines, e.g. {"time": "2026-11-25T12:58:58+00:00", "level": '
        '"ERROR", "logger": "grpc", "message": "ExecuteBatchError raised in core  (/tmp/x.log)'
    )
    assert (
        report.tidy(note)
        == "gateway log: 1 ERROR lines, e.g. ERROR ExecuteBatchError raised in core"
    )
    assert report.tidy("plain note") == "plain note"
