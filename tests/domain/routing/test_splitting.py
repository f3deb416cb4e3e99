"""NBBO-safe splitting: best prices first, ISO sweeps, posted remainder (Reg NMS Rules 610/611)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.orders import Side
from gateway.domain.quotes import QuoteBook
from gateway.domain.router import RemainderPrice, RouterSettings
from gateway.domain.scoring import DEFAULT_TIER_POLICIES, ScoringSettings, SizeTier, TierPolicy
from gateway.domain.splitting import ChildRole, post_price
from gateway.domain.venues import VenueStatus

from .market import NOW, VENUES, book, default_venues, order, router

LADDER = [
    ("NASDAQ", "99.99", 500, "100.02", 300),
    ("NYSE", "99.99", 500, "100.01", 200),
    ("NYSE_ARCA", "99.98", 500, "100.03", 400),
    ("IEX", "99.97", 500, "100.01", 100),
    ("BATS_BZX", "99.99", 500, "100.02", 200),
    ("EDGX", "99.96", 500, "100.05", 900),
]


def test_large_marketable_then_best_prices_first_iso_marked_and_remainder_posted() -> None:
    venues = default_venues()
    decision = router(venues).decide(
        order(quantity=1_500, limit="100.03"), book(LADDER), venues, NOW
    )
    takes = [c for c in decision.child_orders if c.role is ChildRole.TAKE]
    posts = [c for c in decision.child_orders if c.role is ChildRole.POST]
    prices = [c.limit_price for c in takes]
    assert prices == sorted(prices)  # type: ignore[type-var]
    assert {(c.venue, c.quantity) for c in takes if c.limit_price == Decimal("100.01")} == {
        ("NYSE", 200),
        ("IEX", 100),
    }
    assert sum(c.quantity for c in takes) == 200 + 100 + 300 + 200 + 400
    assert all(c.intermarket_sweep for c in takes)
    (post,) = posts
    assert post.quantity == 1_500 - 1_200
    assert post.limit_price == Decimal("100.03")
    assert post.venue == decision.ranked_venues[0].venue
    assert not post.intermarket_sweep


def test_order_within_best_level_then_one_price_and_no_iso() -> None:
    venues = default_venues()
    decision = router(venues).decide(order(quantity=600, limit="100.02"), book(LADDER), venues, NOW)
    assert all(c.limit_price == Decimal("100.01") for c in decision.child_orders[:2])
    assert all(c.limit_price <= Decimal("100.02") for c in decision.child_orders)  # type: ignore[operator]
    assert sum(c.quantity for c in decision.child_orders) == 600


def test_better_quote_at_excluded_venue_then_no_child_past_it() -> None:
    venues = default_venues()
    rows = [
        ("NASDAQ", "99.99", 500, "100.02", 300),
        ("NYSE", "99.99", 500, "100.01", 200),
        ("MEMX", "99.99", 500, "100.02", 100),  # protected, but not a venue we route to
    ]
    decision = router(venues).decide(order(quantity=1_000, limit="100.05"), book(rows), venues, NOW)
    takes = [c for c in decision.child_orders if c.role is ChildRole.TAKE]
    assert max(c.limit_price for c in takes) == Decimal("100.02")  # type: ignore[type-var]
    (post,) = [c for c in decision.child_orders if c.role is ChildRole.POST]
    # Rule 610(d): the rest rests one tick under the untaken MEMX offer, not at the limit.
    assert post.limit_price == Decimal("100.01")


def test_down_venue_with_better_quote_then_self_help_and_swept_past() -> None:
    venues = default_venues().with_status("NYSE", VenueStatus.DOWN, "no session", NOW)
    decision = router(venues).decide(order(quantity=700, limit="100.05"), book(LADDER), venues, NOW)
    assert all(c.venue != "NYSE" for c in decision.child_orders)
    assert sum(c.quantity for c in decision.child_orders) == 700


def test_tier_without_split_then_single_child_at_nbbo_even_beyond_displayed_size() -> None:
    venues = default_venues()
    tiers = dict(DEFAULT_TIER_POLICIES)
    tiers[SizeTier.SMALL] = TierPolicy(split=False)
    settings = RouterSettings(scoring=ScoringSettings(tiers=tiers))
    decision = router(venues, settings).decide(
        order(quantity=240, limit="100.05"), book(LADDER), venues, NOW
    )
    (child,) = decision.child_orders
    assert child.limit_price == Decimal("100.01")
    assert child.quantity == 240
    assert not child.intermarket_sweep


def test_small_order_within_best_price_then_split_at_nbbo_without_iso() -> None:
    venues = default_venues()
    decision = router(venues).decide(order(quantity=240, limit="100.05"), book(LADDER), venues, NOW)
    assert {(c.venue, c.quantity) for c in decision.child_orders} == {
        ("NYSE", 200),
        ("IEX", 40),
    } or {(c.venue, c.quantity) for c in decision.child_orders} == {("IEX", 100), ("NYSE", 140)}
    assert all(c.limit_price == Decimal("100.01") for c in decision.child_orders)
    assert not any(c.intermarket_sweep for c in decision.child_orders)


def test_block_remainder_then_posted_hidden_capable_venue() -> None:
    venues = default_venues()
    decision = router(venues).decide(
        order(quantity=5_000, limit="100.03"), book(LADDER), venues, NOW
    )
    post = decision.child_orders[-1]
    assert post.role is ChildRole.POST
    assert venues[post.venue].capabilities.hidden
    assert decision.size_tier.value == "BLOCK"


def test_market_order_beyond_book_then_market_remainder_at_best_scored() -> None:
    venues = default_venues()
    decision = router(venues).decide(order(quantity=5_000, limit=None), book(LADDER), venues, NOW)
    last = decision.child_orders[-1]
    assert last.limit_price is None
    assert sum(c.quantity for c in decision.child_orders) == 5_000


def test_post_price_then_one_tick_off_untaken_quote() -> None:
    tick = Decimal("0.01")
    assert post_price(
        is_buy=True, limit=Decimal("10.05"), untaken_best=Decimal("10.03"), tick=tick
    ) == Decimal("10.02")
    assert post_price(
        is_buy=False, limit=Decimal("9.95"), untaken_best=Decimal("9.97"), tick=tick
    ) == Decimal("9.98")
    assert post_price(is_buy=True, limit=Decimal("10.01"), untaken_best=None, tick=tick) == Decimal(
        "10.01"
    )


_ROUTER_VENUES = default_venues()
_ROUTER = router(_ROUTER_VENUES)


@st.composite
def _books(draw: st.DrawFn) -> QuoteBook:
    bid_cents = draw(st.integers(min_value=500, max_value=20_000))
    rows = []
    for venue in draw(st.lists(st.sampled_from(VENUES), min_size=1, max_size=6, unique=True)):
        bid = bid_cents - draw(st.integers(0, 3))
        ask = bid_cents + 1 + draw(st.integers(0, 3))
        rows.append(
            (
                venue,
                str(Decimal(bid) / 100),
                100 * draw(st.integers(1, 20)),
                str(Decimal(ask) / 100),
                100 * draw(st.integers(1, 20)),
            )
        )
    return book(rows)


@settings(max_examples=300, deadline=None)
@given(
    quotes=_books(),
    quantity=st.integers(min_value=1, max_value=30_000),
    side=st.sampled_from([Side.BUY, Side.SELL]),
    through=st.integers(min_value=0, max_value=6),
    market=st.booleans(),
)
def test_marketable_order_then_quantities_sum_and_no_trade_through(
    quotes: QuoteBook, quantity: int, side: Side, through: int, market: bool
) -> None:
    nbbo = quotes.nbbo
    assert nbbo.bid_price is not None and nbbo.ask_price is not None
    is_buy = side is Side.BUY
    far = nbbo.ask_price if is_buy else nbbo.bid_price
    step = Decimal("0.01") * through
    limit = None if market else str(far + step if is_buy else far - step)
    decision = _ROUTER.decide(order(quantity, limit, side), quotes, _ROUTER_VENUES, NOW)
    children = decision.child_orders
    assert sum(c.quantity for c in children) == quantity
    takes = [c for c in children if c.role is ChildRole.TAKE and c.limit_price is not None]
    # The first child takes the NBBO itself; none is better than the NBBO.
    assert takes[0].limit_price == far
    for child in takes:
        price = child.limit_price
        assert price is not None
        assert (price >= far) if is_buy else (price <= far)
        # Rule 611: every protected quote better than this child's price is fully taken too.
        for quote in quotes:
            shown = quote.ask_price if is_buy else quote.bid_price
            size = quote.ask_size if is_buy else quote.bid_size
            if shown is None or size == 0 or shown == price:
                continue
            if (shown < price) if is_buy else (shown > price):
                taken = sum(
                    c.quantity for c in takes if c.venue == quote.venue and c.limit_price == shown
                )
                assert taken == size, (quote.venue, shown, size, taken)
                assert child.intermarket_sweep
    if limit is not None:
        assert all(
            (c.limit_price <= Decimal(limit)) if is_buy else (c.limit_price >= Decimal(limit))
            for c in children
            if c.limit_price is not None
        )


def test_rest_remainder_setting_then_last_swept_price_or_limit() -> None:
    venues = default_venues()
    sweep = order(quantity=1_500, limit="100.04")
    default = router(venues).decide(sweep, book(LADDER), venues, NOW).child_orders[-1]
    assert default.role is ChildRole.POST
    assert default.limit_price == Decimal("100.03")  # the last level the sweep took
    at_limit = router(venues, RouterSettings(rest_remainder=RemainderPrice.LIMIT)).decide(
        sweep, book(LADDER), venues, NOW
    )
    assert at_limit.child_orders[-1].limit_price == Decimal("100.04")
