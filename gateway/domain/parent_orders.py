"""Parent orders and routing baselines for P&L attribution, from the stored routing decisions.

Fills name the routing decision behind them (``decision_id``) and their parent order
(``client_order_id``). A parent order is the order as first decided: its side, ordered quantity
and decision time from its earliest decision, its arrival price the NBBO mid in that decision's
snapshot (on a one-sided book, the only side), its account from its fills. Its end price, for the
opportunity cost of an unfilled rest, is the last mid of the trade date of its last fill (Perold:
the unfilled shares are valued at the end of the trading horizon, here the day), or the latest
mid when that day has not ended.

The venue-selection baseline of a fill is the listing exchange, costed from the decision's stored
snapshot exactly as the routing report costs it (``routing_analysis.analyse_decision``): the
filled shares sent to the listing exchange, fees and routed-out shares included, as an all-in cost
per share against the arrival mid. The baseline is given to P&L as an all-in price with no
separate fee, so a decision's venue-selection savings are ``filled x (listing cost - realised
cost)``, the routing report's cost savings of that decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from gateway.domain import routing_analysis as analysis
from gateway.domain.fees import NO_FEES, FeeBreakdown
from gateway.domain.fills import EXCHANGE_TIMEZONE, Fill, FillKey
from gateway.domain.orders import Side
from gateway.domain.pnl import MidSource, ParentOrder, VenueBaseline
from gateway.domain.venues import VenueFees

ZERO = Decimal(0)
_LIQUIDITY = {flag.value: flag for flag in analysis.Liquidity}


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A routing decision as stored: what the analysis reads, and when it was decided."""

    record: analysis.DecisionRecord
    decided_at: datetime


def end_of_trade_date(day: date) -> datetime:
    """The last moment of ``day`` in exchange time (America/New_York)."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=EXCHANGE_TIMEZONE)
    return midnight - timedelta(microseconds=1)


def parent_orders(
    fills: Iterable[Fill],
    decisions: Mapping[str, StoredDecision],
    mids: MidSource | None = None,
    as_of: datetime | None = None,
) -> dict[str, ParentOrder]:
    """Return the parent order of every client order id the fills name with a known decision.

    ``fills`` are the effective fills; ``as_of`` is how far the mid history reaches (None: the
    end of the trade date is always known).
    """
    first: dict[str, tuple[StoredDecision, Fill]] = {}
    last_day: dict[str, date] = {}
    for fill in fills:
        order_id = fill.client_order_id
        stored = decisions.get(fill.decision_id) if fill.decision_id else None
        if not order_id or stored is None or stored.record.arrival_mid <= 0:
            continue  # no order, no decision, or a decision made without any quote
        seen = first.get(order_id)
        if seen is None or stored.decided_at < seen[0].decided_at:
            first[order_id] = (stored, seen[1] if seen else fill)
        if order_id not in last_day or fill.trade_date > last_day[order_id]:
            last_day[order_id] = fill.trade_date
    orders = {}
    for order_id, (stored, fill) in first.items():
        record = stored.record
        end_mid = None
        if mids is not None:
            end = end_of_trade_date(max(last_day[order_id], _trade_date(stored.decided_at)))
            end_mid = mids.mid_at(record.symbol, end if as_of is None else min(end, as_of))
        orders[order_id] = ParentOrder(
            order_id,
            fill.account,
            record.symbol,
            record.side,
            record.quantity,
            stored.decided_at,
            record.arrival_mid,
            end_mid,
        )
    return orders


def _trade_date(moment: datetime) -> date:
    return moment.astimezone(EXCHANGE_TIMEZONE).date()


def routing_baselines(
    fills: Iterable[Fill],
    decisions: Mapping[str, StoredDecision],
    fees: Mapping[FillKey, FeeBreakdown],
    venue_fees: Mapping[str, VenueFees],
    settings: analysis.AnalysisSettings | None = None,
) -> dict[FillKey, VenueBaseline]:
    """Return the listing-exchange baseline of every fill whose decision is known.

    The fill rates the counterfactuals fade at are the hindsight rates of these fills.
    """
    settings = settings or analysis.AnalysisSettings()
    by_decision: dict[str, list[tuple[Fill, analysis.FillRecord]]] = {}
    for fill in fills:
        liquidity = _LIQUIDITY.get(fill.liquidity.value)
        if fill.decision_id not in decisions or liquidity is None:
            continue
        paid = fees.get(fill.key, NO_FEES).venue_fee
        record = analysis.FillRecord(
            fill.decision_id, fill.venue, fill.quantity, fill.price, paid / fill.quantity, liquidity
        )
        by_decision.setdefault(fill.decision_id, []).append((fill, record))
    rates = analysis.hindsight_fill_rates(r for items in by_decision.values() for _, r in items)
    baselines = {}
    for decision_id, items in by_decision.items():
        decision = decisions[decision_id].record
        cost = analysis.analyse_decision(
            decision, [r for _, r in items], venue_fees, rates, settings
        )
        if cost is None:
            continue
        sign = 1 if decision.side is Side.BUY else -1
        price = decision.arrival_mid + sign * cost.listing_cost_per_share
        for fill, _ in items:
            baselines[fill.key] = VenueBaseline(price, ZERO)
    return baselines
