"""Venue profiles: latency, fees, liquidity, capabilities and operator status of each venue.

Profiles are loaded from a TOML file (defaults ship in ``gateway/data/venues.toml``), validated with
every problem listed at once, and held in an immutable ``VenueSet``. Changing a status (the
``SetVenueStatus`` RPC) or reloading the file yields a new ``VenueSet`` with a higher ``version``;
the router precomputes per-version tables from it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.domain.access_fees import AccessFeeCapTable
from gateway.domain.prices import ONE_DOLLAR
from gateway.domain.vocabulary import Vocabulary
from gateway.errors import ConfigurationError, NotFound

ZERO = Decimal(0)


class VenueStatus(Vocabulary):
    """Routing status of a venue (proto ``VenueStatus``)."""

    UP = "UP"
    DOWN = "DOWN"  # taken out by an operator
    TRIPPED = "TRIPPED"  # taken out by the failover breaker
    PROBATION = "PROBATION"  # back from a trip, under observation

    @property
    def routable(self) -> bool:
        return self is VenueStatus.UP or self is VenueStatus.PROBATION


@dataclass(frozen=True, slots=True)
class VenueFees:
    """Fee schedule. Positive take fee = the taker pays; positive make rebate = the maker is paid.

    Inverted venues have a negative take fee and a negative make rebate. Amounts at or above $1.00
    are per share; below $1.00 they are a fraction of the traded value.
    """

    take_fee_per_share: Decimal
    make_rebate_per_share: Decimal
    take_fee_rate_below_1: Decimal = ZERO
    make_rebate_rate_below_1: Decimal = ZERO
    routed_fee_per_share: Decimal = ZERO
    auction_fee_per_share: Decimal = ZERO

    def take_fee(self, price: Decimal) -> Decimal:
        """Return the fee per share for removing liquidity at ``price``."""
        if price >= ONE_DOLLAR:
            return self.take_fee_per_share
        return price * self.take_fee_rate_below_1

    def make_rebate(self, price: Decimal) -> Decimal:
        """Return the rebate per share for adding liquidity at ``price``."""
        if price >= ONE_DOLLAR:
            return self.make_rebate_per_share
        return price * self.make_rebate_rate_below_1


@dataclass(frozen=True, slots=True)
class VenueCapabilities:
    post_only: bool = True
    hidden: bool = True
    midpoint_peg: bool = True
    intermarket_sweep: bool = True
    listing_auctions: bool = False


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """Everything the router knows about one venue (proto ``Venue`` without learned values)."""

    venue: str
    name: str
    latency_typical_us: int
    latency_tail_us: int
    access_delay_us: int
    fees: VenueFees
    liquidity_score: float
    capabilities: VenueCapabilities
    fill_probability_prior: float
    status: VenueStatus = VenueStatus.UP
    status_reason: str = ""
    status_changed_at: datetime | None = None

    @property
    def effective_latency_us(self) -> int:
        """Typical latency plus the speed bump: what a taking order experiences."""
        return self.latency_typical_us + self.access_delay_us


class VenueSet:
    """Immutable, versioned set of venue profiles in configuration order."""

    __slots__ = ("_by_name", "_profiles", "version")

    def __init__(self, profiles: Iterable[VenueProfile], version: int = 1) -> None:
        self._profiles = tuple(profiles)
        self._by_name = {p.venue: p for p in self._profiles}
        self.version = version

    def __iter__(self) -> Iterator[VenueProfile]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, venue: object) -> bool:
        return venue in self._by_name

    @property
    def profiles(self) -> tuple[VenueProfile, ...]:
        return self._profiles

    def get(self, venue: str) -> VenueProfile | None:
        return self._by_name.get(venue)

    def __getitem__(self, venue: str) -> VenueProfile:
        profile = self._by_name.get(venue)
        if profile is None:
            raise NotFound(f"unknown venue {venue!r}", reason="UNKNOWN_VENUE")
        return profile

    def with_status(self, venue: str, status: VenueStatus, reason: str, at: datetime) -> VenueSet:
        """Return a new version with ``venue`` set to ``status`` (operator UP/DOWN)."""
        current = self[venue]
        changed = replace(current, status=status, status_reason=reason, status_changed_at=at)
        return VenueSet(
            (changed if p.venue == venue else p for p in self._profiles), self.version + 1
        )

    def reloaded(self, profiles: Iterable[VenueProfile]) -> VenueSet:
        """Return a new version holding ``profiles`` (a config reload without restart)."""
        return VenueSet(profiles, self.version + 1)


_FEE_KEYS = frozenset(
    {
        "take_fee_per_share",
        "make_rebate_per_share",
        "take_fee_rate_below_1",
        "make_rebate_rate_below_1",
        "routed_fee_per_share",
        "auction_fee_per_share",
    }
)
_CAPABILITY_KEYS = frozenset(
    {"post_only", "hidden", "midpoint_peg", "intermarket_sweep", "listing_auctions"}
)
_VENUE_KEYS = frozenset(
    {
        "name",
        "status",
        "latency_typical_us",
        "latency_tail_us",
        "access_delay_us",
        "liquidity_score",
        "fill_probability_prior",
        "fees",
        "capabilities",
    }
)


def parse_venues(
    document: Mapping[str, Any], *, trade_date: date, fee_caps: AccessFeeCapTable
) -> VenueSet:
    """Validate a parsed venues document (``[venues.<CODE>]`` tables) into a ``VenueSet``.

    Raises:
        ConfigurationError: listing every problem, including a take fee above the Rule 610(c)
            cap in force on ``trade_date``.
    """
    problems: list[str] = []
    unknown_top = set(document) - {"venues"}
    problems.extend(f"{key}: unknown key" for key in sorted(unknown_top))
    venues = document.get("venues")
    if not isinstance(venues, Mapping) or not venues:
        problems.append("venues: needs at least one [venues.<CODE>] table")
        raise ConfigurationError(problems)
    cap = fee_caps.in_force(trade_date)
    profiles = []
    for code, table in venues.items():
        profile = _parse_venue(str(code), table, problems)
        if profile is None:
            continue
        fees = profile.fees
        if fees.take_fee_per_share > cap.per_share:
            problems.append(
                f"venues.{code}.fees.take_fee_per_share: {fees.take_fee_per_share} exceeds the "
                f"Rule 610(c) access fee cap {cap.per_share} in force on {trade_date} "
                f"(since {cap.effective})"
            )
        if fees.take_fee_rate_below_1 > cap.rate_below_1:
            problems.append(
                f"venues.{code}.fees.take_fee_rate_below_1: {fees.take_fee_rate_below_1} exceeds "
                f"the Rule 610(c) access fee cap {cap.rate_below_1} in force on {trade_date} "
                f"(since {cap.effective})"
            )
        profiles.append(profile)
    if problems:
        raise ConfigurationError(problems)
    return VenueSet(profiles)


def load_venues(
    path: Path | None = None,
    *,
    trade_date: date,
    fee_caps: AccessFeeCapTable | None = None,
) -> VenueSet:
    """Load venue profiles from ``path``, or the shipped defaults when ``path`` is None."""
    if path is None:
        text = resources.files("gateway").joinpath("data/venues.toml").read_text("utf-8")
        source = "gateway/data/venues.toml"
    else:
        text = path.read_text("utf-8")
        source = str(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError([f"{source}: {exc}"]) from exc
    return parse_venues(document, trade_date=trade_date, fee_caps=fee_caps or AccessFeeCapTable())


def _parse_venue(code: str, table: Any, problems: list[str]) -> VenueProfile | None:
    where = f"venues.{code}"
    if not isinstance(table, Mapping):
        problems.append(f"{where}: must be a table")
        return None
    before = len(problems)
    if not code.isupper() or not code.replace("_", "").isalnum():
        problems.append(f"{where}: venue code must be upper-case letters, digits and _")
    problems.extend(f"{where}.{k}: unknown key" for k in sorted(set(table) - _VENUE_KEYS))
    name = table.get("name", code)
    if not isinstance(name, str):
        problems.append(f"{where}.name: must be a string")
    status = VenueStatus.UP
    raw_status = table.get("status", "UP")
    if raw_status not in ("UP", "DOWN"):
        problems.append(f"{where}.status: must be UP or DOWN, not {raw_status!r}")
    else:
        status = VenueStatus(raw_status)
    typical = _int(table, "latency_typical_us", where, problems, required=True)
    tail = _int(table, "latency_tail_us", where, problems, required=True)
    delay = _int(table, "access_delay_us", where, problems, required=False)
    if typical is not None and tail is not None and tail < typical:
        problems.append(f"{where}.latency_tail_us: must not be below latency_typical_us")
    liquidity = _fraction(table, "liquidity_score", where, problems, default=None)
    prior = _fraction(table, "fill_probability_prior", where, problems, default=liquidity)
    fees = _fees(table.get("fees"), f"{where}.fees", problems)
    capabilities = _capabilities(table.get("capabilities", {}), f"{where}.capabilities", problems)
    if len(problems) > before:
        return None
    assert typical is not None and tail is not None and liquidity is not None
    assert prior is not None and fees is not None and capabilities is not None
    return VenueProfile(
        venue=code,
        name=str(name),
        latency_typical_us=typical,
        latency_tail_us=tail,
        access_delay_us=delay or 0,
        fees=fees,
        liquidity_score=liquidity,
        capabilities=capabilities,
        fill_probability_prior=prior,
        status=status,
        status_reason="configured" if status is VenueStatus.DOWN else "",
    )


def _int(
    table: Mapping[str, Any], key: str, where: str, problems: list[str], *, required: bool
) -> int | None:
    value = table.get(key)
    if value is None:
        if required:
            problems.append(f"{where}.{key}: is required")
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        problems.append(f"{where}.{key}: must be a whole number >= 0, not {value!r}")
        return None
    return value


def _fraction(
    table: Mapping[str, Any],
    key: str,
    where: str,
    problems: list[str],
    *,
    default: float | None,
) -> float | None:
    value = table.get(key)
    if value is None:
        if default is None:
            problems.append(f"{where}.{key}: is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        problems.append(f"{where}.{key}: must be a number from 0 to 1, not {value!r}")
        return None
    return float(value)


def _fees(table: Any, where: str, problems: list[str]) -> VenueFees | None:
    if not isinstance(table, Mapping):
        problems.append(f"{where}: is required and must be a table")
        return None
    problems.extend(f"{where}.{k}: unknown key" for k in sorted(set(table) - _FEE_KEYS))
    values: dict[str, Decimal] = {}
    for key in sorted(_FEE_KEYS):
        raw = table.get(key)
        if raw is None:
            if key in ("take_fee_per_share", "make_rebate_per_share"):
                problems.append(f"{where}.{key}: is required")
            continue
        if not isinstance(raw, str):
            problems.append(f'{where}.{key}: must be a decimal string like "0.0030"')
            continue
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            problems.append(f"{where}.{key}: {raw!r} is not a decimal number")
            continue
        if not amount.is_finite() or abs(amount) >= 1:
            problems.append(f"{where}.{key}: {raw!r} is out of range")
            continue
        values[key] = amount
    if "take_fee_per_share" not in values or "make_rebate_per_share" not in values:
        return None
    return VenueFees(**values)


def _capabilities(table: Any, where: str, problems: list[str]) -> VenueCapabilities | None:
    if not isinstance(table, Mapping):
        problems.append(f"{where}: must be a table")
        return None
    problems.extend(f"{where}.{k}: unknown key" for k in sorted(set(table) - _CAPABILITY_KEYS))
    flags: dict[str, bool] = {}
    for key in _CAPABILITY_KEYS & set(table):
        if not isinstance(table[key], bool):
            problems.append(f"{where}.{key}: must be true or false")
        else:
            flags[key] = table[key]
    return VenueCapabilities(**flags)
