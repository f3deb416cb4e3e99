"""Replay a recorded or synthetic session through the market-state engine and score what it finds.

The file is JSON Lines (``docs/replay.md``): market data events in the proto3 JSON form of
``execgw.v1.MarketDataEvent``, validated exactly as ``PublishMarketData`` validates them, and label
lines saying what a correct detector must detect and when. Events go in file order into a fresh
``MarketStateEngine``; time is the feed's own (no wall clock inside the replay).

Time-driven rules (``engine.tick``) run on a ``tick_interval`` grid of feed time while trades can
still move a reference price, and at exact deadlines: a limit state reaching its 15 s, the end of a
market-wide halt, the session's open, closing period and close. Each tick runs before the first
event at or after its time, so an inferred pause is found when it becomes due, not at the next
event, whatever the grid.

Scoring: a detection is a compliance record of the engine (``Change.record``) in one of the kinds
below. Each label takes the earliest unused detection of its symbol and kind within ``tolerance``
of its time. Of the detections left, the engine's own confirmation of an inferred pause (the LUDP
message) and a detection within ``tolerance`` after a matched one of the same symbol and kind are
repeats; the rest are false positives. Per-symbol halts with a market-wide code (MWC1...) belong
to the market-wide circuit breaker.
"""

from __future__ import annotations

import heapq
import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from gateway._pb.execgw.v1 import market_state_pb2 as pb
from gateway.api import market_convert
from gateway.domain import halt_codes
from gateway.domain.calendar import EXCHANGE_TZ, TradingCalendar
from gateway.domain.feed import EventRefused, FeedEvent, TradeReport
from gateway.domain.market_state import Change, ChangeKind, MarketSettings, MarketStateEngine
from gateway.errors import ExecgwError

KINDS = ("LIMIT_STATE", "STRADDLE", "PAUSE", "HALT", "CIRCUIT_BREAKER", "SHORT_SALE_RESTRICTION")
SAMPLE = "sample"
DEFAULT_TOLERANCE = timedelta(seconds=30)
DEFAULT_TICK = timedelta(seconds=1)
MAX_PROBLEMS = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LIMITS = frozenset({"LIMIT_UP", "LIMIT_DOWN"})
_LABEL_KEYS = frozenset({"symbol", "kind", "at", "code", "note"})


class ReplayError(ExecgwError):
    """The session file cannot be read at all (a bad line is a problem in the report instead)."""

    reason = "REPLAY_FILE_UNREADABLE"


@dataclass(frozen=True, slots=True)
class Label:
    """What a correct detector detects: ``kind`` for ``symbol`` ("" market-wide) at ``at``."""

    line: int
    symbol: str
    kind: str
    at: datetime
    code: str = ""
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return ("" if self.kind == "CIRCUIT_BREAKER" else self.symbol, self.kind)


@dataclass(frozen=True, slots=True)
class Detection:
    """One compliance record of the engine, with the feed time at which the replay had it."""

    symbol: str
    kind: str
    code: str
    record: str
    detected_at: datetime
    line: int  # the event's line; 0 when time alone (a tick) produced it
    confirms: bool = False  # the declared pause that replaces an inferred one

    @property
    def key(self) -> tuple[str, str]:
        return ("" if self.kind == "CIRCUIT_BREAKER" else self.symbol, self.kind)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Match:
    label: Label
    detection: Detection | None

    @property
    def delay(self) -> float | None:
        if self.detection is None:
            return None
        return (self.detection.detected_at - self.label.at).total_seconds()


@dataclass(frozen=True, slots=True)
class Score:
    """Detection figures of one kind (or of all: ``kind`` "total")."""

    kind: str
    labels: int
    detected: int
    false_positives: int
    repeats: int
    delays: tuple[float, ...]  # seconds, sorted

    @property
    def detection_rate(self) -> float | None:
        return self.detected / self.labels if self.labels else None

    def delay(self, which: str) -> float | None:
        d = self.delays
        if not d:
            return None
        if which == "median":
            return statistics.median(d)
        if which == "p95":
            return d[max(0, math.ceil(0.95 * len(d)) - 1)]  # nearest rank
        return d[-1]


