"""``execgw demo``: a shortened trading day against a real in-process gateway and PostgreSQL.

No pacing (``seconds=0``) and a few hundred orders, so the day takes seconds; the market is the
same labelled session the full demo plays (seed 7), with its halts, pauses and circuit breaker.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

from gateway import demo
from tests.conftest import gateway_settings

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 24)


async def test_demo_day_then_halts_refuse_orders_cancels_arrive_and_the_books_reconcile(
    database_url: str, tmp_path: Path
) -> None:
    out = io.StringIO()
    spec = demo.DemoSpec(seed=7, symbols=12, orders=500, seconds=0, trade_date=DAY)
    result = await demo.run(gateway_settings(database_url, tmp_path), spec, out=out)
    printed = out.getvalue()

    # The scripted incidents happened, and the feed was accepted whole.
    assert result.incidents["CIRCUIT_BREAKER"] == 1
    assert result.incidents["HALT"] >= 3
    assert result.events > 5000
    assert result.events_refused == 0
    # Orders were refused because of halts, the breaker and Reg SHO, and the rest routed.
    assert result.orders >= 450
    assert result.refusals["MARKET_WIDE_HALT"] > 0
    assert result.refusals["SYMBOL_HALTED"] + result.refusals["SYMBOL_PAUSED"] > 0
    assert result.refused_while_halted >= result.refusals["MARKET_WIDE_HALT"]
    assert result.accepted > result.orders // 2
    # Halts hit resting orders: the gateway told the OMS to cancel them.
    assert sum(result.cancel_instructions.values()) > 0
    assert result.cancelled_on_instruction > 0
    # Every fill was journaled, and the end of day checks out.
    assert result.fills > result.accepted // 2
    assert not result.fill_errors
    assert result.reconciled, result.reports["reconcile"]
    assert "0 break(s)" in result.reports["reconcile"]
    assert result.audit_valid, result.reports["audit"]
    assert f"audit trail valid: {result.fills} row(s)" in result.reports["audit"]
    pnl_lines = result.reports["pnl"].splitlines()
    assert any(line.split()[:1] == ["TOTAL"] for line in pnl_lines)
    for account in demo.ACCOUNTS:
        assert any(line.split()[:1] == [account] for line in pnl_lines), account
    assert f"decisions {result.accepted}" in result.reports["routing"]
    # The live view showed the halts and the breaker as they happened.
    assert result.live_lines > 10
    assert " MARKET " in printed and "changes=HALT" in printed
    changes = [line for line in printed.splitlines() if "changes=" in line]
    # A LULD limit state, a pause the gateway inferred (15 s in the limit state without a pause
    # message) and then the pause message, a news halt and its quote-only resumption, a Reg SHO
    # trigger, the Level 1 breaker halting the market and its reopening.
    assert any(
        "changes=LIMIT_STATE" in c and re.search(r"limit=LIMIT_(UP|DOWN)", c) for c in changes
    )
    assert any("PAUSED" in c and "halt=LUDP (inferred)" in c for c in changes)
    assert any("PAUSED" in c and "halt=LUDP  " in c for c in changes)  # declared: no "(inferred)"
    assert any("HALTED" in c and "halt=T1" in c for c in changes)
    assert any("QUOTATION_ONLY" in c and "RESUME" in c for c in changes)
    assert any("ssr=yes" in c and "SHORT_SALE_RESTRICTION" in c for c in changes)
    market = [c for c in changes if " MARKET " in c]
    assert any("breaker=1" in c and "halted=until" in c for c in market)
    assert any("breaker=1" in c and "halted=-" in c and "RESUME" in c for c in market)
    assert result.passed


def test_demo_command_with_its_own_embedded_database_then_passes_and_says_so(
    tmp_path: Path,
) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}
    environment["XDG_DATA_HOME"] = str(tmp_path)  # the default data folder must stay unused
    command = ["demo", "--orders", "150", "--symbols", "8", "--seconds", "0", "--no-live-view"]
    finished = subprocess.run(
        [sys.executable, "-m", "gateway", *command, "--date", DAY.isoformat()],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "reconciliation clean, audit trail valid" in finished.stdout
    assert "| " not in finished.stdout  # --no-live-view
    assert not (tmp_path / "execgw").exists()
