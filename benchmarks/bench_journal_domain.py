"""Journal domain per fill: position update, fee calculation, hash-chain link. Prints p50/p99 us.

Each operation is timed one call at a time with ``perf_counter_ns`` over pre-built fills (so fill
construction is not counted); the GC is disabled while timing. Plain script:

    python -m benchmarks.bench_journal_domain [--fills 100000]

Targets: the hash-chain link about 3 us per fill (design notes); positions and fees well under the
~190 us a gRPC request costs.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.domain.audit_chain import ChainHead, row_hash
from gateway.domain.fees import FeeCalculator, FeeSettings, VenueFeeSchedule
from gateway.domain.fills import Fill, Liquidity
from gateway.domain.orders import Side
from gateway.domain.positions import CostMethod, PositionBook

TARGETS_US = {"hash_chain_link": 3.0}
VENUE = VenueFeeSchedule(
    take_fee_per_share=Decimal("0.0030"),
    make_rebate_per_share=Decimal("0.0020"),
    take_fee_rate_below_1=Decimal("0.003"),
    make_rebate_rate_below_1=Decimal("0.001"),
    routed_fee_per_share=Decimal("0.0035"),
    auction_fee_per_share=Decimal("0.0010"),
)


def _fills(count: int, rng: random.Random) -> list[Fill]:
    start = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
    symbols = [f"S{i:03d}" for i in range(200)]
    return [
        Fill(
            venue=rng.choice(("XNAS", "ARCX", "BATS", "IEXG")),
            exec_id=f"E{i:012d}",
            account=f"ACC{rng.randint(1, 20)}",
            symbol=rng.choice(symbols),
            side=rng.choice((Side.BUY, Side.BUY, Side.SELL, Side.SELL_SHORT)),
            quantity=rng.choice((100, 200, 300, 500, 1_000, 37)),
            price=Decimal(rng.randint(500, 50_000)) / 100,
            liquidity=rng.choice(list(Liquidity)),
            transaction_time=start + timedelta(microseconds=i * 250),
            client_order_id=f"O{i // 5}",
            decision_id=f"D{i // 5}",
        )
        for i in range(count)
    ]


def _measure(fills: list[Fill], operation: Callable[[Fill], object]) -> list[float]:
    samples = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for fill in fills:
            started = clock()
            operation(fill)
            samples.append((clock() - started) / 1_000)
    finally:
        gc.enable()
    return samples


def _report(name: str, samples: list[float]) -> None:
    cuts = statistics.quantiles(samples, n=100)
    target = TARGETS_US.get(name)
    note = f"   target ~{target:.1f} us" if target else ""
    print(f"{name:<28} p50 {cuts[49]:7.2f} us   p99 {cuts[98]:7.2f} us{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=100_000)
    args = parser.parse_args()
    fills = _fills(args.fills, random.Random(7))
    warm = _fills(2_000, random.Random(8))

    for method in CostMethod:
        PositionBook.replay(warm, default_method=method)
        book = PositionBook(default_method=method)
        _report(f"position_update_{method.value.lower()}", _measure(fills, book.apply))

    calculator = FeeCalculator(FeeSettings())
    _report("fees_per_fill", _measure(fills, lambda fill: calculator.fees(fill, VENUE)))

    fees = [calculator.fees(fill, VENUE) for fill in fills]
    received = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
    day = fills[0].trade_date
    head = ChainHead(1)
    rows = []
    for i, (fill, fill_fees) in enumerate(zip(fills, fees, strict=True)):
        row, head = head.link(fill, fill_fees, received, i + 1, day)
        rows.append(row)
    by_fill = {id(fill): row.row for fill, row in zip(fills, rows, strict=True)}
    prev = [bytes(32)]

    def link(fill: Fill) -> None:
        prev[0] = row_hash(prev[0], by_fill[id(fill)])

    _report("hash_chain_link", _measure(fills, link))

    heads = [ChainHead(1)]
    fee_of = {id(fill): fill_fees for fill, fill_fees in zip(fills, fees, strict=True)}

    def link_with_row(fill: Fill) -> None:
        _, heads[0] = heads[0].link(fill, fee_of[id(fill)], received, 1, day)

    _report("hash_chain_link_with_row", _measure(fills, link_with_row))


if __name__ == "__main__":
    main()
