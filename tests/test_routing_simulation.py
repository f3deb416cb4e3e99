"""A simulated routing day as ``execgw replay --route`` runs it: small, fast, invariants only.

Performance and quality figures of the full day (20,000 orders over 50 symbols) are printed by
``python -m benchmarks.sim_routing_day``; here a small day checks that the report holds together.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gateway import routing_simulation
from gateway import settings as settings_module
from gateway.cli import main

ORDERS = 1_500


@pytest.fixture(scope="module")
def run() -> routing_simulation.RoutingDayRun:
    return routing_simulation.run_day(
        settings_module.load(environ={}), orders=ORDERS, symbols=50, seed=11
    )


def test_small_day_then_every_order_decided_or_refused_and_every_fill_linked(
    run: routing_simulation.RoutingDayRun,
) -> None:
    day, report = run.day, run.report
    assert report.decisions == len(day.decisions) == ORDERS - sum(day.refusals.values())
    assert 0.9 * report.decisions < report.decisions_with_fills <= report.decisions
    decision_ids = {d.decision_id for d in day.decisions}
    assert all(f.decision_id in decision_ids for f in day.fills)
    assert len({d.symbol for d in day.decisions}) == 50
    assert run.seconds < 5


def test_small_day_then_report_adds_up(run: routing_simulation.RoutingDayRun) -> None:
    report = run.report
    assert 0.0 <= report.accuracy <= 1.0
    assert sum(v.decisions for v in report.venues) == report.decisions_with_fills
    assert sum(v.filled_shares for v in report.venues) == sum(c.filled for c in run.day.costs)
    assert report.total_cost_savings == sum(v.cost_savings for v in report.venues)
    # Savings vs the listing baseline are (baseline - realised) x shares, up to rounding.
    shares = sum(v.filled_shares for v in report.venues)
    gap = report.baseline_listing_cost_per_share - report.realized_cost_per_share
    assert abs(report.total_cost_savings - gap * shares) <= Decimal("0.000001") * shares + 1
    # No venue choice beats choosing the hindsight-best venue of every decision.
    assert run.hindsight_best_cost_per_share <= report.baseline_listing_cost_per_share
    assert run.hindsight_best_cost_per_share <= report.baseline_lowest_fee_cost_per_share
    assert min(v.accuracy for v in report.venues) >= 0.0


def test_same_seed_then_same_report(run: routing_simulation.RoutingDayRun) -> None:
    again = routing_simulation.run_day(
        settings_module.load(environ={}), orders=ORDERS, symbols=50, seed=11
    )
    assert again.report == run.report


def test_router_settings_reach_the_simulated_router() -> None:
    strict = settings_module.load(environ={}, overrides={"routing_max_quote_age_seconds": 0.001})
    run = routing_simulation.run_day(strict, orders=200, symbols=10, seed=3)
    assert run.day.refusals["STALE_QUOTES"] > 0


def test_replay_route_command_then_json_report_and_verdict_as_exit_status(
    capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    status = main(["replay", "--route", "--orders", "400", "--symbols", "20", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["orders"] == 400 and document["symbols"] == 20
    assert document["decisions"] + sum(document["refusals"].values()) == 400
    assert {v["venue"] for v in document["venues"]} <= {
        "NASDAQ",
        "NYSE",
        "NYSE_ARCA",
        "IEX",
        "BATS_BZX",
        "EDGX",
    }
    assert status == (0 if document["verdict"]["passed"] else 1)
    # With targets it cannot miss, the verdict passes.
    passing = ["--min-accuracy", "0", "--min-slippage-reduction", "-1000"]
    assert main(["replay", "--route", "--orders", "400", "--symbols", "20", *passing]) == 0
    assert "PASS" in capsys.readouterr().out


def test_replay_route_with_a_session_file_then_usage_error(
    capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    assert main(["replay", "sample", "--route"]) == 2
    assert "--route" in capsys.readouterr().err
