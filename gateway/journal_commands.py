"""The journal's ``execgw`` commands, run against a gateway at grpc_host:grpc_port.

- ``execgw report pnl --start-date D [--end-date D] [--account A] [--symbol S] [--group-by K]
  [--shortfall]``
- ``execgw reconcile --date D --statement FILE.csv`` (statement format: ``parse_statement``)
- ``execgw audit verify``

``reconcile`` exits 1 when there are breaks and ``audit verify`` when a chain is broken, so both
can gate a script.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.errors import ExecgwError
from gateway.settings import Settings

AddSettingFlags = Callable[[argparse.ArgumentParser], None]
_GROUPINGS = ("account", "symbol", "venue", "day")


class ReconciliationBreaks(ExecgwError):
    reason = "RECONCILIATION_BREAKS"


class AuditTrailBroken(ExecgwError):
    reason = "AUDIT_TRAIL_BROKEN"


def _target(settings: Settings) -> str:
    host = "127.0.0.1" if settings.grpc_host in ("0.0.0.0", "::", "") else settings.grpc_host
    return f"{host}:{settings.grpc_port}"


async def _call(settings: Settings, method: str, request: Any, timeout: float) -> Any:
    import grpc

    from gateway._pb.execgw.v1 import journal_pb2_grpc

    target = _target(settings)
    from gateway.transport import client_channel

    async with client_channel(settings, target) as channel:
        try:
            stub = journal_pb2_grpc.JournalServiceStub(channel)
            return await getattr(stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise ExecgwError(f"{target}: {exc.code().name}: {exc.details()}") from exc


_PNL_COLUMNS = (
    ("realised", "gross_realized"),
    ("unrealised", "gross_unrealized"),
    ("commission", "commission"),
    ("exch_fees", "exchange_fees"),
    ("reg_fees", "regulatory_fees"),
    ("borrow", "borrow"),
    ("net", "net"),
    ("slippage", "slippage"),
    ("impact", "market_impact"),
    ("timing", "timing_cost"),
    ("venue_save", "venue_selection_savings"),
)


async def _report_pnl(settings: Settings, args: argparse.Namespace) -> None:
    """Print the P&L attribution of a date range (and the shortfall per parent order)."""
    from gateway._pb.execgw.v1 import journal_pb2 as pb

    grouping = [
        pb.PnlGrouping.Value(f"PNL_GROUPING_{name.strip().upper()}")
        for name in args.group_by.split(",")
        if name.strip()
    ]
    request = pb.GetPnlRequest(
        start_date=args.start_date,
        end_date=args.end_date or args.start_date,
        accounts=args.account,
        symbols=args.symbol,
        group_by=grouping,
        include_shortfall=args.shortfall,
    )
    report = await _call(settings, "GetPnl", request, args.timeout)
    print(f"P&L {request.start_date} to {request.end_date}")
    header = ("account", "symbol", "venue", "day", *(title for title, _ in _PNL_COLUMNS))
    print("  " + " ".join(f"{h:>11}" for h in header))
    for row in (*report.rows, None):
        pnl = report.total if row is None else row.pnl
        labels = (
            ("TOTAL", "", "", "")
            if row is None
            else (row.account, row.symbol, row.venue, row.trade_date)
        )
        values = tuple(getattr(pnl, name) for _, name in _PNL_COLUMNS)
        print("  " + " ".join(f"{v:>11}" for v in (*labels, *values)))
    if args.shortfall:
        print("implementation shortfall (costs positive)")
        header = ("order", "account", "symbol", "ordered", "filled", "decision", "delay")
        header += ("trading", "opportunity", "fees", "total")
        print("  " + " ".join(f"{h:>11}" for h in header))
        for s in report.shortfalls:
            values = (s.client_order_id, s.account, s.symbol, s.ordered_quantity)
            values += (s.filled_quantity, s.decision_price, s.delay_cost, s.trading_cost)
            values += (s.opportunity_cost, s.fees, s.total)
            print("  " + " ".join(f"{v:>11}" for v in values))


async def _reconcile(settings: Settings, args: argparse.Namespace) -> None:
    """Reconcile the broker's end-of-day statement CSV against the journal."""
    from gateway._pb.execgw.v1 import journal_pb2 as pb
    from gateway.domain.reconciliation import parse_statement

    text = await asyncio.to_thread(Path(args.statement).read_text, "utf-8")
    statement = parse_statement(text)
    request = pb.ReconcileRequest(
        trade_date=args.date,
        positions=[
            pb.StatementPosition(account=p.account, symbol=p.symbol, quantity=p.quantity)
            for p in statement.positions
        ],
        cash=[pb.StatementCash(account=c.account, amount=str(c.amount)) for c in statement.cash],
    )
    answer = await _call(settings, "Reconcile", request, args.timeout)
    print(f"reconciliation {answer.run_id} of {args.date}: {len(answer.breaks)} break(s)")
    for found in answer.breaks:
        kind = pb.BreakKind.Name(found.kind).removeprefix("BREAK_KIND_")
        print(
            f"  {kind:<18} {found.account:<12} {found.symbol or '$CASH':<8} "
            f"journal {found.expected} broker {found.actual} difference {found.difference}"
        )
    if not answer.matched:
        raise ReconciliationBreaks(f"{len(answer.breaks)} reconciliation break(s)")


