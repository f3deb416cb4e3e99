"""Reg NMS dated parameters the router enforces: the Rule 610(c) access fee cap and Rule 612 ticks.

Both are regulator-set numbers that change by order and whose 2024 amendments are adopted but
postponed, so each is a dated table: the entry in force on a trade date is the latest whose
``effective`` date is on or before it. The future entries are settings, not constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from gateway.domain.prices import ONE_DOLLAR, PENNY, SUB_PENNY
from gateway.errors import ConfigurationError

# Reg NMS Rules 610 and 611 applied to all NMS stocks from the "All Stocks Phase" date.
REG_NMS_COMPLIANCE = date(2007, 10, 8)


@dataclass(frozen=True, slots=True)
class AccessFeeCap:
    """Rule 610(c): most a venue may charge to take a protected quote.

    ``per_share`` applies to quotes at or above $1.00, ``rate_below_1`` (a fraction of the price)
    below $1.00.
    """

    effective: date
    per_share: Decimal
    rate_below_1: Decimal

    def cap_for_price(self, price: Decimal) -> Decimal:
        """Return the capped fee per share for a quote at ``price``."""
        return self.per_share if price >= ONE_DOLLAR else price * self.rate_below_1


CAP_2005 = AccessFeeCap(REG_NMS_COMPLIANCE, Decimal("0.003"), Decimal("0.003"))


def amended_cap(effective: date) -> AccessFeeCap:
    """The 2024 amendment's cap ($0.001, 0.1%) from ``effective`` (its date is postponed)."""
    return AccessFeeCap(effective, Decimal("0.001"), Decimal("0.001"))


class AccessFeeCapTable:
    """Dated Rule 610(c) caps. Without a configured amendment date only the 2005 cap applies."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[AccessFeeCap] = (CAP_2005,)) -> None:
        ordered = sorted(entries, key=lambda e: e.effective)
        if not ordered:
            raise ConfigurationError(["access fee cap table: needs at least one entry"])
        self._entries = tuple(ordered)

    @classmethod
    def with_amendment(cls, effective: date | None) -> AccessFeeCapTable:
        """Build the default table, adding the 2024 amendment from ``effective`` when given."""
        if effective is None:
            return cls()
        return cls((CAP_2005, amended_cap(effective)))

    @property
    def entries(self) -> tuple[AccessFeeCap, ...]:
        return self._entries

    def in_force(self, on: date) -> AccessFeeCap:
        """Return the cap in force on trade date ``on`` (the earliest entry before any date)."""
        current = self._entries[0]
        for entry in self._entries:
            if entry.effective <= on:
                current = entry
        return current


@dataclass(frozen=True, slots=True)
class TickRule:
    """Rule 612 minimum increments from ``effective``; ``symbol`` None applies to every symbol."""

    effective: date
    at_or_above_1: Decimal = PENNY
    below_1: Decimal = SUB_PENNY
    symbol: str | None = None


class TickTable:
    """Dated, per-symbol Rule 612 ticks (the 2024 half-penny tier is a per-symbol future entry).

    A symbol's own entries win over the general ones once in force.
    """

    __slots__ = ("_by_symbol", "_cache", "_general")

    def __init__(self, rules: Iterable[TickRule] = ()) -> None:
        general: list[TickRule] = [TickRule(REG_NMS_COMPLIANCE)]
        by_symbol: dict[str, list[TickRule]] = {}
        for rule in rules:
            if rule.symbol is None:
                general.append(rule)
            else:
                by_symbol.setdefault(rule.symbol, []).append(rule)
        self._general = tuple(sorted(general, key=lambda r: r.effective))
        self._by_symbol: Mapping[str, tuple[TickRule, ...]] = {
            s: tuple(sorted(rs, key=lambda r: r.effective)) for s, rs in by_symbol.items()
        }
        self._cache: dict[tuple[str, date], TickRule] = {}

    def rule(self, symbol: str, on: date) -> TickRule:
        """Return the rule in force for ``symbol`` on trade date ``on``."""
        key = (symbol, on)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            cached = self._cache[key] = self._lookup(symbol, on)
        return cached

    def _lookup(self, symbol: str, on: date) -> TickRule:
        own = self._by_symbol.get(symbol)
        if own:
            chosen: TickRule | None = None
            for rule in own:
                if rule.effective <= on:
                    chosen = rule
            if chosen is not None:
                return chosen
        current = self._general[0]
        for rule in self._general:
            if rule.effective <= on:
                current = rule
        return current

    def tick(self, symbol: str, price: Decimal, on: date) -> Decimal:
        """Return the minimum increment for ``symbol`` quoted at ``price`` on ``on``."""
        rule = self.rule(symbol, on)
        return rule.at_or_above_1 if price >= ONE_DOLLAR else rule.below_1