@dataclass(frozen=True, slots=True)
class ReplayReport:
    source: str
    session: dict[str, Any] | None
    lines: int
    events: int
    accepted: int
    refused: dict[str, int]
    problems: tuple[Problem, ...]
    matches: tuple[Match, ...]
    false_positives: tuple[Detection, ...]
    repeats: tuple[Detection, ...]
    scores: tuple[Score, ...]
    total: Score
    tolerance: timedelta
    elapsed: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0


# --- reading ----------------------------------------------------------------------------------


@contextmanager
def open_session(name: str) -> Iterator[tuple[str, Iterable[str]]]:
    """Open a session file; ``sample`` is the packaged sample unless a file of that name exists."""
    if name == SAMPLE and not Path(name).exists():
        packaged = resources.files("gateway").joinpath("data/sample_session.jsonl")
        with resources.as_file(packaged) as path, _open(path) as lines:
            yield str(path), lines
        return
    with _open(Path(name)) as lines:
        yield name, lines


@contextmanager
def _open(path: Path) -> Iterator[Iterable[str]]:
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReplayError(f"{path}: {exc.strerror or exc}") from exc
    with handle:
        yield handle


def _label(body: object, line: int) -> Label:
    if not isinstance(body, dict) or not set(body) <= _LABEL_KEYS:
        raise ValueError(f"a label is an object with keys {', '.join(sorted(_LABEL_KEYS))}")
    kind, at, symbol = body.get("kind"), body.get("at"), body.get("symbol", "")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(at, str) or not isinstance(symbol, str):
        raise ValueError("at (RFC 3339 time) and symbol must be strings")
    if not symbol and kind != "CIRCUIT_BREAKER":
        raise ValueError(f"a {kind} label needs its symbol")
    stamp = Timestamp()
    stamp.FromJsonString(at)  # ValueError when not RFC 3339
    code, note = body.get("code", ""), body.get("note", "")
    return Label(line, symbol, kind, stamp.ToDatetime(tzinfo=UTC), str(code), str(note))


# --- driving the engine -----------------------------------------------------------------------


def _kind(change: Change) -> str | None:
    record = change.record
    if record == "LIMIT_STATE":
        return "LIMIT_STATE" if change.reason_code in _LIMITS else None
    if record in ("PAUSE", "PAUSE_INFERRED"):
        return "PAUSE"
    if record == "HALT":
        try:
            market_wide = halt_codes.lookup(change.reason_code).is_market_wide
        except halt_codes.UnknownHaltCode:
            market_wide = False
        return "CIRCUIT_BREAKER" if market_wide else "HALT"
    if record in ("STRADDLE", "CIRCUIT_BREAKER", "SHORT_SALE_RESTRICTION"):
        return record
    return None


