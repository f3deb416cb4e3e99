"""Who may call what: authentication, roles, account entitlements and per-client limits.

Every RPC of the gateway's servicers passes ``Access.admit`` (called by the one wrapper in
``gateway.api.base``) before its handler runs. Health and reflection are not the gateway's
servicers: they stay open. When neither authentication nor a limit is configured there is no
``Access`` at all and the wrapper's cost is one attribute check.

A client is named by its bearer token (``authorization: Bearer <token>``) or, under mutual TLS,
by its certificate (CN, then SANs), and looked up in the clients file (``gateway.clients``).
Refusals raise ``Unauthenticated`` (no or bad credentials), ``PermissionDenied`` (wrong role or
account) or ``ResourceExhausted`` (a limit, with the time to retry); the wrapper turns them into
statuses. Every decision is logged with the client's name, never a token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from gateway.clients import Client, ClientRegistry, Role, load_clients
from gateway.errors import (
    ConfigurationError,
    PermissionDenied,
    ResourceExhausted,
    StreamIdle,
    Unauthenticated,
)
from gateway.rate_limits import RateLimiter

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
# The account of a working order, by client order id (None: no such order).
OrderAccounts = Callable[[str], str | None]

OMS, FEED, OPERATOR, READER = Role.OMS, Role.FEED, Role.OPERATOR, Role.READER
_P = "execgw.v1."

# The roles that reach each RPC (full method name). Roles add up: a client may hold several.
RPC_ROLES: Mapping[str, frozenset[Role]] = {
    f"{_P}PreTradeService.CheckOrder": frozenset({OMS}),
    f"{_P}PreTradeService.SubmitOrder": frozenset({OMS}),
    f"{_P}PreTradeService.CancelOrder": frozenset({OMS}),
    f"{_P}PreTradeService.ReportOrderEvent": frozenset({OMS}),
    f"{_P}PreTradeService.StreamOrderInstructions": frozenset({OMS, READER}),
    f"{_P}RoutingService.RouteOrder": frozenset({OMS}),
    f"{_P}RoutingService.GetRoutingReport": frozenset({OPERATOR, READER}),
    f"{_P}RoutingService.ListVenues": frozenset({OMS, OPERATOR, READER}),
    f"{_P}RoutingService.SetVenueStatus": frozenset({OPERATOR}),
    f"{_P}JournalService.RecordFill": frozenset({OMS}),
    f"{_P}JournalService.RecordFills": frozenset({OMS}),
    f"{_P}JournalService.RecordFillBatches": frozenset({OMS}),
    f"{_P}JournalService.GetPositions": frozenset({OMS, READER}),
    f"{_P}JournalService.GetPnl": frozenset({OMS, OPERATOR, READER}),
    f"{_P}JournalService.Reconcile": frozenset({OPERATOR}),
    f"{_P}JournalService.VerifyAuditTrail": frozenset({OPERATOR}),
    f"{_P}MarketStateService.PublishMarketData": frozenset({FEED}),
    f"{_P}MarketStateService.SubscribeMarketState": frozenset({OMS, READER}),
    f"{_P}MarketStateService.GetMarketState": frozenset({OMS, READER}),
}


# --- account entitlements, by method ---------------------------------------------------------


def _refuse_account(client: Client, account: str, field: str) -> PermissionDenied:
    return PermissionDenied(
        f"client {client.name!r} may not use account {account!r} ({field})",
        reason="ACCOUNT_NOT_ENTITLED",
    )


def _check_account(client: Client, account: str, field: str) -> None:
    if not client.may_use(account):
        raise _refuse_account(client, account, field)


def _order_account(request: Any, client: Client, orders: OrderAccounts) -> None:
    _check_account(client, request.order.account, "order.account")


def _working_order(request: Any, client: Client, orders: OrderAccounts) -> None:
    # The order's account decides; an unknown id is left to the handler (NOT_FOUND).
    account = orders(request.client_order_id)
    if account is not None:
        _check_account(client, account, "client_order_id")


def _fill_account(request: Any, client: Client, orders: OrderAccounts) -> None:
    _check_account(client, request.fill.account, "fill.account")


def _batch_accounts(request: Any, client: Client, orders: OrderAccounts) -> None:
    for i, item in enumerate(request.fills):
        _check_account(client, item.fill.account, f"fills[{i}].fill.account")


def _account_filter(request: Any, client: Client, orders: OrderAccounts) -> None:
    """An account filter names only the client's accounts; an empty one becomes all of them."""
    if client.accounts is None:
        return
    for i, account in enumerate(request.accounts):
        _check_account(client, account, f"accounts[{i}]")
    if not request.accounts:
        if not client.accounts:
            raise PermissionDenied(
                f"client {client.name!r} has no accounts", reason="ACCOUNT_NOT_ENTITLED"
            )
        request.accounts.extend(sorted(client.accounts))


