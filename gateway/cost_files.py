"""The journal's cost data from the settings: commission schedules, borrow rates, cost methods.

Read once at start; a bad file fails the start with every problem listed (ConfigurationError).
Money and rates are decimals: TOML numbers are read as ``Decimal`` from their text, so ``0.0035``
is exactly 0.0035 (quoting them as strings works too).

Commission file (``commission_file``), TOML; accounts not listed pay ``[default]`` (none when it is
absent too)::

    [default]
    per_share = 0.0035      # dollars per share ...
    minimum = 0.35          # ... at least this per fill (optional)
    maximum = 1.00          # ... at most this per fill (optional)

    [accounts."ACC-1"]
    bps = 0.5               # or basis points of the fill's value

Borrow rate file (``borrow_rates_file``), annual rates as fractions (0.35 = 35% a year), TOML::

    [symbols]
    GME = { annual_rate = 0.35, hard_to_borrow = true }
    AAPL = 0.003

or CSV with the header ``symbol,annual_rate,hard_to_borrow`` (the last column optional, true/false).
Symbols not listed borrow at ``borrow_default_rate``.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from gateway.domain.borrow import BorrowRate, BorrowRates
from gateway.domain.fees import NO_COMMISSION, CommissionKind, CommissionSchedule, FeeSettings
from gateway.domain.positions import CostMethod
from gateway.errors import ConfigurationError
from gateway.settings import Settings, account_cost_methods

_SCHEDULE_KEYS = frozenset({"per_share", "bps", "minimum", "maximum"})
_RATE_KEYS = frozenset({"annual_rate", "hard_to_borrow"})


@dataclass(frozen=True, slots=True)
class JournalCosts:
    """What the trade journal is built with, from the settings and their files."""

    fees: FeeSettings = field(default_factory=FeeSettings)
    borrow_rates: BorrowRates = field(default_factory=BorrowRates)
    cost_methods: Mapping[str, CostMethod] = field(default_factory=dict)
    default_cost_method: CostMethod = CostMethod.AVERAGE


def load_journal_costs(settings: Settings) -> JournalCosts:
    """Read the cost files named by ``settings``; raise ConfigurationError listing every problem."""
    problems: list[str] = []
    default, commissions = NO_COMMISSION, dict[str, CommissionSchedule]()
    if settings.commission_file is not None:
        default, commissions = _commissions(settings.commission_file, problems)
    rates: list[BorrowRate] = []
    if settings.borrow_rates_file is not None:
        rates = _borrow_rates(settings.borrow_rates_file, problems)
    methods, method_problems = account_cost_methods(settings.account_cost_methods)
    problems.extend(method_problems)
    if problems:
        raise ConfigurationError(problems)
    return JournalCosts(
        FeeSettings(default_commission=default, commissions=commissions),
        BorrowRates(rates, settings.borrow_default_rate),
        {account: CostMethod(method.upper()) for account, method in methods.items()},
        CostMethod(settings.cost_method.upper()),
    )


def _read(path: Path, problems: list[str]) -> str | None:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
        return None


def _toml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    text = _read(path, problems)
    if text is None:
        return None
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
        return None


def _amount(value: Any, where: str, problems: list[str]) -> Decimal | None:
    """A non-negative decimal from a TOML number or string, else a problem naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        problems.append(f"{where}: expected a decimal number, got {value!r}")
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        problems.append(f"{where}: expected a decimal number, got {value!r}")
        return None
    if not amount.is_finite() or amount < 0:
        problems.append(f"{where}: must be a finite number >= 0, got {value!r}")
        return None
    return amount


