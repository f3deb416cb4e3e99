"""A simulated trading day through the router, then the hindsight routing report.

Deterministic from the seed. Prints decisions, accuracy, costs against the listing-exchange and
lowest-fee baselines, and the cost savings per venue.

    python -m benchmarks.sim_routing_day [--orders 20000] [--symbols 50] [--seed N]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal

from gateway.domain.router import RemainderPrice, RouterSettings
from gateway.domain.routing_analysis import AnalysisSettings, Liquidity
from gateway.domain.venue_simulator import SimulationSettings, simulate_day
from gateway.domain.venues import load_venues


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--seed", type=int, default=SimulationSettings().seed)
    parser.add_argument("--tolerance", default=str(AnalysisSettings().tolerance_per_share))
    parser.add_argument(
        "--rest-at-limit",
        action="store_true",
        help="post sweep remainders at the order's limit instead of the last swept price",
    )
    args = parser.parse_args()
    settings = replace(
        SimulationSettings(),
        orders=args.orders,
        symbols=args.symbols,
        seed=args.seed,
        analysis=AnalysisSettings(Decimal(args.tolerance)),
    )
    venues = load_venues(trade_date=date(2026, 11, 24))
    started = time.perf_counter()
    rest = RemainderPrice.LIMIT if args.rest_at_limit else RemainderPrice.LAST_SWEPT
    day = simulate_day(venues, settings, RouterSettings(rest_remainder=rest))
    elapsed = time.perf_counter() - started
    r = day.report
    print(
        f"simulated day: {args.orders} orders, {args.symbols} symbols, seed {args.seed} "
        f"({elapsed:.1f} s including analysis)"
    )
    print(
        f"  decisions {r.decisions}, with fills {r.decisions_with_fills}, child orders "
        f"{day.children}, fills {len(day.fills)}, refusals {dict(day.refusals)}, "
        f"fallbacks named {day.fallbacks}"
    )
    ordered = sum(d.quantity for d in day.decisions)
    filled = sum(f.quantity for f in day.fills)
    added = sum(f.quantity for f in day.fills if f.liquidity is Liquidity.ADDED)
    print(
        f"  remainder rests at {rest.value}; shares filled {filled / ordered:.1%} of ordered, "
        f"{added / filled:.1%} of fills added liquidity (costs count filled shares only)"
    )
    print(
        f"  routing accuracy {r.accuracy:.2%} (tolerance ${r.tolerance_per_share}/share)"
        f"  target >= 95%: {'OK' if r.accuracy >= 0.95 else 'MISSED'}"
    )
    print(f"  realised all-in cost        ${r.realized_cost_per_share}/share vs arrival mid")
    print(
        f"  listing-exchange baseline   ${r.baseline_listing_cost_per_share}/share -> slippage "
        f"{r.slippage_reduction_vs_listing_pct:.1f}% lower  target >= 10%: "
        f"{'OK' if r.slippage_reduction_vs_listing_pct >= 10 else 'MISSED'}"
    )
    print(
        f"  lowest-fee baseline         ${r.baseline_lowest_fee_cost_per_share}/share -> slippage "
        f"{r.slippage_reduction_vs_lowest_fee_pct:.1f}% lower"
    )
    print(f"  total cost savings vs listing baseline ${r.total_cost_savings}")
    print("  venue       decisions  shares      accuracy  cost/share  savings vs listing")
    for v in r.venues:
        print(
            f"  {v.venue:10s} {v.decisions:10d} {v.filled_shares:10d}   {v.accuracy:7.2%}"
            f"  {v.realized_cost_per_share:>10}  ${v.cost_savings:>10}"
        )


if __name__ == "__main__":
    main()
