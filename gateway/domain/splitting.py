"""NBBO-safe child orders: sweep the best displayed prices first, post the remainder.

Reg NMS Rule 611 (order protection): a marketable order must not execute at a price worse than a
protected quotation displayed elsewhere. A sweep therefore takes the displayed size of every
better-priced quote before it takes a worse one, marks every child an intermarket sweep order (ISO)
when it spans more than one price, and never goes past ``bound``: the best price of a protected
quote the router may not access (a symbol exclusion, an unknown venue). Quotes of venues in a
failure state (down, tripped, operationally halted) are outside protection (the self-help
exception) and are left out by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from gateway.domain.orders import OrderType
from gateway.domain.vocabulary import Vocabulary


class ChildRole(Vocabulary):
    """Proto ``ChildRole``."""

    TAKE = "TAKE"  # takes displayed liquidity at the venue's quote
    POST = "POST"  # rests the remainder at the best-scored venue


@dataclass(frozen=True, slots=True)
class ChildOrder:
    """One order to send to one venue. ``limit_price`` None only for a MARKET child."""

    venue: str
    quantity: int
    limit_price: Decimal | None
    order_type: OrderType
    intermarket_sweep: bool
    role: ChildRole
    # Price vs arrival mid (positive = worse) plus the take fee or minus the make rebate.
    expected_cost_per_share: Decimal


# A venue's displayed top of book on the side an order takes from: (price, rank, venue, size,
# take fee per share, ISO-capable). ``rank`` is the venue's score rank (1 = best) and breaks ties
# at one price. A plain tuple: built for every venue of every marketable decision.
DisplayedLevel = tuple[Decimal, int, str, int, Decimal, bool]


@dataclass(frozen=True, slots=True)
class PostTarget:
    """Where and how a remainder rests."""

    venue: str
    make_rebate: Decimal
    order_type: OrderType = OrderType.LIMIT


class SweepPlan(NamedTuple):
    takes: list[ChildOrder]
    remaining: int
    # Best displayed price left untaken on the far side (caps a posted remainder), or None.
    untaken_best: Decimal | None


def plan_sweep(
    *,
    is_buy: bool,
    quantity: int,
    limit: Decimal | None,
    levels: Sequence[DisplayedLevel],
    bound: Decimal | None,
    mid: Decimal,
    split: bool,
) -> SweepPlan:
    """Take displayed liquidity best price first, up to ``limit`` and never past ``bound``.

    With ``split`` False the whole quantity goes to the best-ranked venue at the best price (what
    it does not fill rests there at that price, so it cannot trade through).
    """
    if is_buy:
        ordered = sorted(levels)
        cap = limit if bound is None or (limit is not None and limit < bound) else bound
    else:
        ordered = sorted(levels, key=lambda lv: (-lv[0], lv[1]))
        cap = limit if bound is None or (limit is not None and limit > bound) else bound
    takes: list[ChildOrder] = []
    remaining = quantity
    untaken: Decimal | None = bound
    if not ordered:
        return SweepPlan(takes, remaining, untaken)
    best = ordered[0][0]
    if cap is not None and (best > cap if is_buy else best < cap):
        return SweepPlan(takes, remaining, _better(is_buy, untaken, best))
    if not split:
        price, _rank, venue, _size, fee, _iso = ordered[0]
        cost = (price - mid if is_buy else mid - price) + fee
        takes.append(
            ChildOrder(venue, quantity, price, OrderType.LIMIT, False, ChildRole.TAKE, cost)
        )
        return SweepPlan(takes, 0, untaken)
    fills: list[tuple[DisplayedLevel, int]] = []
    last: Decimal | None = None
    prices = 0
    for level in ordered:
        price, _rank, _venue, shown, _fee, iso_capable = level
        if remaining == 0 or (cap is not None and (price > cap if is_buy else price < cap)):
            untaken = _better(is_buy, untaken, price)
            break
        if price != best and not iso_capable:
            # Cannot be swept alongside the better prices without ISO; its quote stays.
            untaken = _better(is_buy, untaken, price)
            continue
        size = shown if shown < remaining else remaining
        if size <= 0:
            continue
        if price != last:
            prices += 1
            last = price
        fills.append((level, size))
        remaining -= size
        if size < shown:
            untaken = _better(is_buy, untaken, price)
    # Rule 611(b)(5)/(6): the children together take every better-priced protected quote, so
    # each is marked ISO when the sweep reaches past the best price.
    iso = prices > 1
    for (price, _rank, venue, _shown, fee, _iso), size in fills:
        cost = (price - mid if is_buy else mid - price) + fee
        takes.append(ChildOrder(venue, size, price, OrderType.LIMIT, iso, ChildRole.TAKE, cost))
    return SweepPlan(takes, remaining, untaken)


def _better(is_buy: bool, current: Decimal | None, price: Decimal) -> Decimal:
    if current is None:
        return price
    if is_buy:
        return price if price < current else current
    return price if price > current else current


def post_price(
    *, is_buy: bool, limit: Decimal, untaken_best: Decimal | None, tick: Decimal
) -> Decimal:
    """Return the resting price: the limit, but one tick off any displayed far-side quote.

    Reg NMS Rule 610(d): a displayed order must not lock or cross a protected quotation.
    """
    if untaken_best is None:
        return limit
    if is_buy:
        return limit if limit < untaken_best else untaken_best - tick
    return limit if limit > untaken_best else untaken_best + tick


def post_child(
    target: PostTarget,
    *,
    is_buy: bool,
    quantity: int,
    price: Decimal | None,
    mid: Decimal,
) -> ChildOrder:
    """Build the resting child; a peg without a cap is costed at the midpoint."""
    reference = price if price is not None else mid
    edge = reference - mid if is_buy else mid - reference
    if target.order_type is OrderType.MIDPOINT_PEG:
        edge = Decimal(0) if price is None else min(edge, Decimal(0))
    return ChildOrder(
        target.venue,
        quantity,
        price,
        target.order_type,
        False,
        ChildRole.POST,
        edge - target.make_rebate,
    )
