"""What P&L attribution reads beyond the journal: routing decisions and the NBBO mid history.

For the effective fills of a ``GetPnl`` request, ``AttributionSources.inputs``

1. writes the routing decisions still queued, then reads the decisions the fills name
   (``storage.routing_decisions.fetch_decisions``, the reading code of ``GetRoutingReport``, with
   its row conversion) and turns them into parent orders (arrival mid, ordered quantity) and
   listing-exchange baselines (``gateway.domain.parent_orders``);
2. samples the mids once more and writes the queued ones (``gateway.mid_sampler``), then reads
   the mid history of the fills' symbols from their first fill (or decision) to the end of the
   range plus the markout horizon (``storage.nbbo_mids.fetch_mids``), known up to now.

Nothing here runs on the fill path: it is read when P&L is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

import asyncpg

from gateway.domain.fees import FeeBreakdown
from gateway.domain.fills import Fill, FillKey
from gateway.domain.mid_history import MidHistory
from gateway.domain.parent_orders import (
    StoredDecision,
    end_of_trade_date,
    parent_orders,
    routing_baselines,
)
from gateway.domain.pnl import ParentOrder, VenueBaseline
from gateway.domain.venues import VenueSet
from gateway.mid_sampler import MidSampler
from gateway.routing_desk import decision_record
from storage.errors import DatabaseUnavailable
from storage.nbbo_mids import fetch_mids
from storage.routing_decisions import fetch_decisions


class Flushable(Protocol):
    """A recorder whose queued rows can be waited for (the routing decision recorder)."""

    async def flush(self, timeout: float) -> None: ...


@dataclass(frozen=True, slots=True)
class AttributionInputs:
    """Parent orders by client order id, baselines by fill, and the mid history (if any)."""

    orders: Mapping[str, ParentOrder] = field(default_factory=dict)
    baselines: Mapping[FillKey, VenueBaseline] = field(default_factory=dict)
    mids: MidHistory | None = None


class AttributionSources:
    """Reads the stored decisions and mids P&L attribution needs (see the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        venues: Callable[[], VenueSet],
        *,
        decision_recorder: Flushable | None = None,
        mids: MidSampler | None = None,
        markout_horizon: timedelta = timedelta(seconds=60),
        query_timeout: float = 30.0,
    ) -> None:
        self._pool = pool
        self._venues = venues
        self._decision_recorder = decision_recorder
        self._mids = mids
        self.markout_horizon = markout_horizon
        self._timeout = query_timeout

    async def inputs(
        self,
        effective: Sequence[Fill],
        fees: Mapping[FillKey, FeeBreakdown],
        start: date,
        end: date,
    ) -> AttributionInputs:
        """Return the inputs for the effective fills of trade dates up to ``end``.

        Raises DatabaseUnavailable when the database cannot answer in time.
        """
        timeout = self._timeout
        in_range = [f for f in effective if start <= f.trade_date <= end]
        ids = sorted({f.decision_id for f in in_range if f.decision_id})
        as_of = await self._mids.flush(timeout) if self._mids is not None else None
        if self._decision_recorder is not None and ids:
            await self._decision_recorder.flush(timeout)
        try:
            async with self._pool.acquire(timeout=timeout) as connection:
                rows = (
                    await fetch_decisions(connection, decision_ids=ids, timeout=timeout)
                    if ids
                    else []
                )
                decisions = {
                    row.decision_id: StoredDecision(decision_record(row), row.decided_at)
                    for row in reversed(rows)  # a decision stored twice: the first row wins
                }
                # Fills of these orders before the range still date their first fill.
                orders_of = {
                    f.client_order_id
                    for f in in_range
                    if f.client_order_id and f.decision_id in decisions
                }
                related = [
                    f
                    for f in effective
                    if f.trade_date <= end
                    and (start <= f.trade_date or (f.client_order_id in orders_of))
                ]
                history = None
                if as_of is not None and related:
                    history = await self._history(connection, related, decisions, end, as_of)
        except TimeoutError as exc:
            raise DatabaseUnavailable(f"P&L attribution query took over {timeout}s") from exc
        venue_fees = {profile.venue: profile.fees for profile in self._venues()}
        return AttributionInputs(
            parent_orders(related, decisions, history, as_of),
            routing_baselines(related, decisions, fees, venue_fees),
            history,
        )

    async def _history(
        self,
        connection: asyncpg.Connection,
        fills: Sequence[Fill],
        decisions: Mapping[str, StoredDecision],
        end: date,
        as_of: datetime,
    ) -> MidHistory:
        since = min(
            [f.transaction_time for f in fills] + [d.decided_at for d in decisions.values()]
        )
        until = min(as_of, end_of_trade_date(end) + self.markout_horizon)
        rows = await fetch_mids(
            connection,
            symbols=sorted({f.symbol for f in fills}),
            since=since,
            until=until,
            timeout=self._timeout,
        )
        return MidHistory(((r.symbol, r.at, r.mid) for r in rows), as_of)