def _whole_book(request: Any, client: Client, orders: OrderAccounts) -> None:
    """Reports over every account (or statements naming any): only for clients of every account."""
    if client.accounts is not None:
        raise PermissionDenied(
            f"client {client.name!r} is limited to some accounts; this call covers all of them",
            reason="ACCOUNT_NOT_ENTITLED",
        )


Entitlement = Callable[[Any, Client, OrderAccounts], None]

RPC_ENTITLEMENTS: Mapping[str, Entitlement] = {
    f"{_P}PreTradeService.CheckOrder": _order_account,
    f"{_P}PreTradeService.SubmitOrder": _order_account,
    f"{_P}PreTradeService.CancelOrder": _working_order,
    f"{_P}PreTradeService.ReportOrderEvent": _working_order,
    f"{_P}PreTradeService.StreamOrderInstructions": _account_filter,
    f"{_P}RoutingService.RouteOrder": _order_account,
    f"{_P}RoutingService.GetRoutingReport": _whole_book,
    f"{_P}JournalService.RecordFill": _fill_account,
    # RecordFills: each message's fill.account (a stream, checked as the messages arrive).
    f"{_P}JournalService.RecordFills": _fill_account,
    f"{_P}JournalService.RecordFillBatches": _batch_accounts,
    f"{_P}JournalService.GetPositions": _account_filter,
    f"{_P}JournalService.GetPnl": _account_filter,
    f"{_P}JournalService.Reconcile": _whole_book,
    f"{_P}JournalService.VerifyAuditTrail": _whole_book,
}


