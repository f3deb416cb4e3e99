"""Settings: parsed once at start from defaults, a TOML file, EXECGW_* variables and flags.

Later sources win: defaults < config file < environment < command-line flags. Every setting has
all four spellings: ``grpc_port`` in the file, ``EXECGW_GRPC_PORT`` in the environment and
``--grpc-port`` on the command line. Unknown keys and invalid values fail the start with every
problem listed at once. The result is a frozen ``Settings`` that is passed down; nothing else reads
the environment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from gateway.errors import ConfigurationError

ENV_PREFIX = "EXECGW_"
# Variables with the prefix that are not settings.
ENV_NOT_SETTINGS = frozenset({"EXECGW_CONFIG", "EXECGW_TEST_DATABASE_URL"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "text")
# gRPC takes its integer options as C ints.
GRPC_INT_MAX = 2**31 - 1
MARKET_CLOCKS = ("wall", "feed")
TRACING_EXPORTERS = ("none", "console", "otlp")
BAND_POLICIES = ("refuse", "accept_resting")
REST_REMAINDERS = ("last_swept", "limit")
# The routing weights must sum to 1 within this (they are shares of the score).
WEIGHT_SUM_TOLERANCE = 1e-9
ROUTING_WEIGHTS = (
    "routing_weight_spread",
    "routing_weight_latency",
    "routing_weight_fees",
    "routing_weight_fill_probability",
)


def default_data_dir() -> Path:
    """Per-user data folder for the embedded PostgreSQL (XDG base directory spec)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "execgw" / "postgres"


