"""Where a CheckOrder's server CPU goes: the gateway with its handler cut short at each step.

Usage:
    python benchmarks/handler_floor.py [--rounds 3] [--seconds 5]

Starts the empty-handler baseline and one gateway per variant of ``PreTradeService.CheckOrder``
(each on core 0, primed with the benchmark's trading day, real PostgreSQL), and drives them in
alternating rounds with h2load on core 1 (``grpc_load.alternate``, saturation only). Every variant
answers with the gateway's own answer to the benchmark order, so the messages on the wire are
the same; what differs is the work done before answering:

    constant  the gateway's RPC wrapper (metrics, access control, tracing check), no handler work
    fields    + reading the order's nine fields from the request
    parsed    + parsing and validating the order (``convert.require_order``)
    checked   + the pre-trade decision (``HaltGuard.check``: every rule, metric, refusal record)
    full      + building the answer from the decision (the real handler)

It prints the server's CPU per request for each (median [min-max] over rounds) and what each step
adds. On the benchmark machine the wrapper costs about nothing over the empty handler, and the
steps cost several times their in-process time (``bench_hot_paths.py``): a request's first touch
of code and data runs with cold caches between gRPC's own work. Uses EXECGW_DATABASE_URL when set,
otherwise an embedded PostgreSQL in a temporary folder. Needs h2load (nghttp2-client).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("constant", "fields", "parsed", "checked", "full")


def serve(variant: str, argv: list[str]) -> int:
    """Run ``execgw serve argv`` with CheckOrder cut short at ``variant``."""
    from gateway._pb.execgw.v1 import pretrade_pb2
    from gateway.api import convert, pretrade
    from gateway.api.base import _translated
    from gateway.cli import main

    real: Any = pretrade.PreTradeServicer.CheckOrder.__wrapped__  # type: ignore[attr-defined]
    answer: list[Any] = []

    async def handler(self: Any, request: Any, context: Any) -> Any:
        if not answer:  # the real answer, once: every variant sends the same bytes
            answer.append(await real(self, request, context))
        if variant == "fields":
            o = request.order
            _ = (o.client_order_id, o.account, o.symbol, o.side, o.order_type, o.quantity)
            _ = (o.time_in_force, o.limit_price, o.venue)
        elif variant in ("parsed", "checked"):
            order = convert.require_order(request.order, request.HasField("order"))
            if variant == "checked":
                self.guard.check(order, "CheckOrder")
        return answer[0]

    if variant != "full":
        service = pretrade_pb2.DESCRIPTOR.services_by_name["PreTradeService"]
        method = service.methods_by_name["CheckOrder"]
        wrapped: Any = _translated(handler, method)
        wrapped._execgw_translated = True
        pretrade.PreTradeServicer.CheckOrder = wrapped  # type: ignore[method-assign]
    return main(["serve", *argv])


def measure(rounds: int, seconds: float) -> dict[str, list[float]]:
    from benchmarks.grpc_load import (
        Load,
        Server,
        alternate,
        check,
        database,
        free_port,
        prime,
        server_env,
        start_baseline,
        start_server,
    )
    from benchmarks.requests import REQUESTS

    spec = REQUESTS["CheckOrder"]
    folder = Path(tempfile.mkdtemp(prefix="execgw-floor-"))
    servers: list[Server] = []
    with database(folder) as url:
        try:
            for variant in VARIANTS:
                port = free_port()
                command = [
                    *(sys.executable, __file__, "--serve", variant, "--"),
                    *("--grpc-port", str(port), "--metrics-port", "-1", "--database-url", url),
                    *("--log-level", "WARNING", "--market-clock", "feed"),
                ]
                log = folder / f"{variant}.log"
                process = start_server(command, port, server_env(), log)
                servers.append(Server(variant, process, port, log))
                prime([servers[-1]], [spec], 3000)
                check(servers[-1], spec)
            response = check(servers[-1], spec).under_load
            encoded = response.SerializeToString() if response is not None else b""
            servers.insert(0, start_baseline({spec.method: encoded}, folder))
            prime([servers[0]], [spec], 3000)
            results = alternate(servers, spec, rounds, Load(seconds, half_load=False), folder)
        finally:
            for server in servers:
                server.stop()
    return {name: [r.cpu_us_per_request for r in runs] for name, runs in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.serve:
        sys.exit(serve(args.serve, [a for a in rest if a != "--"]))
    figures = measure(args.rounds, args.seconds)
    base = statistics.median(figures["baseline"])
    print(
        f"CheckOrder server CPU per request, h2load -c 4 -m 16, {args.rounds} rounds x "
        f"{args.seconds:g} s, servers on core 0 (median [min-max])"
    )
    print(f"{'server':10s}  {'CPU us/req':20s}  {'step adds':>9s}  {'baseline/this':>13s}")
    previous = base
    for name in ("baseline", *VARIANTS):
        values = figures[name]
        median = statistics.median(values)
        spread = f"{median:.0f} [{min(values):.0f}-{max(values):.0f}]"
        step = "" if name == "baseline" else f"{median - previous:+.0f}"
        print(f"{name:10s}  {spread:20s}  {step:>9s}  {base / median:13.2f}")
        previous = median


if __name__ == "__main__":
    main()
