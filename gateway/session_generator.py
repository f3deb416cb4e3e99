"""Labelled synthetic trading sessions for ``execgw replay``, deterministic from a seed.

A session is a JSON Lines file (``docs/replay.md``): one header line, market data events in the
proto3 JSON form of ``execgw.v1.MarketDataEvent``, and label lines saying what a correct detector
must detect and when. The generator knows the truth because it constructs it:

- every symbol trades in a narrow mean-reverting corridor around an anchor price held at the penny,
  so no trade mean ever moves the LULD reference price by 1%: the reference price is exactly the
  opening (or reopening) print and the bands are known exactly (``compute_bands``);
- venues quote at most ``kmax`` steps from the anchor with a half-spread wider than the corridor,
  so quotes of different venues never cross;
- incidents are scripted on top: a limit state resolved within 15 s, a limit state that lasts and
  becomes a LULD pause (LUDP message a few seconds later, reopening print after 5 minutes), a T1
  news halt with its quotation-only period and reopening, a Reg SHO Rule 201 trigger, and a Level 1
  market-wide circuit breaker from S&P 500 levels, with the 15-minute halt and reopening prints.

Same seed and parameters, same bytes: all randomness comes from one seeded ``random.Random``, every
time is an integer of milliseconds and every price a ``Decimal``.
"""

from __future__ import annotations

import enum
import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import market_state_pb2 as pb
from gateway.domain.calendar import EXCHANGE_TZ, TradingCalendar
from gateway.domain.luld import Bands, Tier, compute_bands
from gateway.domain.prices import PENNY, default_tick, round_half_up
from gateway.errors import ExecgwError

FORMAT = "execgw.session/1"
GENERATOR = "execgw.session_generator/1"
VENUES = ("NASDAQ", "NYSE", "NYSE_ARCA", "IEX", "BATS_BZX", "EDGX")
INDEX = "SPX"
MIN_SYMBOLS = 4
MIN_MINUTES = 50
DEFAULT_YEAR = 2026
# Sessions end before the LULD closing period (15:35), where Tier 1 bands double.
_CLOSING_PERIOD = timedelta(minutes=25)
_OPEN = time(9, 30)
_REFERENCE_AT = -90 * 60_000  # 08:00 ET, in milliseconds from the open
_SECOND = 1000
_MINUTE = 60 * _SECOND
_CORRIDOR = Decimal("0.002")  # mid within +-0.2% of the anchor
_STEP = Decimal("0.0004")  # one walk step, about 4 bp
_SSR_FRACTION = Decimal("0.90")  # Reg SHO Rule 201 trigger (market rules section 3)
_MWC1 = Decimal("0.07")  # Level 1 decline (market rules section 2)
_MWC2 = Decimal("0.13")


class GeneratorError(ExecgwError, ValueError):
    """Generator parameters that cannot make a session."""

    reason = "INVALID_SESSION_SPEC"


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """What to generate. Floats here are mean event intervals in seconds, never prices."""

    seed: int
    symbols: int = 6
    trade_date: date | None = None  # default: a full trading day of DEFAULT_YEAR, from the seed
    minutes: int = 60
    quote_interval: float = 5.0
    trade_interval: float = 12.0


@dataclass(frozen=True, slots=True)
class _Profile:
    tier: Tier
    listing: str
    low: Decimal
    high: Decimal


# Cycled over the symbols: the first five cover both tiers and listings and the three LULD
# brackets (> $3, $0.75-$3, < $0.75). $1.20 keeps a one-cent half-spread below 1% of the price.
_PROFILES = (
    _Profile(Tier.TIER_1, "NASDAQ", Decimal(60), Decimal(400)),
    _Profile(Tier.TIER_2, "NYSE", Decimal("1.20"), Decimal("2.95")),
    _Profile(Tier.TIER_1, "NYSE", Decimal(20), Decimal(150)),
    _Profile(Tier.TIER_2, "NASDAQ", Decimal("0.20"), Decimal("0.70")),
    _Profile(Tier.TIER_2, "NASDAQ", Decimal(4), Decimal(40)),
    _Profile(Tier.TIER_1, "NYSE_ARCA", Decimal(30), Decimal(300)),
)