def shipped_venue_profiles() -> Path:
    """The venue profile file that ships in the package."""
    return Path(__file__).resolve().parent / "data" / "venues.toml"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the gateway process."""

    grpc_host: str = field(default="127.0.0.1", metadata=_help("address the gRPC server binds"))
    grpc_port: int = field(default=50051, metadata=_help("gRPC port; 0 picks a free port"))
    metrics_host: str = field(default="127.0.0.1", metadata=_help("address of the metrics server"))
    metrics_port: int = field(
        default=9108, metadata=_help("Prometheus metrics port; 0 picks a free port, -1 disables")
    )
    database_url: str | None = field(
        default=None,
        metadata=_help("PostgreSQL URL; unset starts an embedded PostgreSQL in data_dir"),
    )
    data_dir: Path = field(
        default_factory=default_data_dir,
        metadata=_help("data folder of the embedded PostgreSQL"),
    )
    db_pool_min_size: int = field(default=2, metadata=_help("connections kept open"))
    db_pool_max_size: int = field(default=10, metadata=_help("most connections in the pool"))
    db_connect_timeout_seconds: float = field(
        default=10.0, metadata=_help("timeout for connecting to PostgreSQL")
    )
    db_command_timeout_seconds: float = field(
        default=30.0, metadata=_help("timeout of one database statement")
    )
    migration_lock_timeout_seconds: float = field(
        default=60.0, metadata=_help("how long a start waits for another start's migrations")
    )
    shutdown_grace_seconds: float = field(
        default=10.0, metadata=_help("time in-flight RPCs get to finish on SIGTERM/SIGINT")
    )
    shutdown_drain_seconds: float = field(
        default=0.0,
        metadata=_help(
            "time between reporting NOT_SERVING and closing the listener, for load balancers"
        ),
    )
    max_concurrent_rpcs: int = field(
        default=4096,
        metadata=_help(
            "RPCs in progress (open streams included) past which new ones are refused with "
            "RESOURCE_EXHAUSTED instead of queueing; 0: no limit"
        ),
    )
    max_queued_calls: int = field(
        default=400,
        metadata=_help(
            "calls of one RPC method received but not yet taken up by the gateway past which "
            "gRPC refuses new ones itself, with status CANCELLED (refusals start at a quarter of "
            "it and reach every new call at it; each method has its own queue); 0: gRPC's "
            "default (1,000 rising to 3,000)"
        ),
    )
    max_streams_per_connection: int = field(
        default=0,
        metadata=_help(
            "calls one HTTP/2 connection may have open at once (streams included; the client "
            "waits for a free one); 0: gRPC's default, no limit"
        ),
    )
    max_message_bytes: int = field(
        default=4 * 1024 * 1024, metadata=_help("largest gRPC message accepted or sent")
    )
    reflection: bool = field(default=True, metadata=_help("serve gRPC server reflection"))
    tls_cert_file: Path | None = field(
        default=None,
        metadata=_help("PEM certificate chain of the gRPC port; with tls_key_file turns TLS on"),
    )
    tls_key_file: Path | None = field(
        default=None, metadata=_help("PEM private key of tls_cert_file")
    )
    tls_client_ca_file: Path | None = field(
        default=None,
        metadata=_help(
            "PEM CA bundle: clients must present a certificate it signed (mutual TLS); the "
            "client is named by the certificate's CN or a SAN; needs clients_file"
        ),
    )
    allow_insecure: bool = field(
        default=False,
        metadata=_help(
            "listen without TLS on a non-loopback grpc_host (refused otherwise; logs a warning)"
        ),
    )
    clients_file: Path | None = field(
        default=None,
        metadata=_help(
            "TOML file of the clients let in (name, roles, accounts, token hashes); turns "
            "authentication on; SIGHUP or a change reloads it"
        ),
    )
    clients_reload_poll_seconds: float = field(
        default=2.0,
        metadata=_help("how often clients_file is checked for a change (0: only on SIGHUP)"),
    )
    client_ca_file: Path | None = field(
        default=None,
        metadata=_help(
            "client commands (health, report, reconcile, audit): PEM CA bundle trusted for the "
            "gateway's certificate; set: they connect with TLS"
        ),
    )
    client_cert_file: Path | None = field(
        default=None,
        metadata=_help("client commands: PEM certificate presented under mutual TLS"),
    )
    client_key_file: Path | None = field(
        default=None, metadata=_help("client commands: PEM private key of client_cert_file")
    )
    client_token_file: Path | None = field(
        default=None,
        metadata=_help("client commands: file holding the bearer token they send"),
    )
    rate_limit_per_second: float = field(
        default=0.0,
        metadata=_help(
            "calls a second each client may start (token bucket; 0: no limit); over it: "
            "RESOURCE_EXHAUSTED with RetryInfo"
        ),
    )
    rate_limit_burst: int = field(
        default=100, metadata=_help("calls a client may start at once above its rate")
    )
    max_streams_per_client: int = field(
        default=0, metadata=_help("streams a client may hold open at once (0: no limit)")
    )
    stream_idle_seconds: float = field(
        default=0.0,
        metadata=_help(
            "end a client-streaming call (PublishMarketData, RecordFills) that sends no message "
            "for this long (0: never)"
        ),
    )
    market_clock: str = field(
        default="wall",
        metadata=_help(
            "exchange time from the system clock (wall) or from the latest published event (feed: "
            "replays, simulations, demos)"
        ),
    )
    market_tick_seconds: float = field(
        default=0.2,
        metadata=_help("how often time-driven market state (inferred pauses, phases) is applied"),
    )
    stream_heartbeat_seconds: float = field(
        default=5.0, metadata=_help("default heartbeat interval of the subscription streams")
    )
    stream_retention: int = field(
        default=100_000, metadata=_help("updates kept for subscribers resuming from a sequence")
    )
    outside_band_policy: str = field(
        default="refuse",
        metadata=_help(
            "a limit price outside the LULD bands: refuse, or accept_resting (let it rest)"
        ),
    )
    luld_limit_state_seconds: float = field(
        default=15.0, metadata=_help("limit state duration after which a pause is inferred")
    )
    luld_published_bands_authoritative: bool = field(
        default=True, metadata=_help("SIP-published LULD bands win over computed ones")
    )
    short_sale_refuse_market_orders: bool = field(
        default=True, metadata=_help("refuse short sale market orders under Reg SHO 201")
    )
    short_sale_refuse_without_nbb: bool = field(
        default=True,
        metadata=_help("refuse short sales under Reg SHO 201 when there is no national best bid"),
    )
    circuit_breaker_halt_cutoff: str = field(
        default="15:25",
        metadata=_help("Level 1/2 halt only at or before this time (shifted on early closes)"),
    )
    routing_weight_spread: float = field(
        default=0.40, metadata=_help("routing score weight of the price against the best quote")
    )
    routing_weight_latency: float = field(
        default=0.30, metadata=_help("routing score weight of the venue's latency")
    )
    routing_weight_fees: float = field(
        default=0.20, metadata=_help("routing score weight of the fee or rebate")
    )
    routing_weight_fill_probability: float = field(
        default=0.10,
        metadata=_help(
            "routing score weight of the learned fill probability; the four weights are >= 0 "
            "and sum to 1"
        ),
    )
    routing_latency_scale_us: float = field(
        default=50.0,
        metadata=_help(
            "latency differences are scored against at least this span (microseconds): venues "
            "a few microseconds apart do not take the latency weight's whole range"
        ),
    )
    routing_max_quote_age_seconds: float = field(
        default=2.0,
        metadata=_help(
            "a symbol whose latest quote is older is refused (STALE_QUOTES); an older venue "
            "quote excludes that venue"
        ),
    )
    routing_rest_remainder: str = field(
        default="last_swept",
        metadata=_help(
            "where a sweep's unfilled remainder rests: last_swept (the last price taken) or limit"
        ),
    )
    routing_medium_shares: int = field(
        default=500, metadata=_help("an order of at least this many shares is MEDIUM size tier")
    )
    routing_large_shares: int = field(
        default=2_000, metadata=_help("an order of at least this many shares is LARGE size tier")
    )
    routing_block_shares: int = field(
        default=10_000, metadata=_help("an order of at least this many shares is a BLOCK")
    )
    routing_medium_notional: Decimal = field(
        default=Decimal("25000"), metadata=_help("an order of at least this value ($) is MEDIUM")
    )
    routing_large_notional: Decimal = field(
        default=Decimal("100000"), metadata=_help("an order of at least this value ($) is LARGE")
    )
    routing_block_notional: Decimal = field(
        default=Decimal("200000"), metadata=_help("an order of at least this value ($) is a BLOCK")
    )
    routing_accuracy_tolerance: Decimal = field(
        default=Decimal("0.0010"),
        metadata=_help(
            "$/share by which a decision may miss the hindsight-best venue and still count as "
            "accurate (routing report)"
        ),
    )
    venue_profiles_file: Path = field(
        default_factory=shipped_venue_profiles,
        metadata=_help(
            "TOML file of the venue profiles (default: the shipped one); SIGHUP reloads"
        ),
    )
    venue_reload_poll_seconds: float = field(
        default=0.0,
        metadata=_help(
            "also reload the venue profile file when its modification time changes, checked this "
            "often (0: only on SIGHUP)"
        ),
    )
    venue_trip_seconds: float = field(
        default=30.0, metadata=_help("how long a venue's failover breaker keeps it out")
    )
    venue_probation_seconds: float = field(
        default=60.0,
        metadata=_help("probation after a trip: a new failure takes the venue out again"),
    )
    fill_probability_half_life_seconds: float = field(
        default=1800.0,
        metadata=_help("age at which a fill outcome counts half in the learned fill probability"),
    )
    gc_gen0_threshold: int = field(
        default=50_000,
        metadata=_help(
            "allocations between young-generation garbage collections; objects alive after the "
            "start are frozen out of collection (0 keeps Python's defaults)"
        ),
    )
    markout_horizon_seconds: float = field(
        default=60.0,
        metadata=_help("P&L market impact: the mid this long after a fill against the mid at it"),
    )
    mid_sample_seconds: float = field(
        default=1.0,
        metadata=_help("how often NBBO mids are sampled and recorded for P&L attribution"),
    )
    position_history: int = field(
        default=16384,
        metadata=_help(
            "fills kept in memory to rebuild a position after a correction or bust (older ones "
            "are read back from the journal when needed; 0 keeps every fill)"
        ),
    )
    cost_method: str = field(
        default="average",
        metadata=_help("cost method of accounts not in account_cost_methods: average or fifo"),
    )
    account_cost_methods: str = field(
        default="",
        metadata=_help("per-account position cost methods: ACCOUNT=fifo,ACCOUNT=average,..."),
    )
    commission_file: Path | None = field(
        default=None,
        metadata=_help(
            "TOML file of commission schedules ([default] and [accounts.NAME]: per_share with "
            "minimum and maximum, or bps); unset: no commission"
        ),
    )
    borrow_rates_file: Path | None = field(
        default=None,
        metadata=_help(
            "per-symbol annual borrow rates (hard to borrow), TOML or CSV: symbol, annual_rate, "
            "hard_to_borrow"
        ),
    )
    borrow_default_rate: Decimal = field(
        default=Decimal("0.0025"),
        metadata=_help("annual borrow rate of symbols not in borrow_rates_file (0.0025 = 0.25%)"),
    )
    log_level: str = field(default="INFO", metadata=_help("DEBUG, INFO, WARNING or ERROR"))
    log_format: str = field(default="json", metadata=_help("json (one object a line) or text"))
    feed_stale_seconds: float = field(
        default=10.0,
        metadata=_help(
            "orders are refused (MARKET_DATA_STALE) when a connected feed sends nothing for this "
            "long, and whenever the feed disconnected without closing its stream (0: only then)"
        ),
    )
    tracing_exporter: str = field(
        default="none",
        metadata=_help(
            "OpenTelemetry span exporter: none, console (stdout, one JSON line per span) or otlp "
            "(needs the optional opentelemetry-exporter-otlp-proto-grpc package, the otlp extra; "
            "OTEL_EXPORTER_OTLP_* variables)"
        ),
    )
    tracing_sample_ratio: float = field(
        default=0.01,
        metadata=_help(
            "share of requests traced when no caller trace says otherwise (0 to 1); a request "
            "with a traceparent follows its caller's sampling"
        ),
    )

    def validate(self) -> list[str]:
        """Return every problem with the values (empty when valid)."""
        problems = []
        for name in ("grpc_port", "metrics_port"):
            port = getattr(self, name)
            low = -1 if name == "metrics_port" else 0
            if not low <= port <= 65535:
                problems.append(f"{name}={port}: must be between {low} and 65535")
        if self.db_pool_min_size < 0:
            problems.append(f"db_pool_min_size={self.db_pool_min_size}: must be >= 0")
        if self.db_pool_max_size < max(1, self.db_pool_min_size):
            problems.append(
                f"db_pool_max_size={self.db_pool_max_size}: must be >= 1 and >= db_pool_min_size"
            )
        for name in (
            "db_connect_timeout_seconds",
            "db_command_timeout_seconds",
            "migration_lock_timeout_seconds",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"{name}={getattr(self, name)}: must be > 0")
        for name in ("shutdown_grace_seconds", "shutdown_drain_seconds"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)}: must be >= 0")
        for name in ("max_concurrent_rpcs", "max_queued_calls", "max_streams_per_connection"):
            if not 0 <= getattr(self, name) <= GRPC_INT_MAX:
                problems.append(f"{name}={getattr(self, name)}: must be >= 0 and <= {GRPC_INT_MAX}")
        if self.max_message_bytes < 1024:
            problems.append(f"max_message_bytes={self.max_message_bytes}: must be >= 1024")
        if self.market_clock not in MARKET_CLOCKS:
            problems.append(
                f"market_clock={self.market_clock!r}: must be one of {', '.join(MARKET_CLOCKS)}"
            )
        if self.outside_band_policy not in BAND_POLICIES:
            problems.append(
                f"outside_band_policy={self.outside_band_policy!r}: must be one of "
                f"{', '.join(BAND_POLICIES)}"
            )
        for name in ("market_tick_seconds", "stream_heartbeat_seconds", "luld_limit_state_seconds"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}={getattr(self, name)}: must be > 0")
        if self.gc_gen0_threshold < 0:
            problems.append(f"gc_gen0_threshold={self.gc_gen0_threshold}: must be >= 0")
        if self.stream_retention < 1:
            problems.append(f"stream_retention={self.stream_retention}: must be >= 1")
        try:
            hours, minutes = (int(p) for p in self.circuit_breaker_halt_cutoff.split(":"))
            if not (0 <= hours < 24 and 0 <= minutes < 60):
                raise ValueError
        except ValueError:
            problems.append(
                f"circuit_breaker_halt_cutoff={self.circuit_breaker_halt_cutoff!r}: must be HH:MM"
            )
        problems.extend(self._routing_problems())
        problems.extend(_journal_problems(self))
        problems.extend(_security_problems(self))
        if self.log_level not in LOG_LEVELS:
            problems.append(f"log_level={self.log_level!r}: must be one of {', '.join(LOG_LEVELS)}")
        if self.feed_stale_seconds < 0:
            problems.append(f"feed_stale_seconds={self.feed_stale_seconds}: must be >= 0")
        if self.tracing_exporter not in TRACING_EXPORTERS:
            problems.append(
                f"tracing_exporter={self.tracing_exporter!r}: must be one of "
                f"{', '.join(TRACING_EXPORTERS)}"
            )
        if not 0 <= self.tracing_sample_ratio <= 1:
            problems.append(
                f"tracing_sample_ratio={self.tracing_sample_ratio}: must be between 0 and 1"
            )
        if self.log_format not in LOG_FORMATS:
            problems.append(
                f"log_format={self.log_format!r}: must be one of {', '.join(LOG_FORMATS)}"
            )
        if self.database_url is not None and not self.database_url.startswith(
            ("postgres://", "postgresql://")
        ):
            problems.append("database_url: must start with postgresql:// or postgres://")
        return problems

    def _routing_problems(self) -> list[str]:
        problems = []
        weights = [getattr(self, name) for name in ROUTING_WEIGHTS]
        for name, weight in zip(ROUTING_WEIGHTS, weights, strict=True):
            if not (math.isfinite(weight) and weight >= 0):
                problems.append(f"{name}={weight}: must be >= 0")
        if not math.isclose(sum(weights), 1.0, rel_tol=0, abs_tol=WEIGHT_SUM_TOLERANCE):
            problems.append(
                "routing weights: spread + latency + fees + fill_probability must sum to 1, not "
                f"{sum(weights):.9g}"
            )
        for name in (
            "routing_max_quote_age_seconds",
            "venue_trip_seconds",
            "venue_probation_seconds",
            "fill_probability_half_life_seconds",
        ):
            if not getattr(self, name) > 0:
                problems.append(f"{name}={getattr(self, name)}: must be > 0")
        scale = self.routing_latency_scale_us
        if not (scale >= 0 and math.isfinite(scale)):
            problems.append(f"routing_latency_scale_us={scale}: must be finite and >= 0")
        if not self.venue_reload_poll_seconds >= 0:
            problems.append(
                f"venue_reload_poll_seconds={self.venue_reload_poll_seconds}: must be >= 0"
            )
        if self.routing_rest_remainder not in REST_REMAINDERS:
            problems.append(
                f"routing_rest_remainder={self.routing_rest_remainder!r}: must be one of "
                f"{', '.join(REST_REMAINDERS)}"
            )
        if (
            not 0
            < self.routing_medium_shares
            <= self.routing_large_shares
            <= (self.routing_block_shares)
        ):
            problems.append(
                "routing_medium_shares <= routing_large_shares <= routing_block_shares: must be "
                "increasing and > 0"
            )
        if (
            not 0
            < self.routing_medium_notional
            <= self.routing_large_notional
            <= (self.routing_block_notional)
        ):
            problems.append(
                "routing_medium_notional <= routing_large_notional <= routing_block_notional: "
                "must be increasing and > 0"
            )
        if not (
            self.routing_accuracy_tolerance.is_finite() and self.routing_accuracy_tolerance >= 0
        ):
            problems.append(
                f"routing_accuracy_tolerance={self.routing_accuracy_tolerance}: must be >= 0"
            )
        return problems


def _parse_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a decimal number")
    # A TOML float goes through its shortest repr: 0.001 stays 0.001.
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("expected a decimal number") from None


COST_METHODS = ("average", "fifo")


def account_cost_methods(text: str) -> tuple[dict[str, str], list[str]]:
    """Parse ``ACCOUNT=method,...`` (``account_cost_methods``): the methods and the problems."""
    methods: dict[str, str] = {}
    problems = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        account, sep, method = (piece.strip() for piece in item.partition("="))
        if not sep or not account or method.lower() not in COST_METHODS:
            problems.append(
                f"account_cost_methods: {item!r} must be ACCOUNT=average or ACCOUNT=fifo"
            )
        elif account in methods:
            problems.append(f"account_cost_methods: account {account!r} is listed twice")
        else:
            methods[account] = method.lower()
    return methods, problems


def _journal_problems(settings: Settings) -> list[str]:
    problems = []
    for name in ("markout_horizon_seconds", "mid_sample_seconds"):
        value = getattr(settings, name)
        if not (math.isfinite(value) and value > 0):
            problems.append(f"{name}={value}: must be > 0")
    if settings.position_history < 0:
        problems.append(f"position_history={settings.position_history}: must be >= 0")
    if settings.cost_method.lower() not in COST_METHODS:
        problems.append(f"cost_method={settings.cost_method!r}: must be average or fifo")
    problems.extend(account_cost_methods(settings.account_cost_methods)[1])
    rate = settings.borrow_default_rate
    if not (rate.is_finite() and rate >= 0):
        problems.append(f"borrow_default_rate={rate}: must be >= 0")
    for name in ("commission_file", "borrow_rates_file"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            problems.append(f"{name}={path}: no such file")
    return problems


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    name = host.strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def listen_problems(settings: Settings) -> list[str]:
    """Why the gRPC port must not open as configured (plaintext beyond loopback)."""
    if settings.tls_cert_file is None and not (
        is_loopback(settings.grpc_host) or settings.allow_insecure
    ):
        return [
            f"grpc_host={settings.grpc_host}: listening beyond loopback needs TLS "
            "(tls_cert_file, tls_key_file) or allow_insecure"
        ]
    return []


def _security_problems(settings: Settings) -> list[str]:
    # listen_problems are not among them: they stop ``serve`` (gateway.transport), not the client
    # commands (health, report, ...) that share these settings.
    problems = []
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        problems.append("tls_cert_file and tls_key_file: set both or neither")
    if settings.tls_client_ca_file is not None:
        if settings.tls_cert_file is None:
            problems.append("tls_client_ca_file: mutual TLS needs tls_cert_file and tls_key_file")
        if settings.clients_file is None:
            problems.append("tls_client_ca_file: needs clients_file (it gives clients their roles)")
    if (settings.client_cert_file is None) != (settings.client_key_file is None):
        problems.append("client_cert_file and client_key_file: set both or neither")
    for name in (
        "tls_cert_file",
        "tls_key_file",
        "tls_client_ca_file",
        "clients_file",
        "client_ca_file",
        "client_cert_file",
        "client_key_file",
        "client_token_file",
    ):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            problems.append(f"{name}={path}: no such file")
    for name in ("clients_reload_poll_seconds", "rate_limit_per_second", "stream_idle_seconds"):
        value = getattr(settings, name)
        if not (math.isfinite(value) and value >= 0):
            problems.append(f"{name}={value}: must be >= 0")
    if settings.rate_limit_burst < 1:
        problems.append(f"rate_limit_burst={settings.rate_limit_burst}: must be >= 1")
    if settings.max_streams_per_client < 0:
        problems.append(f"max_streams_per_client={settings.max_streams_per_client}: must be >= 0")
    return problems


FIELDS: Mapping[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Settings)}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parser(name: str) -> Callable[[Any], Any]:
    kind = str(FIELDS[name].type)
    if kind == "int":
        return lambda v: v if isinstance(v, int) and not isinstance(v, bool) else int(str(v))
    if kind == "float":
        return lambda v: (
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) else float(str(v))
        )
    if kind == "bool":
        return lambda v: v if isinstance(v, bool) else _parse_bool(str(v))
    if kind == "Decimal":
        return _parse_decimal
    if kind == "Path | None":
        return lambda v: None if v in (None, "") else Path(str(v)).expanduser()
    if kind == "Path":
        return lambda v: Path(str(v)).expanduser()
    if kind == "str | None":
        return lambda v: None if v in (None, "") else str(v)
    return str


def _coerce(raw: Mapping[str, Any], source: str, problems: list[str]) -> dict[str, Any]:
    values = {}
    for key, value in raw.items():
        if key not in FIELDS:
            problems.append(f"{source}: unknown setting {key!r}")
            continue
        try:
            values[key] = _parser(key)(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"{source}: {key}={value!r}: {exc}")
    return values


def from_env(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Settings named by EXECGW_* variables, and the unknown ones."""
    found: dict[str, str] = {}
    unknown = []
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in FIELDS:
            found[key] = value
        else:
            unknown.append(f"environment: unknown variable {name}")
    return found, unknown


def load(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from every source, or raise ConfigurationError listing each problem.

    ``config_file`` defaults to $EXECGW_CONFIG when set. ``overrides`` are command-line values.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, Any] = {}
    path = config_file or (Path(env["EXECGW_CONFIG"]) if env.get("EXECGW_CONFIG") else None)
    if path is not None:
        try:
            with path.open("rb") as handle:
                values.update(_coerce(tomllib.load(handle), f"config file {path}", problems))
        except OSError as exc:
            problems.append(f"config file {path}: cannot read: {exc.strerror}")
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"config file {path}: not valid TOML: {exc}")
    env_values, env_problems = from_env(env)
    problems.extend(env_problems)
    values.update(_coerce(env_values, "environment", problems))
    values.update(_coerce(dict(overrides or {}), "command line", problems))
    settings = Settings(**values)
    problems.extend(settings.validate())
    if problems:
        raise ConfigurationError(problems)
    return settings
