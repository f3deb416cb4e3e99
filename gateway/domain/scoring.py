"""Multi-factor venue scoring settings: weights, size tiers, time of day and symbol overrides.

Each factor is normalised to 0..1 across the candidate venues of one decision (1 = best), so a
weight is the share of the score the factor can move. Latency is normalised over at least
``latency_scale_us``: with venues 45 and 60 us away, min-max alone would give those 15 us the
latency weight's whole range, as much as 45 against 500 us; with the span floor a difference
counts in proportion to its size until it reaches the scale. Adjustments (size tier, time of day)
are multipliers on the base weights, renormalised to sum to 1; every combination is precomputed
once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal

from gateway.domain.vocabulary import Vocabulary
from gateway.errors import ConfigurationError


class RoutingFactor(Vocabulary):
    """A scored factor (proto ``RoutingFactor``), in the order of every per-factor tuple."""

    SPREAD = "SPREAD"
    LATENCY = "LATENCY"
    FEES = "FEES"
    FILL_PROBABILITY = "FILL_PROBABILITY"


FACTORS = tuple(RoutingFactor)

Multipliers = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class ScoringWeights:
    """Base weight of each factor; the four must be >= 0 and sum to 1."""

    spread: float = 0.40
    latency: float = 0.30
    fees: float = 0.20
    fill_probability: float = 0.10

    def __post_init__(self) -> None:
        values = self.as_tuple()
        problems = [
            f"routing weight {f.value.lower()}: must be >= 0, not {v}"
            for f, v in zip(FACTORS, values, strict=True)
            if not (v >= 0 and math.isfinite(v))
        ]
        if not math.isclose(sum(values), 1.0, abs_tol=1e-9):
            problems.append(f"routing weights: must sum to 1, not {sum(values):.6f}")
        if problems:
            raise ConfigurationError(problems)

    def as_tuple(self) -> Multipliers:
        return (self.spread, self.latency, self.fees, self.fill_probability)


class SizeTier(Vocabulary):
    """Order size class (proto ``SizeTier``)."""

    SMALL = "SMALL"
    MEDIUM = "MEDIUM"
    LARGE = "LARGE"
    BLOCK = "BLOCK"

    # Members are singletons: identity hashing is correct and much cheaper than Enum.__hash__,
    # which matters because tiers key several hot-path lookups.
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class SizeTierThresholds:
    """Lower bounds of each tier by shares and by notional; the larger of the two tiers wins.

    The block bounds follow the customary NYSE/FINRA block definition (10,000 shares or $200,000).
    """

    medium_shares: int = 500
    large_shares: int = 2_000
    block_shares: int = 10_000
    medium_notional: Decimal = Decimal("25000")
    large_notional: Decimal = Decimal("100000")
    block_notional: Decimal = Decimal("200000")

    def tier(self, quantity: int, price: Decimal | None) -> SizeTier:
        """Return the tier of ``quantity`` shares at reference ``price`` (None: shares only)."""
        notional = quantity * price if price is not None else Decimal(0)
        if quantity >= self.block_shares or notional >= self.block_notional:
            return SizeTier.BLOCK
        if quantity >= self.large_shares or notional >= self.large_notional:
            return SizeTier.LARGE
        if quantity >= self.medium_shares or notional >= self.medium_notional:
            return SizeTier.MEDIUM
        return SizeTier.SMALL


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """Behaviour of a size tier.

    Attributes:
        split: a marketable order may be split across venues (sweep); otherwise one child at the
            best-scored venue at the NBBO price, the rest resting there.
        weight_multipliers: per-factor multipliers (spread, latency, fees, fill probability).
        post_remainder_hidden: the posted remainder is hidden where the venue supports it.
    """

    split: bool = True
    weight_multipliers: Multipliers = (1.0, 1.0, 1.0, 1.0)
    post_remainder_hidden: bool = False


DEFAULT_TIER_POLICIES: Mapping[SizeTier, TierPolicy] = {
    SizeTier.SMALL: TierPolicy(split=True),
    SizeTier.MEDIUM: TierPolicy(split=True),
    # Larger orders care more that the shares are there than about a few microseconds.
    SizeTier.LARGE: TierPolicy(split=True, weight_multipliers=(1.0, 0.5, 1.0, 2.0)),
    SizeTier.BLOCK: TierPolicy(
        split=True, weight_multipliers=(1.0, 0.5, 0.75, 3.0), post_remainder_hidden=True
    ),
}


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Weight multipliers in force from ``start`` (inclusive) to ``end`` (exclusive), ET."""

    name: str
    start: time
    end: time
    weight_multipliers: Multipliers