@dataclass
class _Driver:
    """Feed events to the engine and tick it on a grid and at exact deadlines.

    The grid runs while trades can still move a reference price; the deadlines are a limit
    state's 15 s, a market-wide halt's end, and the session's open, closing period and close.
    Quiet stretches (before the open, long gaps) are skipped with one tick at the next event.
    """

    engine: MarketStateEngine
    interval: timedelta
    clock: datetime | None = None
    busy_until: datetime | None = None
    deadlines: list[datetime] = field(default_factory=list)
    days: set[date] = field(default_factory=set)
    detections: list[Detection] = field(default_factory=list)

    def apply(self, event: FeedEvent, line: int) -> None:
        self._advance(event.at)
        changes = self.engine.apply(event)  # EventRefused: nothing changed
        if isinstance(event, TradeReport) and event.eligible:
            # Ticks re-evaluate the reference price while trades are in its 5-minute window.
            window = self.engine.settings.luld.reference_window + self.interval
            if self.busy_until is None or event.at + window > self.busy_until:
                self.busy_until = event.at + window
        self._collect(changes, event.at, line)

    def _advance(self, to: datetime) -> None:
        clock = self.clock
        if clock is None or to <= clock:
            self.clock = clock or to
            self._session_deadlines(to)
            return
        self._session_deadlines(to)
        deadlines, busy = self.deadlines, self.busy_until
        while True:
            while deadlines and deadlines[0] <= clock:
                heapq.heappop(deadlines)
            due = deadlines[0] if deadlines else None
            if busy is not None and clock < busy:
                grid = _EPOCH + ((clock - _EPOCH) // self.interval + 1) * self.interval
                due = grid if due is None else min(due, grid)
            if due is None or due > to:
                break
            clock = self.clock = due
            self._collect(self.engine.tick(due), due, 0)
        if to - clock >= self.interval:
            self.clock = to  # after a quiet stretch: bring phases up to date before the event
            self._collect(self.engine.tick(to), to, 0)

    def _session_deadlines(self, at: datetime) -> None:
        session = self.engine.session(at)
        if session is None or session.trade_date in self.days:
            return
        self.days.add(session.trade_date)
        closing = session.close_at - self.engine.settings.luld.closing_period
        for moment in (session.open_at, closing, session.close_at):
            if moment > at:
                heapq.heappush(self.deadlines, moment)

    def _collect(self, changes: list[Change], now: datetime, line: int) -> None:
        for change in changes:
            if change.record == "LIMIT_STATE" and change.reason_code in _LIMITS:
                state = self.engine.get(change.symbol)
                since = state.limit.since if state is not None else None
                timeout = self.engine.settings.luld.limit_state_timeout
                heapq.heappush(self.deadlines, (since or now) + timeout)
            breaker = self.engine.breaker
            if ChangeKind.CIRCUIT_BREAKER in change.kinds and breaker is not None:
                until = breaker.halted_until
                if until is not None and until > now:
                    heapq.heappush(self.deadlines, until)
            kind = _kind(change)
            if kind is not None:
                confirms = dict(change.detail).get("replaces") == "PAUSE_INFERRED"
                self.detections.append(
                    Detection(
                        change.symbol, kind, change.reason_code, change.record, now, line, confirms
                    )
                )


def replay(
    lines: Iterable[str],
    *,
    source: str = "-",
    settings: MarketSettings | None = None,
    calendar: TradingCalendar | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    tick_interval: timedelta = DEFAULT_TICK,
) -> ReplayReport:
    """Run a session's lines through a fresh engine and score its detections against the labels.

    A line that cannot be used is counted and listed by number, and the replay goes on.
    """
    engine = MarketStateEngine(calendar or TradingCalendar.default(), settings)
    driver = _Driver(engine, tick_interval)
    labels: list[Label] = []
    refused: Counter[str] = Counter()
    problems: list[Problem] = []
    session: dict[str, Any] | None = None
    count = accepted = 0

    def problem(line: int, reason: str, message: str) -> None:
        refused[reason] += 1
        if len(problems) < MAX_PROBLEMS:
            problems.append(Problem(line, reason, message))

    started = time.perf_counter()
    for count, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            problem(count, "MALFORMED_LINE", f"not JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(value, dict):
            problem(count, "MALFORMED_LINE", "not a JSON object")
            continue
        if len(value) == 1 and "label" in value:
            try:
                labels.append(_label(value["label"], count))
            except ValueError as exc:
                problem(count, "INVALID_LABEL", str(exc))
            continue
        if len(value) == 1 and "session" in value:
            session = value["session"] if isinstance(value["session"], dict) else None
            continue
        message = pb.MarketDataEvent()
        try:
            json_format.ParseDict(value, message)
        except json_format.ParseError as exc:
            problem(count, "MALFORMED_LINE", f"not a MarketDataEvent: {exc}")
            continue
        event, violations = market_convert.feed_event(message)
        if event is None:
            detail = "; ".join(f"{v.field}: {v.description}" for v in violations)
            problem(count, "INVALID_EVENT", detail)
            continue
        try:
            driver.apply(event, count)
        except EventRefused as exc:
            problem(count, exc.reason, exc.message)
        else:
            accepted += 1
    elapsed = time.perf_counter() - started
    matches, false_positives, repeats = _match(labels, driver.detections, tolerance)
    scores = _scores(matches, false_positives, repeats)
    return ReplayReport(
        source=source,
        session=session,
        lines=count,
        events=accepted + sum(refused.values()) - refused["INVALID_LABEL"],
        accepted=accepted,
        refused=dict(sorted(refused.items())),
        problems=tuple(problems),
        matches=tuple(matches),
        false_positives=tuple(false_positives),
        repeats=tuple(repeats),
        scores=tuple(s for s in scores if s.kind != "total"),
        total=scores[-1],
        tolerance=tolerance,
        elapsed=elapsed,
    )


# --- scoring ----------------------------------------------------------------------------------


def _match(
    labels: list[Label], detections: list[Detection], tolerance: timedelta
) -> tuple[list[Match], list[Detection], list[Detection]]:
    order = sorted(range(len(detections)), key=lambda i: detections[i].detected_at)
    by_key: dict[tuple[str, str], list[int]] = {}
    for i in order:
        by_key.setdefault(detections[i].key, []).append(i)
    used: set[int] = set()
    matches: list[Match] = []
    for label in sorted(labels, key=lambda lb: (lb.at, lb.line)):
        found = None
        for i in by_key.get(label.key, ()):
            if i not in used and abs(detections[i].detected_at - label.at) <= tolerance:
                found = i
                break
        if found is not None:
            used.add(found)
        matches.append(Match(label, detections[found] if found is not None else None))
    false_positives: list[Detection] = []
    repeats: list[Detection] = []
    for i in order:
        if i in used:
            continue
        d = detections[i]
        after_match = any(
            timedelta(0) <= d.detected_at - detections[j].detected_at <= tolerance
            for j in by_key[d.key]
            if j in used
        )
        (repeats if d.confirms or after_match else false_positives).append(d)
    return matches, false_positives, repeats


def _scores(
    matches: list[Match], false_positives: list[Detection], repeats: list[Detection]
) -> list[Score]:
    kinds = [
        k
        for k in KINDS
        if any(m.label.kind == k for m in matches) or any(d.kind == k for d in false_positives)
    ]
    scores = []
    for kind in [*kinds, "total"]:

        def mine(k: str, kind: str = kind) -> bool:
            return kind in ("total", k)

        chosen = [m for m in matches if mine(m.label.kind)]
        delays = sorted(m.delay for m in chosen if m.delay is not None)
        scores.append(
            Score(
                kind,
                labels=len(chosen),
                detected=len(delays),
                false_positives=sum(1 for d in false_positives if mine(d.kind)),
                repeats=sum(1 for d in repeats if mine(d.kind)),
                delays=tuple(delays),
            )
        )
    return scores


def verdict(
    report: ReplayReport, min_detection_rate: float, max_false_positives: int | None = None
) -> tuple[bool, str]:
    """Whether the replay passes the thresholds, and why."""
    total = report.total
    rate = total.detection_rate
    reasons = []
    passed = True
    if rate is None:
        reasons.append("no labels: detection rate not checked")
    elif rate < min_detection_rate:
        passed = False
        reasons.append(f"detection rate {rate:.1%} is below {min_detection_rate:.1%}")
    else:
        reasons.append(f"detection rate {rate:.1%} >= {min_detection_rate:.1%}")
    if max_false_positives is not None:
        if total.false_positives > max_false_positives:
            passed = False
            reasons.append(f"{total.false_positives} false positives > {max_false_positives}")
        else:
            reasons.append(f"{total.false_positives} false positives <= {max_false_positives}")
    return passed, "; ".join(reasons)


# --- output -----------------------------------------------------------------------------------


def _time(at: datetime) -> str:
    return at.astimezone(EXCHANGE_TZ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " ET"


def _detection(d: Detection) -> dict[str, Any]:
    return {
        "symbol": d.symbol,
        "kind": d.kind,
        "code": d.code,
        "record": d.record,
        "detectedAt": d.detected_at.isoformat(),
        "line": d.line,
    }


def _score_json(s: Score) -> dict[str, Any]:
    return {
        "labels": s.labels,
        "detected": s.detected,
        "missed": s.labels - s.detected,
        "detectionRate": s.detection_rate,
        "falsePositives": s.false_positives,
        "repeats": s.repeats,
        "delaySeconds": {k: s.delay(k) for k in ("median", "p95", "max")},
    }


def to_json(report: ReplayReport) -> dict[str, Any]:
    """The report as one JSON-ready object (the ``--json`` output)."""
    return {
        "source": report.source,
        "session": report.session,
        "lines": report.lines,
        "events": report.events,
        "accepted": report.accepted,
        "refusedByReason": report.refused,
        "problems": [
            {"line": p.line, "reason": p.reason, "message": p.message} for p in report.problems
        ],
        "toleranceSeconds": report.tolerance.total_seconds(),
        "kinds": {s.kind: _score_json(s) for s in report.scores},
        "total": _score_json(report.total),
        "incidents": [
            {
                "symbol": m.label.symbol,
                "kind": m.label.kind,
                "code": m.label.code,
                "at": m.label.at.isoformat(),
                "line": m.label.line,
                "detected": m.detection is not None,
                "detection": _detection(m.detection) if m.detection else None,
                "delaySeconds": m.delay,
            }
            for m in report.matches
        ],
        "falsePositives": [_detection(d) for d in report.false_positives],
        "elapsedSeconds": round(report.elapsed, 6),
        "eventsPerSecond": round(report.events_per_second, 1),
    }


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_report(report: ReplayReport) -> str:
    """The report as a table for people."""
    out = [f"replay {report.source}"]
    if report.session:
        out.append("  session " + ", ".join(f"{k} {v}" for k, v in report.session.items()))
    refused = report.events - report.accepted
    out.append(
        f"  {report.lines} lines: {report.events} events ({report.accepted} accepted, "
        f"{refused} refused), {len(report.matches)} labels; {report.elapsed:.2f} s, "
        f"{report.events_per_second:,.0f} events/s"
    )
    out.append(f"  tolerance {report.tolerance.total_seconds():g} s; delays in seconds")
    out.append("")
    head = f"  {'kind':<24}{'labels':>7}{'found':>7}{'rate':>8}{'false+':>8}{'repeats':>8}"
    out.append(head + f"{'median':>9}{'p95':>9}{'max':>9}")
    for s in [*report.scores, report.total]:
        out.append(
            f"  {s.kind:<24}{s.labels:>7}{s.detected:>7}{_rate(s.detection_rate):>8}"
            f"{s.false_positives:>8}{s.repeats:>8}{_seconds(s.delay('median')):>9}"
            f"{_seconds(s.delay('p95')):>9}{_seconds(s.delay('max')):>9}"
        )
    missed = [m.label for m in report.matches if m.detection is None]
    if missed:
        out.append("\n  missed:")
        out += [
            f"    line {lb.line}: {lb.symbol or 'market'} {lb.kind} {lb.code} at {_time(lb.at)}"
            for lb in missed[:20]
        ]
    if report.false_positives:
        out.append("\n  false positives:")
        out += [
            f"    {d.symbol or 'market'} {d.kind} {d.code} ({d.record}) at {_time(d.detected_at)}"
            for d in report.false_positives[:20]
        ]
    if report.refused:
        out.append(
            "\n  refused by reason: " + ", ".join(f"{k} {v}" for k, v in report.refused.items())
        )
        out += [f"    line {p.line}: {p.reason}: {p.message}" for p in report.problems[:20]]
    return "\n".join(out)