class _Role(enum.Enum):
    LIMIT_RESOLVED = "LIMIT_RESOLVED"
    LIMIT_PAUSED = "LIMIT_PAUSED"
    NEWS_HALT = "NEWS_HALT"
    SHORT_SALE = "SHORT_SALE"


@dataclass(slots=True)
class _Stock:
    """One symbol's generator state: its anchor, walk level and quoting parameters."""

    name: str
    profile: _Profile
    prior_close: Decimal
    anchor: Decimal = Decimal(0)
    tick: Decimal = PENNY
    unit: Decimal = PENNY
    kmax: int = 0
    half_spread: Decimal = PENNY
    level: int = 0
    restricted: bool = False
    # (start, incident time, script) in ms from the open: no random walk while a script runs.
    episodes: list[tuple[int, int, str]] = field(default_factory=list)

    def set_anchor(self, anchor: Decimal) -> None:
        """Quote around ``anchor`` (a penny price, so it equals the LULD reference price)."""
        self.anchor = anchor
        self.tick = default_tick(anchor)
        step = (anchor * _STEP).quantize(self.tick, rounding=ROUND_DOWN)
        self.unit = max(self.tick, step)
        self.kmax = int(anchor * _CORRIDOR / self.unit)
        # Wider than the corridor: two venues quoting at opposite ends never cross.
        self.half_spread = self.kmax * self.unit + self.tick
        self.level = 0

    @property
    def mid(self) -> Decimal:
        return self.anchor + self.level * self.unit

    @property
    def bands(self) -> Bands:
        return compute_bands(self.profile.tier, self.prior_close, self.anchor, doubled=False)

    @property
    def trigger(self) -> Decimal:
        return self.prior_close * _SSR_FRACTION


class _Session:
    """Collects lines with their time; ``text`` sorts them into the file."""

    def __init__(self, spec: SessionSpec, day: date) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.open_at = datetime.combine(day, _OPEN, tzinfo=EXCHANGE_TZ)
        self.day = day
        self._lines: list[tuple[int, int, dict[str, Any]]] = []

    def at(self, ms: int) -> datetime:
        return self.open_at + timedelta(milliseconds=ms)

    def event(self, ms: int, symbol: str, **payload: Any) -> None:
        message = pb.MarketDataEvent(symbol=symbol, **payload)
        message.event_time.FromDatetime(self.at(ms))
        self._lines.append((ms, len(self._lines), json_format.MessageToDict(message)))

    def label(self, ms: int, symbol: str, kind: str, code: str, note: str) -> None:
        stamp = pb.MarketDataEvent().event_time
        stamp.FromDatetime(self.at(ms))
        body: dict[str, str] = {"symbol": symbol} if symbol else {}
        body.update(kind=kind, at=stamp.ToJsonString(), code=code, note=note)
        self._lines.append((ms, len(self._lines), {"label": body}))

    def text(self, header: dict[str, Any]) -> str:
        ordered = sorted(self._lines, key=lambda line: (line[0], line[1]))
        rows = [header, *(body for _, _, body in ordered)]
        return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)

    # --- event helpers ------------------------------------------------------------------------

    def quote(self, ms: int, stock: _Stock, venue: str, bid: Decimal, ask: Decimal) -> None:
        rng = self.rng
        quote = pb.Quote(
            venue=venue,
            bid_price=str(bid),
            bid_size=100 * rng.randint(1, 20),
            ask_price=str(ask),
            ask_size=100 * rng.randint(1, 20),
        )
        self.event(ms, stock.name, quote=quote)

    def quote_all(self, ms: int, stock: _Stock, bid: Decimal, ask: Decimal) -> None:
        for venue in VENUES:
            self.quote(ms, stock, venue, bid, ask)

    def quote_mid(self, ms: int, stock: _Stock, mid: Decimal) -> None:
        self.quote_all(ms, stock, mid - stock.half_spread, mid + stock.half_spread)

    def trade(
        self,
        ms: int,
        stock: _Stock,
        price: Decimal,
        quantity: int,
        *,
        venue: str,
        eligible: bool = True,
        kind: pb.TradeType.ValueType = pb.TRADE_TYPE_REGULAR,
    ) -> None:
        trade = pb.Trade(
            venue=venue, price=str(price), quantity=quantity, eligible=eligible, trade_type=kind
        )
        self.event(ms, stock.name, trade=trade)
        # Rule 201: the first eligible regular-hours print at or below 90% of the prior close.
        if eligible and ms >= 0 and not stock.restricted and price <= stock.trigger:
            stock.restricted = True
            self.label(ms, stock.name, "SHORT_SALE_RESTRICTION", "REG_SHO_201", f"trade {price}")


