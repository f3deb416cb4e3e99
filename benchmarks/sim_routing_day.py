"""A simulated trading day through the router, then the hindsight routing report.

Deterministic from the seed; the same code as ``execgw replay --route``
(``gateway/routing_simulation.py``), with the default settings unless flags say otherwise. Prints
decisions, accuracy, costs against the listing-exchange and lowest-fee baselines and against the
hindsight-best route (its own or one venue), the cost savings per venue, then the verdict against
the issue's targets (accuracy >= 95%, slippage >= 10% lower than the listing-exchange baseline).

    python -m benchmarks.sim_routing_day [--orders 20000] [--symbols 50] [--seed N]
"""

from __future__ import annotations

import argparse

from gateway import routing_simulation
from gateway import settings as settings_module
from gateway.domain.venue_simulator import SimulationSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--seed", type=int, default=SimulationSettings().seed)
    parser.add_argument("--tolerance", default=None, help="accuracy tolerance, $/share")
    parser.add_argument(
        "--rest-at-limit",
        action="store_true",
        help="post sweep remainders at the order's limit instead of the last swept price",
    )
    args = parser.parse_args()
    overrides: dict[str, object] = {}
    if args.tolerance is not None:
        overrides["routing_accuracy_tolerance"] = args.tolerance
    if args.rest_at_limit:
        overrides["routing_rest_remainder"] = "limit"
    settings = settings_module.load(environ={}, overrides=overrides)
    run = routing_simulation.run_day(
        settings, orders=args.orders, symbols=args.symbols, seed=args.seed
    )
    print(routing_simulation.format_report(run))
    passed, verdict = routing_simulation.verdict(run.report)
    print(f"\n  targets {'met' if passed else 'MISSED'}: {verdict}")


if __name__ == "__main__":
    main()
