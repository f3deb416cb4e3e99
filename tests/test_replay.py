"""Replay and the session generator: deterministic labelled sessions, detection scored per label."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from gateway.domain.luld import LuldSettings
from gateway.domain.market_state import MarketSettings
from gateway.replay import format_report, open_session, replay, to_json, verdict
from gateway.session_generator import GeneratorError, SessionSpec, generate

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "gateway" / "data" / "sample_session.jsonl"
GHOST = '{"label": {"symbol": "GHST", "kind": "HALT", "at": "2026-03-02T15:00:00Z"}}'
INCIDENT_KINDS = {"LIMIT_STATE", "PAUSE", "HALT", "CIRCUIT_BREAKER", "SHORT_SALE_RESTRICTION"}


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}


def _labels(text: str) -> list[dict[str, str]]:
    return [json.loads(line)["label"] for line in text.splitlines() if line.startswith('{"label"')]


@pytest.fixture(scope="module")
def session() -> str:
    """Two incident sets: the first with limit-down states, the second with limit-up states."""
    return generate(SessionSpec(seed=11, symbols=9))


def test_generate_with_the_same_seed_then_byte_identical_and_another_seed_differs() -> None:
    spec = SessionSpec(seed=7, symbols=5)
    first = generate(spec).encode()
    assert generate(SessionSpec(seed=7, symbols=5)).encode() == first
    assert generate(SessionSpec(seed=8, symbols=5)).encode() != first


def test_generate_then_every_incident_is_labelled_once_per_set(session: str) -> None:
    labels = _labels(session)
    kinds = [label["kind"] for label in labels]
    assert set(kinds) == INCIDENT_KINDS
    # Per set: a resolved limit state, one that lasts and its pause, a T1 halt; one breaker.
    assert kinds.count("LIMIT_STATE") == 4
    assert kinds.count("PAUSE") == kinds.count("HALT") == 2
    assert kinds.count("CIRCUIT_BREAKER") == 1
    assert kinds.count("SHORT_SALE_RESTRICTION") >= 2
    codes = {label["code"] for label in labels if label["kind"] == "LIMIT_STATE"}
    assert codes == {"LIMIT_DOWN", "LIMIT_UP"}
    header = json.loads(session.splitlines()[0])["session"]
    assert (header["seed"], header["symbols"]) == (11, 9)


def test_generate_with_too_few_symbols_or_minutes_then_refused_naming_both() -> None:
    with pytest.raises(GeneratorError) as refused:
        generate(SessionSpec(seed=1, symbols=3, minutes=10))
    assert "symbols=3" in refused.value.message
    assert "minutes=10" in refused.value.message


@pytest.mark.parametrize("tick", [timedelta(seconds=1), timedelta(seconds=60)], ids=str)
def test_replay_generated_session_then_every_label_detected_on_time_without_false_positives(
    session: str, tick: timedelta
) -> None:
    report = replay(session.splitlines(), tick_interval=tick)
    assert report.refused == {}
    assert report.accepted == report.events > 5000
    assert report.total.labels == len(_labels(session))
    assert report.total.detection_rate == 1.0
    assert report.total.false_positives == 0
    # Inferred pauses are found at the limit state's 15 s even on a coarse grid (exact deadline).
    assert all(m.delay is not None and 0 <= m.delay <= 1.0 for m in report.matches)
    assert {s.kind for s in report.scores} == INCIDENT_KINDS
    # The LUDP messages confirm the inferred pauses: repeats, not false positives.
    pause = next(s for s in report.scores if s.kind == "PAUSE")
    assert (pause.detected, pause.repeats) == (2, 2)
    assert verdict(report, 1.0, 0)[0]


def test_replay_without_pause_inference_then_pauses_found_only_at_the_ludp_message(
    session: str,
) -> None:
    settings = MarketSettings(luld=LuldSettings(limit_state_timeout=timedelta(hours=1)))
    report = replay(session.splitlines(), settings=settings)
    pause = next(s for s in report.scores if s.kind == "PAUSE")
    assert pause.detection_rate == 1.0
    # The generator sends the LUDP message 0.5 to 4 s after the pause took effect.
    assert all(0.5 <= d <= 4.0 for d in pause.delays)
    assert pause.repeats == 0


def test_replay_with_bad_lines_then_each_reported_by_line_number_and_replay_goes_on(
    session: str,
) -> None:
    lines = session.splitlines()
    first_quote = next(line for line in lines if '"quote"' in line)
    bad = {
        4: "{not json",
        10: '{"symbol": "AAPL", "bogus": 1}',
        20: '{"symbol": "AAPL", "eventTime": "2026-03-02T15:00:00Z", '
        '"quote": {"venue": "NYSE", "bidPrice": "abc", "bidSize": "100"}}',
        30: '{"label": {"symbol": "AAPL", "kind": "EARTHQUAKE", "at": "2026-03-02T15:00:00Z"}}',
        len(lines) + 5: first_quote,  # replayed at the end: older than its symbol's last event
    }
    for number in sorted(bad):
        lines.insert(number - 1, bad[number])
    report = replay(lines)
    found = {p.line: p.reason for p in report.problems}
    assert found == {
        4: "MALFORMED_LINE",
        10: "MALFORMED_LINE",
        20: "INVALID_EVENT",
        30: "INVALID_LABEL",
        len(lines): "EVENT_OUT_OF_ORDER",
    }
    assert "quote.bid_price" in next(p.message for p in report.problems if p.line == 20)
    assert report.refused == {
        "EVENT_OUT_OF_ORDER": 1,
        "INVALID_EVENT": 1,
        "INVALID_LABEL": 1,
        "MALFORMED_LINE": 2,
    }
    assert report.total.detection_rate == 1.0 and report.total.false_positives == 0
    assert "line 20: INVALID_EVENT" in format_report(report)


def test_replay_when_a_label_has_no_incident_then_missed_and_the_verdict_fails(
    session: str,
) -> None:
    report = replay([*session.splitlines(), GHOST])
    halt = next(s for s in report.scores if s.kind == "HALT")
    assert (halt.labels, halt.detected) == (3, 2)
    assert report.total.detected == report.total.labels - 1
    assert not verdict(report, 1.0)[0]
    assert verdict(report, 0.9)[0]
    missed = [i for i in to_json(report)["incidents"] if not i["detected"]]
    assert [(i["symbol"], i["kind"]) for i in missed] == [("GHST", "HALT")]


def test_replay_when_a_halt_is_unlabelled_then_counted_as_false_positive(session: str) -> None:
    lines = [line for line in session.splitlines() if '"kind":"HALT"' not in line]
    report = replay(lines)
    assert report.total.detection_rate == 1.0
    assert report.total.false_positives == 2
    assert {d.code for d in report.false_positives} == {"T1"}
    assert not verdict(report, 1.0, 0)[0]


def test_sample_session_is_the_generator_output_its_header_describes() -> None:
    text = SAMPLE.read_text()
    header = json.loads(text.splitlines()[0])["session"]
    spec = SessionSpec(
        seed=header["seed"],
        symbols=header["symbols"],
        trade_date=date.fromisoformat(header["tradeDate"]),
        minutes=header["minutes"],
        quote_interval=header["quoteIntervalSeconds"],
        trade_interval=header["tradeIntervalSeconds"],
    )
    assert generate(spec) == text, "regenerate: execgw replay --generate (docs/replay.md)"
    assert len(text.encode()) < 1_000_000


def test_sample_shortcut_then_the_packaged_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_session("sample") as (source, lines):
        assert Path(source).resolve() == SAMPLE.resolve()
        assert next(iter(lines)).startswith('{"session"')


def test_replay_command_on_the_sample_session_then_json_with_full_detection() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "replay", "gateway/data/sample_session.jsonl", "--json"],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total"]["detectionRate"] == 1.0
    assert report["total"]["falsePositives"] == 0
    assert report["refusedByReason"] == {}
    assert report["verdict"]["passed"] is True
    assert set(report["kinds"]) == INCIDENT_KINDS
    assert report["eventsPerSecond"] > 0


def test_replay_command_generate_then_the_written_session_replays_and_exit_status_judges(
    tmp_path: Path,
) -> None:
    out = tmp_path / "session.jsonl"
    command = [sys.executable, "-m", "gateway", "replay"]
    env = _environment()
    written = subprocess.run(
        [*command, "--generate", str(out), "--seed", "3", "--symbols", "4", "--minutes", "50"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert written.returncode == 0, written.stderr
    assert out.read_text() == generate(SessionSpec(seed=3, symbols=4, minutes=50))
    passed = subprocess.run(
        [*command, str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert passed.returncode == 0, passed.stderr
    assert "PASS" in passed.stdout
    with out.open("a") as session:
        session.write(GHOST + "\n")
    failed = subprocess.run(
        [*command, str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 1
    assert "FAIL" in failed.stdout and "GHST" in failed.stdout
    missing = subprocess.run(
        [*command, str(tmp_path / "nowhere.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert "nowhere.jsonl" in missing.stderr
