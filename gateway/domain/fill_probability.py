"""Fill probability learned online per venue, symbol bucket and size tier.

Each cell keeps exponentially decayed sums of offered and filled shares. The estimate blends them
with the venue's prior as ``prior_weight`` pseudo-shares:

    p = (filled + prior * prior_weight) / (offered + prior_weight)

so a cell starts at the prior, learns from evidence, and drifts back towards the prior as old
evidence decays (half-life setting). Decay is applied when an event is recorded; reads return the
estimate as of the cell's last event, which keeps the read a dict lookup on the routing hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.domain.scoring import SizeTier
from gateway.domain.venues import VenueProfile
from gateway.errors import ConfigurationError

DEFAULT_BUCKET = "ALL"


@dataclass(frozen=True, slots=True)
class FillProbabilitySettings:
    """Learning settings.

    Attributes:
        half_life: evidence older by this much counts half.
        prior_weight: weight of the prior, in shares of evidence.
        tier_prior_factors: the prior is scaled per tier (a block rarely fills in one go).
        symbol_buckets: symbol -> bucket name; symbols not listed share ``DEFAULT_BUCKET``.
    """

    half_life: timedelta = timedelta(minutes=30)
    prior_weight: float = 2_000.0
    tier_prior_factors: Mapping[SizeTier, float] = field(
        default_factory=lambda: {
            SizeTier.SMALL: 1.0,
            SizeTier.MEDIUM: 0.95,
            SizeTier.LARGE: 0.85,
            SizeTier.BLOCK: 0.7,
        }
    )
    symbol_buckets: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.half_life <= timedelta(0):
            problems.append("fill probability half_life: must be positive")
        if self.prior_weight <= 0:
            problems.append("fill probability prior_weight: must be positive")
        problems.extend(
            f"fill probability tier_prior_factors: missing {t.value}"
            for t in SizeTier
            if t not in self.tier_prior_factors
        )
        if problems:
            raise ConfigurationError(problems)


class _Cell:
    __slots__ = ("estimate", "filled", "last", "offered", "prior")

    def __init__(self, prior: float) -> None:
        self.prior = prior
        self.filled = 0.0
        self.offered = 0.0
        self.last: float | None = None
        self.estimate = prior


class FillProbabilityModel:
    """Online fill-probability estimates. Mutable state owned by one routing process."""

    __slots__ = ("_cells", "_half_life_s", "_priors", "_tables", "settings")

    def __init__(
        self, profiles: Iterable[VenueProfile], settings: FillProbabilitySettings | None = None
    ) -> None:
        self.settings = settings or FillProbabilitySettings()
        self._half_life_s = self.settings.half_life.total_seconds()
        self._priors = {p.venue: p.fill_probability_prior for p in profiles}
        self._cells: dict[tuple[str, str, SizeTier], _Cell] = {}
        # (bucket, tier) -> venue -> estimate: one lookup per decision on the hot path.
        self._tables: dict[tuple[str, SizeTier], dict[str, float]] = {}

    def update_venues(self, profiles: Iterable[VenueProfile]) -> None:
        """Follow a reloaded venue set: new venues start from their prior, learning is kept."""
        for profile in profiles:
            self._priors.setdefault(profile.venue, profile.fill_probability_prior)
        for bucket, tier in list(self._tables):
            for venue in self._priors:
                self._cell(venue, bucket, tier)

    def bucket(self, symbol: str) -> str:
        """Return the symbol's bucket."""
        return self.settings.symbol_buckets.get(symbol, DEFAULT_BUCKET)

    def _cell(self, venue: str, bucket: str, tier: SizeTier) -> _Cell:
        key = (venue, bucket, tier)
        cell = self._cells.get(key)
        if cell is None:
            prior = self._priors.get(venue, 0.5) * self.settings.tier_prior_factors[tier]
            cell = self._cells[key] = _Cell(min(1.0, prior))
            self._tables.setdefault((bucket, tier), {})[venue] = cell.estimate
        return cell

    def table(self, symbol: str, tier: SizeTier) -> dict[str, float]:
        """Return venue -> estimate for the symbol's bucket at ``tier`` (read-only view)."""
        bucket = self.settings.symbol_buckets.get(symbol, DEFAULT_BUCKET)
        table = self._tables.get((bucket, tier))
        if table is None:
            for venue in self._priors:
                self._cell(venue, bucket, tier)
            table = self._tables[(bucket, tier)]
        return table

    def probability(self, venue: str, symbol: str, tier: SizeTier) -> float:
        """Return the current estimate for ``venue`` and the symbol's bucket at ``tier``."""
        bucket = self.settings.symbol_buckets.get(symbol, DEFAULT_BUCKET)
        cell = self._cells.get((venue, bucket, tier))
        if cell is not None:
            return cell.estimate
        return self._cell(venue, bucket, tier).estimate

    def record(
        self,
        venue: str,
        symbol: str,
        tier: SizeTier,
        *,
        offered: int,
        filled: int,
        at: datetime,
    ) -> float:
        """Learn from one finished order (or child): ``filled`` of ``offered`` shares executed.

        The lead feeds this from the order events the gateway records: a fill adds filled shares,
        a cancel, expiry or reject closes the offered quantity. Returns the new estimate.
        """
        if offered <= 0 or filled < 0 or filled > offered:
            raise ValueError(f"need 0 <= filled <= offered and offered > 0: {filled}/{offered}")
        cell = self._cell(venue, self.bucket(symbol), tier)
        now = at.timestamp()
        if cell.last is not None and now > cell.last:
            decay = 0.5 ** ((now - cell.last) / self._half_life_s)
            cell.filled *= decay
            cell.offered *= decay
        cell.last = now if cell.last is None else max(cell.last, now)
        cell.filled += filled
        cell.offered += offered
        weight = self.settings.prior_weight
        cell.estimate = (cell.filled + cell.prior * weight) / (cell.offered + weight)
        self._tables[(self.bucket(symbol), tier)][venue] = cell.estimate
        return cell.estimate

    def estimate_at(self, venue: str, symbol: str, tier: SizeTier, now: datetime) -> float:
        """Return the estimate with decay applied up to ``now`` (reporting, not the hot path)."""
        cell = self._cell(venue, self.bucket(symbol), tier)
        filled, offered = cell.filled, cell.offered
        if cell.last is not None and now.timestamp() > cell.last:
            decay = 0.5 ** ((now.timestamp() - cell.last) / self._half_life_s)
            filled, offered = filled * decay, offered * decay
        weight = self.settings.prior_weight
        return (filled + cell.prior * weight) / (offered + weight)

    def by_tier(self, venue: str, bucket: str = DEFAULT_BUCKET) -> dict[SizeTier, float]:
        """Return the venue's estimates per tier (proto ``Venue.fill_probability``)."""
        return {tier: self._cell(venue, bucket, tier).estimate for tier in SizeTier}