async def _audit_verify(settings: Settings, args: argparse.Namespace) -> None:
    """Verify the journal's hash chains."""
    from gateway._pb.execgw.v1 import journal_pb2 as pb

    report = await _call(settings, "VerifyAuditTrail", pb.VerifyAuditTrailRequest(), args.timeout)
    print(
        f"audit trail {'valid' if report.valid else 'BROKEN'}: {report.rows_checked} row(s) in "
        f"{report.chains_checked} chain(s)"
    )
    if not report.valid:
        print(f"  first bad row {report.first_bad_row}: {report.problem}")
        raise AuditTrailBroken(f"{report.first_bad_row}: {report.problem}")


def add_pnl_report(kinds: Any, add_setting_flags: AddSettingFlags) -> None:
    """Add ``report pnl`` to the ``report`` command's subparsers."""
    summary = "P&L attribution over a date range, from a running gateway"
    pnl = kinds.add_parser("pnl", help=summary, description=summary)
    add_setting_flags(pnl)
    pnl.add_argument("--start-date", required=True, help="first trade date, YYYY-MM-DD")
    pnl.add_argument("--end-date", help="last trade date (default: the start date)")
    pnl.add_argument("--account", action="append", default=[], help="only this account")
    pnl.add_argument("--symbol", action="append", default=[], help="only this symbol")
    pnl.add_argument(
        "--group-by",
        default="account,symbol",
        help=f"comma-separated, of {', '.join(_GROUPINGS)} (default: account,symbol)",
    )
    pnl.add_argument(
        "--shortfall",
        action="store_true",
        help="also print the implementation shortfall of each parent order",
    )
    pnl.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    pnl.set_defaults(run=_report_pnl)


def add_journal_commands(commands: Any, add_setting_flags: AddSettingFlags) -> None:
    """Add ``reconcile`` and ``audit verify``."""
    summary = "reconcile a broker end-of-day statement (CSV) against the journal"
    reconcile = commands.add_parser("reconcile", help=summary, description=summary)
    add_setting_flags(reconcile)
    reconcile.add_argument("--date", required=True, help="trade date, YYYY-MM-DD")
    reconcile.add_argument("--statement", required=True, help="statement CSV file")
    reconcile.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    reconcile.set_defaults(run=_reconcile)
    audit = commands.add_parser("audit", help="audit-trail commands")
    actions = audit.add_subparsers(dest="audit", required=True, metavar="ACTION")
    summary = "verify the journal's hash chains; exit 1 naming the first bad row"
    verify = actions.add_parser("verify", help=summary, description=summary)
    add_setting_flags(verify)
    verify.add_argument("--timeout", type=float, default=300.0, help="seconds to wait")
    verify.set_defaults(run=_audit_verify)
