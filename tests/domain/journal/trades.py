"""Building fills for the journal tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.domain.fills import Fill, FillKind, Liquidity
from gateway.domain.orders import Side

# 2026-06-01 10:00 America/New_York.
T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
_ids = itertools.count(1)


def fill(
    side: Side | str,
    quantity: int,
    price: str | Decimal,
    *,
    account: str = "ACC1",
    symbol: str = "AAPL",
    venue: str = "XNAS",
    exec_id: str | None = None,
    at: datetime | None = None,
    liquidity: Liquidity = Liquidity.REMOVED,
    kind: FillKind = FillKind.NEW,
    corrects: str = "",
    order: str = "",
) -> Fill:
    """A fill with sensible defaults; ``side`` may be "B", "S" or "SS"."""
    if isinstance(side, str):
        side = {"B": Side.BUY, "S": Side.SELL, "SS": Side.SELL_SHORT}[side]
    number = next(_ids)
    return Fill(
        venue=venue,
        exec_id=exec_id or f"E{number}",
        account=account,
        symbol=symbol,
        side=side,
        quantity=quantity,
        price=Decimal(price),
        liquidity=liquidity,
        transaction_time=at or T0 + timedelta(seconds=number),
        client_order_id=order,
        kind=kind,
        corrects_exec_id=corrects,
    )