def _trade_date(spec: SessionSpec, calendar: TradingCalendar) -> date:
    if spec.trade_date is not None:
        if not calendar.covers(spec.trade_date) or not calendar.is_trading_day(spec.trade_date):
            raise GeneratorError(f"{spec.trade_date} is not a trading day in the calendar")
        return spec.trade_date
    day, days = date(DEFAULT_YEAR, 1, 1), []
    if not calendar.covers(day):
        raise GeneratorError(f"the calendar does not cover {DEFAULT_YEAR}: give a trade date")
    while day.year == DEFAULT_YEAR:
        if calendar.is_trading_day(day) and not calendar.is_early_close(day):
            days.append(day)
        day += timedelta(days=1)
    return random.Random(f"trade-date:{spec.seed}").choice(days)


def _check(spec: SessionSpec, calendar: TradingCalendar, day: date) -> None:
    session = calendar.session(day)
    if session is None:
        raise GeneratorError(f"{day} is not a trading day in the calendar")
    problems = []
    if spec.symbols < MIN_SYMBOLS:
        problems.append(f"symbols={spec.symbols}: at least {MIN_SYMBOLS} (one per incident)")
    last = session.close_at - _CLOSING_PERIOD
    if spec.minutes < MIN_MINUTES or session.open_at + timedelta(minutes=spec.minutes) > last:
        problems.append(
            f"minutes={spec.minutes}: between {MIN_MINUTES} and the LULD closing period "
            f"({last.strftime('%H:%M')} ET on {day})"
        )
    if not 0.1 <= spec.quote_interval <= 600 or not 0.1 <= spec.trade_interval <= 600:
        problems.append("quote and trade intervals must be between 0.1 and 600 seconds")
    if problems:
        raise GeneratorError("; ".join(problems))