def _schedule(raw: Any, where: str, problems: list[str]) -> CommissionSchedule | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a table")
        return None
    unknown = sorted(set(raw) - _SCHEDULE_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}")
    if ("per_share" in raw) == ("bps" in raw):
        problems.append(f"{where}: give exactly one of per_share or bps")
        return None
    kind = CommissionKind.PER_SHARE if "per_share" in raw else CommissionKind.BASIS_POINTS
    key = "per_share" if kind is CommissionKind.PER_SHARE else "bps"
    rate = _amount(raw[key], f"{where}.{key}", problems)
    minimum = _amount(raw.get("minimum", 0), f"{where}.minimum", problems)
    maximum = None
    if "maximum" in raw:
        maximum = _amount(raw["maximum"], f"{where}.maximum", problems)
        if maximum is not None and minimum is not None and maximum < minimum:
            problems.append(f"{where}.maximum: must not be below minimum ({minimum})")
            return None
    if rate is None or minimum is None or ("maximum" in raw and maximum is None):
        return None
    return CommissionSchedule(kind, rate, minimum, maximum)


def _commissions(
    path: Path, problems: list[str]
) -> tuple[CommissionSchedule, dict[str, CommissionSchedule]]:
    data = _toml(path, problems)
    if data is None:
        return NO_COMMISSION, {}
    unknown = sorted(set(data) - {"default", "accounts"})
    if unknown:
        problems.append(f"{path}: unknown table(s) {', '.join(unknown)}")
    default = NO_COMMISSION
    if "default" in data:
        default = _schedule(data["default"], f"{path}: default", problems) or NO_COMMISSION
    accounts = data.get("accounts", {})
    if not isinstance(accounts, dict):
        problems.append(f"{path}: accounts: expected a table of accounts")
        return default, {}
    schedules = {}
    for account, raw in accounts.items():
        schedule = _schedule(raw, f"{path}: accounts.{account}", problems)
        if schedule is not None:
            schedules[account] = schedule
    return default, schedules


def _flag(value: Any, where: str, problems: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "false", "no", "0"):
        return False
    if text in ("true", "yes", "1"):
        return True
    problems.append(f"{where}: expected true or false, got {value!r}")
    return False


def _borrow_rates(path: Path, problems: list[str]) -> list[BorrowRate]:
    if path.suffix.lower() == ".csv":
        return _borrow_rates_csv(path, problems)
    data = _toml(path, problems)
    if data is None:
        return []
    unknown = sorted(set(data) - {"symbols"})
    if unknown:
        problems.append(f"{path}: unknown table(s) {', '.join(unknown)}")
    symbols = data.get("symbols", {})
    if not isinstance(symbols, dict):
        problems.append(f"{path}: symbols: expected a table of symbols")
        return []
    rates = []
    for symbol, raw in symbols.items():
        where = f"{path}: symbols.{symbol}"
        entry = raw if isinstance(raw, dict) else {"annual_rate": raw}
        extra = sorted(set(entry) - _RATE_KEYS)
        if extra:
            problems.append(f"{where}: unknown key(s) {', '.join(extra)}")
        if "annual_rate" not in entry:
            problems.append(f"{where}.annual_rate: is required")
            continue
        rate = _amount(entry["annual_rate"], f"{where}.annual_rate", problems)
        hard = _flag(entry.get("hard_to_borrow", False), f"{where}.hard_to_borrow", problems)
        if rate is not None:
            rates.append(BorrowRate(symbol, rate, hard))
    return rates


def _borrow_rates_csv(path: Path, problems: list[str]) -> list[BorrowRate]:
    text = _read(path, problems)
    if text is None:
        return []
    reader = csv.DictReader(io.StringIO(text))
    header = set(reader.fieldnames or ())
    if not {"symbol", "annual_rate"} <= header:
        problems.append(f"{path}: the header must name symbol and annual_rate")
        return []
    rates = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        where = f"{path}: line {line}"
        symbol = (row.get("symbol") or "").strip()
        if not symbol:
            problems.append(f"{where}: symbol: is required")
            continue
        if symbol in seen:
            problems.append(f"{where}: symbol {symbol} is listed twice")
            continue
        seen.add(symbol)
        rate = _amount(row.get("annual_rate") or "", f"{where}: annual_rate", problems)
        hard = _flag(row.get("hard_to_borrow") or "", f"{where}: hard_to_borrow", problems)
        if rate is not None:
            rates.append(BorrowRate(symbol, rate, hard))
    return rates