@dataclass(frozen=True, slots=True)
class _Rule:
    roles: frozenset[Role]
    entitlement: Entitlement | None
    client_streaming: bool
    streaming: bool


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-client limits; 0 turns one off."""

    rate_per_second: float = 0.0
    burst: int = 100
    max_streams: int = 0
    stream_idle_seconds: float = 0.0

    @property
    def any(self) -> bool:
        return bool(self.rate_per_second or self.max_streams or self.stream_idle_seconds)


class Lease:
    """One open stream of one client: counted against its limit, watched for idleness."""

    __slots__ = ("_access", "expired", "key", "receiver", "receiving_since")

    def __init__(self, access: Access, key: str) -> None:
        self._access = access
        self.key = key
        self.receiver: asyncio.Task[Any] | None = None
        self.receiving_since = 0.0
        self.expired = False

    def release(self) -> None:
        self._access._release(self)


def _certificate_names(context: Context) -> list[str]:
    auth = context.auth_context()
    names = [v.decode() for v in auth.get("x509_common_name", ())]
    names += [v.decode() for v in auth.get("x509_subject_alternative_name", ())]
    return names


def _peer_host(context: Context) -> str:
    peer = context.peer() or "unknown"
    return peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer


class Access:
    """The gateway's admission of calls (one per process)."""

    def __init__(
        self,
        services: Iterable[ServiceDescriptor],
        *,
        clients_file: Path | None,
        mutual_tls: bool,
        limits: Limits,
        order_accounts: OrderAccounts,
    ) -> None:
        self.clients_file = clients_file
        self.mutual_tls = mutual_tls
        self.limits = limits
        self._order_accounts = order_accounts
        self.registry = load_clients(clients_file) if clients_file else None
        self._file_stamp = self._stamp()
        self._rules: dict[str, _Rule] = {}
        missing = []
        for service in services:
            for method in service.methods:
                roles = RPC_ROLES.get(method.full_name)
                if roles is None:
                    missing.append(method.full_name)
                    continue
                self._rules[method.full_name] = _Rule(
                    roles,
                    RPC_ENTITLEMENTS.get(method.full_name),
                    method.client_streaming,
                    method.client_streaming or method.server_streaming,
                )
        if missing:
            # A new RPC without a role would be open to nobody or everybody: neither silently.
            raise ConfigurationError([f"access: RPC {m} has no roles" for m in missing])
        self._rate = (
            RateLimiter(limits.rate_per_second, limits.burst) if limits.rate_per_second else None
        )
        self._streams: dict[str, int] = {}
        self._receiving: set[Lease] = set()
        self._seen: set[tuple[str, str]] = set()
        self._throttled_logs: dict[str, tuple[float, int]] = {}

    @property
    def authenticates(self) -> bool:
        return self.registry is not None

    # --- admission ------------------------------------------------------------------------

    def admit(self, method: str, request: Any, context: Context) -> tuple[Any, Lease | None]:
        """Admit one call or raise; returns the request to hand on (a client stream's messages
        are checked as they arrive) and the stream's lease, to be released when it ends."""
        rule = self._rules[method]
        registry = self.registry
        if registry is None:
            client = None
            key = "peer " + _peer_host(context)
        else:
            client = self._authenticate(registry, method, context)
            key = client.name
            if client.roles.isdisjoint(rule.roles):
                self._deny(key, method, "PERMISSION_DENIED", "ROLE_NOT_ALLOWED", context)
                raise PermissionDenied(
                    f"client {client.name!r} ({', '.join(sorted(r.value for r in client.roles))}"
                    f") may not call {method}",
                    reason="ROLE_NOT_ALLOWED",
                )
            if rule.entitlement is not None and not rule.client_streaming:
                try:
                    rule.entitlement(request, client, self._order_accounts)
                except PermissionDenied as refused:
                    self._deny(key, method, "PERMISSION_DENIED", refused.reason, context)
                    raise
        self._take_rate(key, method, context)
        lease = None
        if rule.streaming:
            lease = self._open_stream(key, method, context)
            if rule.client_streaming:
                check = None
                if client is not None and rule.entitlement is not None:
                    check = self._message_check(rule.entitlement, client, method, context)
                if check is not None or self.limits.stream_idle_seconds:
                    request = self._received(request, lease, check)
        if log.isEnabledFor(logging.INFO) and (key, method) not in self._seen:
            # The first call of a client to a method at INFO; every later one at DEBUG (an
            # emitted line costs microseconds on a ~150 us request).
            if len(self._seen) > 100_000:  # peers as keys (no authentication): stay bounded
                self._seen.clear()
            self._seen.add((key, method))
            log.info("access allowed", extra={"client": key, "method": method, "outcome": "OK"})
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("access allowed", extra={"client": key, "method": method, "outcome": "OK"})
        return request, lease

    def _authenticate(self, registry: ClientRegistry, method: str, context: Context) -> Client:
        authorization = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                authorization = value
                break
        if authorization is not None:
            scheme, _, token = str(authorization).partition(" ")
            client = registry.by_token(token.strip()) if scheme.lower() == "bearer" else None
            if client is None:
                self._deny(
                    "unknown", method, "UNAUTHENTICATED", "INVALID_TOKEN", context, throttle=True
                )
                raise Unauthenticated(
                    "the bearer token is not valid (unknown or revoked)", reason="INVALID_TOKEN"
                )
            return client
        if self.mutual_tls:
            names = _certificate_names(context)
            client = registry.by_certificate(names)
            if client is None:
                # The CA vouched for the certificate, but the clients file gives it no roles.
                name = names[0] if names else "unnamed certificate"
                self._deny(name, method, "PERMISSION_DENIED", "UNKNOWN_CLIENT", context)
                raise PermissionDenied(
                    f"certificate {name!r} names no client of the gateway", reason="UNKNOWN_CLIENT"
                )
            return client
        self._deny("anonymous", method, "UNAUTHENTICATED", "NO_CREDENTIALS", context, throttle=True)
        raise Unauthenticated(
            "no credentials: send 'authorization: Bearer <token>' or a client certificate",
            reason="NO_CREDENTIALS",
        )

    def _take_rate(self, key: str, method: str, context: Context) -> None:
        if self._rate is None:
            return
        wait = self._rate.take(key, time.monotonic())
        if wait:
            self._deny(key, method, "RESOURCE_EXHAUSTED", "RATE_LIMITED", context, throttle=True)
            raise ResourceExhausted(
                f"client {key!r} is over {self.limits.rate_per_second:g} calls a second; retry "
                f"in {wait:.3f} s",
                reason="RATE_LIMITED",
                retry_after=wait,
            )

    def _open_stream(self, key: str, method: str, context: Context) -> Lease:
        most = self.limits.max_streams
        open_now = self._streams.get(key, 0)
        if most and open_now >= most:
            self._deny(key, method, "RESOURCE_EXHAUSTED", "TOO_MANY_STREAMS", context)
            raise ResourceExhausted(
                f"client {key!r} already has {open_now} streams open (at most {most})",
                reason="TOO_MANY_STREAMS",
            )
        self._streams[key] = open_now + 1
        return Lease(self, key)

    def _release(self, lease: Lease) -> None:
        left = self._streams.get(lease.key, 1) - 1
        if left > 0:
            self._streams[lease.key] = left
        else:
            self._streams.pop(lease.key, None)
        self._receiving.discard(lease)

    def open_streams(self, key: str) -> int:
        """Streams ``key`` (a client name) holds open now."""
        return self._streams.get(key, 0)

    def _message_check(
        self, entitlement: Entitlement, client: Client, method: str, context: Context
    ) -> Callable[[Any], None]:
        def check(message: Any) -> None:
            try:
                entitlement(message, client, self._order_accounts)
            except PermissionDenied as refused:
                self._deny(client.name, method, "PERMISSION_DENIED", refused.reason, context)
                raise

        return check

    async def _received(
        self, source: AsyncIterator[Any], lease: Lease, check: Callable[[Any], None] | None
    ) -> AsyncIterator[Any]:
        """The client's messages, each checked; idle waits are watched by ``run_watchdog``."""
        iterator = source.__aiter__()
        watched = self.limits.stream_idle_seconds > 0
        if watched:
            lease.receiver = asyncio.current_task()
            self._receiving.add(lease)
        while True:
            if watched:
                lease.receiving_since = time.monotonic()
            try:
                message = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                receiver = lease.receiver
                # Our own cancellation (the watchdog's), and nobody else's: end the stream with
                # a status instead.
                if lease.expired and receiver is not None and receiver.uncancel() == 0:
                    raise StreamIdle(
                        f"no message for {self.limits.stream_idle_seconds:g} s: stream ended",
                        reason="STREAM_IDLE",
                    ) from None
                raise
            finally:
                lease.receiving_since = 0.0
            if check is not None:
                check(message)
            yield message

    # --- upkeep ---------------------------------------------------------------------------

    async def run_watchdog(self, interval: float) -> None:
        """End streams idle for longer than the limit; forget rate buckets of quiet clients."""
        idle = self.limits.stream_idle_seconds
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if idle:
                for lease in list(self._receiving):
                    since = lease.receiving_since
                    if since and now - since > idle and not lease.expired:
                        lease.expired = True
                        log.warning(
                            "stream idle: ended",
                            extra={"client": lease.key, "idle_seconds": round(now - since, 1)},
                        )
                        if lease.receiver is not None:
                            lease.receiver.cancel()
            if self._rate is not None:
                self._rate.forget_full(now)

    def _stamp(self) -> tuple[int, int] | None:
        if self.clients_file is None:
            return None
        try:
            stat = self.clients_file.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def reload_clients(self) -> bool:
        """Re-read the clients file (SIGHUP, or a change seen by ``watch_clients_file``).

        A file that does not load keeps the clients of the last good one, and says why.
        """
        if self.clients_file is None:
            return False
        self._file_stamp = self._stamp()
        try:
            registry = load_clients(self.clients_file)
        except ConfigurationError as exc:
            log.error(
                "clients file not reloaded: %s; the previous clients stay in force",
                "; ".join(exc.problems),
            )
            return False
        self.registry = registry
        self._seen.clear()
        log.info("clients file reloaded", extra={"clients": len(registry.clients)})
        return True

    async def watch_clients_file(self, poll_seconds: float) -> None:
        """Reload the clients file whenever its modification time or size changes."""
        while True:
            await asyncio.sleep(poll_seconds)
            if self._stamp() != self._file_stamp:
                self.reload_clients()

    # --- decisions ------------------------------------------------------------------------

    def _deny(
        self,
        client: str,
        method: str,
        outcome: str,
        reason: str,
        context: Context,
        *,
        throttle: bool = False,
    ) -> None:
        if throttle:
            # A client hammering a limit (or callers without valid credentials) get one line a
            # second, with the count it stands for: a flood must not turn into a log flood.
            now = time.monotonic()
            last, suppressed = self._throttled_logs.get(client, (0.0, 0))
            if now - last < 1.0:
                self._throttled_logs[client] = (last, suppressed + 1)
                return
            self._throttled_logs[client] = (now, 0)
            if len(self._throttled_logs) > 10_000:
                self._throttled_logs.clear()
        else:
            suppressed = 0
        log.warning(
            "access denied",
            extra={
                "client": client,
                "method": method,
                "outcome": outcome,
                "reason": reason,
                "peer": context.peer(),
                "suppressed": suppressed,
            },
        )