DEFAULT_TIME_WINDOWS = (
    # Around the open spreads are wide and quotes fade: price and fill matter more than fees.
    TimeWindow("OPEN", time(9, 30), time(9, 45), (1.25, 0.75, 0.5, 2.0)),
    # Into the close liquidity concentrates on the listing venues: fill probability matters.
    TimeWindow("CLOSE", time(15, 45), time(16, 0), (1.0, 0.75, 0.75, 2.0)),
)


@dataclass(frozen=True, slots=True)
class SymbolOverride:
    """Per-symbol routing preferences: a score bonus for preferred venues, and exclusions."""

    preferred_venues: tuple[str, ...] = ()
    preferred_bonus: float = 0.05
    excluded_venues: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ScoringSettings:
    """All scoring settings; ``weights_for`` is a table lookup precomputed at construction."""

    weights: ScoringWeights = field(default_factory=ScoringWeights)
    tiers: Mapping[SizeTier, TierPolicy] = field(default_factory=lambda: DEFAULT_TIER_POLICIES)
    time_windows: tuple[TimeWindow, ...] = DEFAULT_TIME_WINDOWS
    size_thresholds: SizeTierThresholds = field(default_factory=SizeTierThresholds)
    symbol_overrides: Mapping[str, SymbolOverride] = field(default_factory=dict)
    latency_scale_us: float = 50.0
    _table: dict[tuple[SizeTier, int], Multipliers] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _minute_window: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = [f"tier {t.value}: missing policy" for t in SizeTier if t not in self.tiers]
        scale = self.latency_scale_us
        if not (scale >= 0 and math.isfinite(scale)):
            problems.append(f"latency scale: must be finite and >= 0 us, not {scale}")
        for window in self.time_windows:
            if window.end <= window.start:
                problems.append(f"time window {window.name}: end must be after start")
            if any(m < 0 for m in window.weight_multipliers):
                problems.append(f"time window {window.name}: multipliers must be >= 0")
        if problems:
            raise ConfigurationError(problems)
        base = self.weights.as_tuple()
        windows: Sequence[Multipliers] = [(1.0, 1.0, 1.0, 1.0)] + [
            w.weight_multipliers for w in self.time_windows
        ]
        for tier, policy in self.tiers.items():
            for index, window_mult in enumerate(windows):
                raw = [
                    b * t * w
                    for b, t, w in zip(base, policy.weight_multipliers, window_mult, strict=True)
                ]
                total = sum(raw) or 1.0
                self._table[(tier, index)] = (
                    raw[0] / total,
                    raw[1] / total,
                    raw[2] / total,
                    raw[3] / total,
                )
        minute_window = [0] * (24 * 60)
        for index, window in enumerate(self.time_windows, start=1):
            first = window.start.hour * 60 + window.start.minute
            last = window.end.hour * 60 + window.end.minute
            for minute in range(first, last):
                if minute_window[minute] == 0:
                    minute_window[minute] = index
        object.__setattr__(self, "_minute_window", tuple(minute_window))

    def window_index(self, minute_of_day: int) -> int:
        """Return 0 outside every window, else 1 + the index of the first matching window."""
        return self._minute_window[minute_of_day]

    def weights_for(self, tier: SizeTier, minute_of_day: int) -> Multipliers:
        """Return the effective weights for ``tier`` at ``minute_of_day`` (ET, 0..1439)."""
        return self._table[(tier, self._minute_window[minute_of_day])]