def _tickers(rng: random.Random, count: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    names: list[str] = []
    while len(names) < count:
        name = "".join(rng.choice(letters) for _ in range(rng.choice((3, 4))))
        if name not in names and name != INDEX:
            names.append(name)
    return names


def _price(rng: random.Random, low: Decimal, high: Decimal) -> Decimal:
    """A penny price uniformly in [low, high]."""
    cents = rng.randint(int(low * 100), int(high * 100))
    return Decimal(cents) / 100


def _stocks(s: _Session, roles: dict[int, _Role]) -> list[_Stock]:
    rng = s.rng
    stocks = []
    for i, name in enumerate(_tickers(rng, s.spec.symbols)):
        profile = _PROFILES[i % len(_PROFILES)]
        anchor = _price(rng, profile.low, profile.high)
        if roles.get(i) is _Role.SHORT_SALE:
            # Opened 8-9% below the prior close: one more dip of 1-2% triggers Rule 201.
            fraction = Decimal(rng.randint(912, 920)) / 1000
            prior = round_half_up(anchor / fraction, PENNY)
        else:
            prior = round_half_up(anchor * Decimal(rng.randint(990, 1010)) / 1000, PENNY)
        stock = _Stock(name, profile, prior)
        stock.set_anchor(anchor)
        # Even the lowest corridor print stays above the trigger until the scripted dip.
        while stock.anchor - 2 * stock.half_spread <= stock.trigger:
            stock.prior_close -= PENNY
        stocks.append(stock)
    return stocks


# --- the random walk -----------------------------------------------------------------------------


def _walk(s: _Session, stock: _Stock, start: int, end: int) -> None:
    """Quotes on random venues and trades at the quoted prices, from ``start`` to ``end`` ms."""
    rng = s.rng
    # Uniform gaps in whole milliseconds: no libm function, so every platform draws the same.
    quote_gap = round(2 * s.spec.quote_interval * _SECOND)
    trade_gap = round(2 * s.spec.trade_interval * _SECOND)
    next_quote = start + rng.randint(0, quote_gap)
    next_trade = start + rng.randint(0, trade_gap)
    while min(next_quote, next_trade) < end:
        if next_quote <= next_trade:
            step = rng.choice((-1, 0, 1))
            if stock.kmax and rng.random() < abs(stock.level) / stock.kmax / 2:
                step = -1 if stock.level > 0 else 1  # mean reversion towards the anchor
            stock.level = max(-stock.kmax, min(stock.kmax, stock.level + step))
            mid, half = stock.mid, stock.half_spread
            s.quote(next_quote, stock, rng.choice(VENUES), mid - half, mid + half)
            next_quote += rng.randint(1, quote_gap)
        else:
            buy = rng.random() < 0.5
            price = stock.mid + stock.half_spread if buy else stock.mid - stock.half_spread
            odd_lot = rng.random() < 0.1
            quantity = rng.randint(1, 99) if odd_lot else 100 * rng.randint(1, 10)
            s.trade(
                next_trade, stock, price, quantity, venue=rng.choice(VENUES), eligible=not odd_lot
            )
            next_trade += rng.randint(1, trade_gap)


# --- scripted incidents --------------------------------------------------------------------------


def _band_quotes(stock: _Stock, down: bool) -> tuple[Decimal, Decimal, Decimal]:
    """The band, the mid just inside it, and the far-side price of a limit state."""
    bands, half, tick = stock.bands, stock.half_spread, stock.tick
    if down:
        band = bands.lower
        near = band + tick + half  # bid one tick above the lower band: no straddle
        far = max(tick, band - 2 * half)
    else:
        band = bands.upper
        near = band - tick - half
        far = band + 2 * half
    return band, near, far


def _glide(
    s: _Session, stock: _Stock, start: int, every: int, *, src: Decimal, dst: Decimal
) -> int:
    """Five all-venue quote bursts moving the mid from ``src`` to ``dst``; returns the last time."""
    ms = start
    for i in range(1, 6):
        mid = round_half_up(src + (dst - src) * i / 5, stock.tick)
        s.quote_mid(ms, stock, mid)
        ms += every
    return ms - every


def _limit_state(s: _Session, stock: _Stock, t: int, down: bool) -> Decimal:
    """Run the price to the band by ``t`` and hold a limit state there; returns the near mid."""
    band, near, far = _band_quotes(stock, down)
    _glide(s, stock, t - 20 * _SECOND, 4 * _SECOND, src=stock.mid, dst=near)
    if down:
        s.quote_all(t, stock, far, band)  # national best offer at the lower band
    else:
        s.quote_all(t, stock, band, far)  # national best bid at the upper band
    return near


def _limit_resolved(s: _Session, stock: _Stock, t: int, down: bool) -> int:
    rng = s.rng
    near = _limit_state(s, stock, t, down)
    lasted = rng.randint(3 * _SECOND, 12 * _SECOND)
    kind = "LIMIT_DOWN" if down else "LIMIT_UP"
    s.label(t, stock.name, "LIMIT_STATE", kind, f"quotes leave the band after {lasted} ms")
    # The quotes at the band are cancelled in full within 15 s: the limit state ends.
    s.quote_mid(t + lasted, stock, near)
    stock.level = 0
    return _glide(s, stock, t + lasted + 6 * _SECOND, 6 * _SECOND, src=near, dst=stock.anchor)


def _limit_paused(s: _Session, stock: _Stock, t: int, down: bool) -> int:
    rng = s.rng
    band = _band_quotes(stock, down)[0]
    _limit_state(s, stock, t, down)
    kind = "LIMIT_DOWN" if down else "LIMIT_UP"
    paused = t + 15 * _SECOND
    s.label(t, stock.name, "LIMIT_STATE", kind, "lasts 15 s: LULD pause")
    s.label(paused, stock.name, "PAUSE", "LUDP", "declared when the limit state reaches 15 s")
    halt = pb.HaltMessage(reason_code="LUDP", venue=stock.profile.listing)
    halt.expected_trade_resumption.FromDatetime(s.at(paused + 5 * _MINUTE))
    s.event(paused + rng.randint(500, 4000), stock.name, halt=halt)
    # Reopening auction after 5 minutes, near the band that was hit (new reference price).
    reopen = paused + 5 * _MINUTE + rng.randint(0, 5 * _SECOND)
    offset = band * Decimal(rng.randint(0, 10)) / 1000
    price = round_half_up(band + offset if down else band - offset, PENNY)
    return _reopen(s, stock, reopen, price, "LUDP")


def _news_halt(s: _Session, stock: _Stock, t: int) -> int:
    rng = s.rng
    s.event(t, stock.name, halt=pb.HaltMessage(reason_code="T1", venue=stock.profile.listing))
    s.label(t, stock.name, "HALT", "T1", "news pending")
    quotes = t + 4 * _MINUTE + rng.randint(0, 30 * _SECOND)
    resumption = pb.ResumeMessage(reason_code="T3", phase=pb.RESUMPTION_PHASE_QUOTES)
    s.event(quotes, stock.name, resume=resumption)
    move = Decimal(rng.choice((-1, 1)) * rng.randint(10, 30)) / 1000
    price = round_half_up(stock.anchor * (1 + move), PENNY)
    stock.set_anchor(price)
    s.quote_mid(quotes, stock, price)
    trading = quotes + 2 * _MINUTE + rng.randint(0, 30 * _SECOND)
    return _reopen(s, stock, trading, price, "T3")


def _reopen(s: _Session, stock: _Stock, ms: int, price: Decimal, code: str = "") -> int:
    """The listing exchange's reopening print (new reference price), resume, fresh quotes."""
    rng = s.rng
    stock.set_anchor(price)
    s.trade(
        ms,
        stock,
        price,
        100 * rng.randint(10, 100),
        venue=stock.profile.listing,
        kind=pb.TRADE_TYPE_REOPENING,
    )
    if code:
        resume = pb.ResumeMessage(reason_code=code, phase=pb.RESUMPTION_PHASE_TRADING)
        s.event(ms, stock.name, resume=resume)
    s.quote_mid(ms, stock, price)
    return ms


def _short_sale(s: _Session, stock: _Stock, t: int) -> int:
    rng = s.rng
    # A dip to at most 90% of the prior close: quotes first, then a print at the bid.
    dip = Decimal(rng.randint(0, 4)) / 1000
    stock.set_anchor((stock.trigger * (1 - dip)).quantize(PENNY, rounding=ROUND_DOWN))
    s.quote_mid(t, stock, stock.anchor)
    bid = stock.anchor - stock.half_spread
    s.trade(t, stock, bid, 100 * rng.randint(2, 10), venue=rng.choice(VENUES))
    return t


# --- the session ---------------------------------------------------------------------------------


def _index(s: _Session, crossing: int, end: int) -> None:
    """S&P 500 levels every 15 s, crossing the Level 1 trigger at ``crossing`` exactly."""
    rng = s.rng
    prior = _price(rng, Decimal(4800), Decimal(6200))
    level1 = round_half_up(prior * (1 - _MWC1), PENNY)
    level2 = round_half_up(prior * (1 - _MWC2), PENNY)
    start = prior * (1 - Decimal(rng.randint(4, 12)) / 1000)
    first = pb.IndexLevel(
        index=INDEX, level=str(round_half_up(start, PENNY)), prior_close=str(prior)
    )
    s.event(0, "", index_level=first)
    ms = 15 * _SECOND
    while ms < end:
        if ms < crossing:
            share = Decimal(ms) / crossing
            value = start + (level1 + 3 - start) * share * share
            value += Decimal(rng.randint(-50, 50)) / 100
            value = max(value, level1 + Decimal("0.50"))
        else:
            value = level1 * (1 - Decimal(rng.randint(-3, 15)) / 10_000)
            value = max(value, level2 + 50)
        level = pb.IndexLevel(index=INDEX, level=str(round_half_up(value, PENNY)))
        s.event(ms + rng.randint(0, 999), "", index_level=level)
        ms += 15 * _SECOND
    cross = round_half_up(level1 - Decimal(rng.randint(1, 300)) / 100, PENNY)
    s.event(crossing, "", index_level=pb.IndexLevel(index=INDEX, level=str(cross)))
    s.label(crossing, "", "CIRCUIT_BREAKER", "MWC1", f"S&P 500 {cross} <= Level 1 {level1}")


def _schedule(s: _Session, stocks: list[_Stock], roles: dict[int, _Role]) -> int:
    """Place every incident on its symbol; returns the circuit breaker time."""
    rng = s.rng
    for i, role in sorted(roles.items()):
        down = (i // len(_Role)) % 2 == 0  # sets alternate: limit down, then limit up
        stock = stocks[i]
        if role is _Role.LIMIT_RESOLVED:
            t = 5 * _MINUTE + rng.randint(0, 2 * _MINUTE)
            stock.episodes.append((t - 20 * _SECOND, t, "down" if down else "up"))
        elif role is _Role.NEWS_HALT:
            t = 8 * _MINUTE + rng.randint(0, 2 * _MINUTE)
            stock.episodes.append((t, t, "news"))
        elif role is _Role.LIMIT_PAUSED:
            t = 11 * _MINUTE + rng.randint(0, 2 * _MINUTE)
            stock.episodes.append((t - 20 * _SECOND, t, "pause-down" if down else "pause-up"))
        else:
            t = 20 * _MINUTE + rng.randint(0, 3 * _MINUTE)
            stock.episodes.append((t, t, "short-sale"))
    crossing = 26 * _MINUTE + rng.randint(0, 2 * _MINUTE)
    for stock in stocks:
        stock.episodes.append((crossing, crossing, "breaker"))
    return crossing


def _run(s: _Session, stock: _Stock, crossing: int, end: int) -> None:
    rng = s.rng
    listing = stock.profile.listing
    reference = pb.ReferenceData(
        tier=common.TIER_1 if stock.profile.tier is Tier.TIER_1 else common.TIER_2,
        listing_exchange=listing,
        prior_close=str(stock.prior_close),
        trade_date=s.day.isoformat(),
    )
    s.event(_REFERENCE_AT, stock.name, reference_data=reference)
    opened = rng.randint(0, 500)
    s.trade(
        opened,
        stock,
        stock.anchor,
        100 * rng.randint(10, 200),
        venue=listing,
        kind=pb.TRADE_TYPE_OPENING,
    )
    s.quote_mid(opened, stock, stock.anchor)
    clock = opened + 1
    for start, t, script in sorted(stock.episodes):
        _walk(s, stock, clock, start)
        if script in ("down", "up"):
            clock = _limit_resolved(s, stock, t, script == "down")
        elif script in ("pause-down", "pause-up"):
            clock = _limit_paused(s, stock, t, script == "pause-down")
        elif script == "news":
            clock = _news_halt(s, stock, t)
        elif script == "short-sale":
            clock = _short_sale(s, stock, t)
        else:  # the market-wide halt: 15 minutes, then the listing exchange reopens the stock
            reopen = crossing + 15 * _MINUTE + rng.randint(_SECOND, 30 * _SECOND)
            clock = _reopen(s, stock, reopen, stock.anchor)
        clock += 1
    _walk(s, stock, clock, end)


def generate(spec: SessionSpec, calendar: TradingCalendar | None = None) -> str:
    """Return the JSON Lines text of the session ``spec`` describes (same spec, same text).

    Raises:
        GeneratorError: The parameters cannot make a session (too few symbols, too long).
    """
    calendar = calendar or TradingCalendar.default()
    day = _trade_date(spec, calendar)
    _check(spec, calendar, day)
    s = _Session(spec, day)
    rng = s.rng
    roles: dict[int, _Role] = {}
    for first in range(0, spec.symbols - len(_Role) + 1, len(_Role)):
        assigned = list(_Role)
        rng.shuffle(assigned)
        roles.update({first + k: role for k, role in enumerate(assigned)})
    stocks = _stocks(s, roles)
    crossing = _schedule(s, stocks, roles)
    end = spec.minutes * _MINUTE
    _index(s, crossing, end)
    for stock in stocks:
        _run(s, stock, crossing, end)
    header = {
        "session": {
            "format": FORMAT,
            "generator": GENERATOR,
            "seed": spec.seed,
            "symbols": spec.symbols,
            "tradeDate": day.isoformat(),
            "minutes": spec.minutes,
            "quoteIntervalSeconds": spec.quote_interval,
            "tradeIntervalSeconds": spec.trade_interval,
        }
    }
    return s.text(header)


def write(path: Path, spec: SessionSpec) -> tuple[int, int, int]:
    """Write a session to ``path``; returns (events, labels, bytes)."""
    text = generate(spec)
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    labels = sum(1 for line in lines if line.startswith('{"label"'))
    return len(lines) - labels - 1, labels, len(text.encode())
