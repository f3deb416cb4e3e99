"""A simulated trading day through the router, scored in hindsight (``execgw replay --route``).

The deterministic venue simulator (``gateway/domain/venue_simulator.py``) plays a day of orders
over many symbols against per-venue books, latencies, queue positions and the fill outcomes of its
market model (``gateway/domain/market_model.py``: fades, print-triggered fades, midpoint
liquidity, re-routes); every
order goes through the router built from the gateway's own settings (weights, quote age, size
tiers, breaker, fill-probability learning) and venue profile file, and the fills are analysed
like ``GetRoutingReport`` analyses live ones: accuracy, slippage against the listing-exchange and
lowest-fee baselines, cost savings per venue. Same seed and settings, same figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from datetime import time as dt_time
from decimal import Decimal
from typing import Any

from gateway.domain.calendar import EXCHANGE_TZ, TradingCalendar
from gateway.domain.routing_analysis import Liquidity, RoutingReport, hindsight_best_cost
from gateway.domain.venue_simulator import SimulatedDay, SimulationSettings, simulate_day
from gateway.domain.venues import load_venues
from gateway.errors import ConfigurationError
from gateway.settings import Settings

# The quality targets, the defaults of the verdict.
TARGET_ACCURACY = 0.95
TARGET_SLIPPAGE_REDUCTION_PCT = 10.0
DEFAULT_DAY = date(2026, 11, 24)


@dataclass(frozen=True, slots=True)
class RoutingDayRun:
    """A simulated day and what it took."""

    day: SimulatedDay
    simulation: SimulationSettings
    seconds: float
    hindsight_best_cost_per_share: Decimal

    @property
    def report(self) -> RoutingReport:
        return self.day.report


def run_day(
    settings: Settings,
    *,
    orders: int = 20_000,
    symbols: int = 50,
    seed: int | None = None,
    trade_date: date | None = None,
) -> RoutingDayRun:
    """Simulate ``orders`` orders over ``symbols`` symbols on ``trade_date`` through the router.

    Raises:
        ConfigurationError: a bad count, a day that is not a trading day, or an invalid venue
            profile file.
    """
    # The server module is the composition root: the same settings -> router mapping as serving.
    from gateway.server import (
        analysis_settings,
        fill_probability_settings,
        health_settings,
        router_settings,
    )

    day = trade_date or DEFAULT_DAY
    problems = []
    if orders < 1:
        problems.append(f"orders={orders}: must be >= 1")
    if symbols < 1:
        problems.append(f"symbols={symbols}: must be >= 1")
    calendar = TradingCalendar.default()
    if not (calendar.covers(day) and calendar.is_trading_day(day)):
        problems.append(f"date={day}: not a trading day of the shipped calendar")
    if problems:
        raise ConfigurationError(problems)
    simulation = replace(
        SimulationSettings(),
        orders=orders,
        symbols=symbols,
        start=datetime.combine(day, dt_time(9, 30), tzinfo=EXCHANGE_TZ).astimezone(UTC),
        analysis=analysis_settings(settings),
    )
    if seed is not None:
        simulation = replace(simulation, seed=seed)
    venues = load_venues(settings.venue_profiles_file, trade_date=day)
    started = time.perf_counter()
    result = simulate_day(
        venues,
        simulation,
        router_settings(settings),
        health_settings=health_settings(settings),
        fill_settings=fill_probability_settings(settings),
    )
    elapsed = time.perf_counter() - started
    return RoutingDayRun(result, simulation, elapsed, hindsight_best_cost(result.costs))


def verdict(
    report: RoutingReport,
    min_accuracy: float = TARGET_ACCURACY,
    min_slippage_reduction_pct: float = TARGET_SLIPPAGE_REDUCTION_PCT,
) -> tuple[bool, str]:
    """Return whether the day meets the targets, and a sentence saying which were missed."""
    missed = []
    if report.accuracy < min_accuracy:
        missed.append(f"routing accuracy {report.accuracy:.2%} < {min_accuracy:.2%}")
    if report.slippage_reduction_vs_listing_pct < min_slippage_reduction_pct:
        missed.append(
            f"slippage {report.slippage_reduction_vs_listing_pct:.1f}% lower than the listing "
            f"exchange < {min_slippage_reduction_pct:.1f}%"
        )
    if missed:
        return False, "; ".join(missed)
    return True, (
        f"accuracy >= {min_accuracy:.2%} and slippage >= {min_slippage_reduction_pct:.1f}% lower "
        "than the listing exchange"
    )


def _reduction(baseline: Decimal, cost: Decimal) -> float:
    return float((baseline - cost) / abs(baseline) * 100) if baseline else 0.0


def format_report(run: RoutingDayRun) -> str:
    """The report as an operator reads it."""
    day, r, sim = run.day, run.report, run.simulation
    ordered = sum(d.quantity for d in day.decisions)
    filled = sum(f.quantity for f in day.fills)
    added = sum(f.quantity for f in day.fills if f.liquidity is Liquidity.ADDED)
    oracle = run.hindsight_best_cost_per_share
    lines = [
        f"simulated routing day {sim.start.astimezone(EXCHANGE_TZ).date()}: {sim.orders} orders, "
        f"{sim.symbols} symbols, seed {sim.seed} ({run.seconds:.1f} s)",
        f"  decisions {r.decisions}, with fills {r.decisions_with_fills}, child orders "
        f"{day.children}, fills {len(day.fills)}, refusals {dict(day.refusals) or 0}, "
        f"fallbacks named {day.fallbacks}",
        f"  shares filled {filled / ordered if ordered else 0:.1%} of ordered, "
        f"{added / filled if filled else 0:.1%} of them added liquidity (costs count filled "
        "shares)",
        f"  routing accuracy            {r.accuracy:.2%} "
        f"(tolerance ${r.tolerance_per_share}/share)",
        f"  realised all-in cost        ${r.realized_cost_per_share}/share vs arrival mid",
        f"  listing-exchange baseline   ${r.baseline_listing_cost_per_share}/share: slippage "
        f"{r.slippage_reduction_vs_listing_pct:.1f}% lower",
        f"  lowest-fee baseline         ${r.baseline_lowest_fee_cost_per_share}/share: slippage "
        f"{r.slippage_reduction_vs_lowest_fee_pct:.1f}% lower",
        f"  hindsight-best route each   ${oracle}/share: "
        f"{_reduction(r.baseline_listing_cost_per_share, oracle):.1f}% lower than the listing "
        "exchange (own route or one venue, whichever was cheaper)",
        f"  cost savings vs listing baseline ${r.total_cost_savings}",
        f"  {'venue':<10} {'decisions':>9} {'shares':>10} {'accuracy':>8} {'cost/sh':>10} "
        "savings vs listing",
    ]
    lines.extend(
        f"  {v.venue:<10} {v.decisions:>9} {v.filled_shares:>10} {v.accuracy:>8.1%} "
        f"{v.realized_cost_per_share:>10} ${v.cost_savings}"
        for v in r.venues
    )
    return "\n".join(lines)


def to_json(run: RoutingDayRun) -> dict[str, Any]:
    """The report as a JSON document (money and costs as decimal strings)."""
    r, sim = run.report, run.simulation
    return {
        "trade_date": str(sim.start.astimezone(EXCHANGE_TZ).date()),
        "orders": sim.orders,
        "symbols": sim.symbols,
        "seed": sim.seed,
        "decisions": r.decisions,
        "decisions_with_fills": r.decisions_with_fills,
        "refusals": dict(run.day.refusals),
        "fallbacks": run.day.fallbacks,
        "accuracy": r.accuracy,
        "tolerance_per_share": str(r.tolerance_per_share),
        "realized_cost_per_share": str(r.realized_cost_per_share),
        "baseline_listing_cost_per_share": str(r.baseline_listing_cost_per_share),
        "baseline_lowest_fee_cost_per_share": str(r.baseline_lowest_fee_cost_per_share),
        "hindsight_best_cost_per_share": str(run.hindsight_best_cost_per_share),
        "slippage_reduction_vs_listing_pct": r.slippage_reduction_vs_listing_pct,
        "slippage_reduction_vs_lowest_fee_pct": r.slippage_reduction_vs_lowest_fee_pct,
        "total_cost_savings": str(r.total_cost_savings),
        "venues": [
            {
                "venue": v.venue,
                "decisions": v.decisions,
                "filled_shares": v.filled_shares,
                "accuracy": v.accuracy,
                "realized_cost_per_share": str(v.realized_cost_per_share),
                "cost_savings": str(v.cost_savings),
            }
            for v in r.venues
        ],
    }
