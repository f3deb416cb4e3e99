"""Positions per account and symbol, long and short, at weighted-average cost or FIFO lots.

A position is a fold over its *effective* fills in journal order: the NEW fills, with each corrected
fill replaced in place by its correction and each busted fill left out. Nothing is mutated in the
history: a bust or correction rebuilds that account x symbol from its effective fills, which is the
same fold a restart does, so live and replayed positions are equal by construction. A new fill is
folded in incrementally (O(1) at average cost; O(lots closed) for FIFO).

Money is exact: ``cost_basis`` is the signed sum of quantity x price of the open shares (negative
for a short). A fill that crosses zero closes the position and opens the rest on the other side.
Realised P&L of a close is ``sign x closed x price - cost basis removed``; at average cost the basis
removed by a partial close is pro rata, rounded half-even to 12 decimal places (so basis and
realised P&L remain exact sums: realised - basis always equals the cash traded), by a full close
the whole basis, so a round trip at one price realises exactly zero.

A correction or bust that arrives before the fill it names waits, and applies when that fill
arrives (the same on replay). A second record with a known (venue, exec_id) changes nothing.

Memory: a book built with ``history=N`` keeps only the latest N effective fills for rebuilds; older
ones are folded into a per-position base ledger and forgotten (with their keys). Such a book can no
longer place a record that names a forgotten fill, nor tell a forgotten fill from an unseen one:
``knows`` says so, and the caller rebuilds those positions from the journal and hands them over
with ``adopt`` (``gateway.trade_journal`` does).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from gateway.domain.fills import Fill, FillKey, FillKind
from gateway.domain.vocabulary import Vocabulary

ZERO = Decimal(0)
_AVERAGE_COST_PLACES = Decimal("0.000001")
_BASIS_PLACES = Decimal("1e-12")

PositionKey = tuple[str, str]
"""(account, symbol)."""


class CostMethod(Vocabulary):
    AVERAGE = "AVERAGE"
    FIFO = "FIFO"


@dataclass(frozen=True, slots=True)
class Lot:
    """Open shares from one fill (FIFO): signed quantity, price and when they were opened."""

    quantity: int
    price: Decimal
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class Position:
    """A position at a point in the journal. ``quantity`` is signed: > 0 long, < 0 short."""

    account: str
    symbol: str
    quantity: int
    cost_basis: Decimal
    realized_pnl: Decimal
    cost_method: CostMethod
    updated_at: datetime | None
    lots: tuple[Lot, ...] = ()

    @property
    def average_cost(self) -> Decimal:
        """Cost per share of the open shares (6 places, half-even); zero when flat."""
        if not self.quantity:
            return ZERO
        return (self.cost_basis / self.quantity).quantize(
            _AVERAGE_COST_PLACES, rounding=ROUND_HALF_EVEN
        )

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        """Exact P&L of the open shares marked at ``mark``."""
        return self.quantity * mark - self.cost_basis


class FillOutcome(Vocabulary):
    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"
    # A correction or bust of a fill not seen yet: applied when that fill arrives.
    WAITING_FOR_REFERENCE = "WAITING_FOR_REFERENCE"
    # A correction or bust of a fill already busted: nothing left to change.
    REFERENCE_BUSTED = "REFERENCE_BUSTED"


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What applying one record did to its own account x symbol.

    ``position`` is the result without lots (ask the book for them); ``realized_pnl`` is the change
    of that position's realised P&L (a bust or correction may change it by any amount).
    """

    outcome: FillOutcome
    position: Position
    realized_pnl: Decimal
    rebuilt: bool = False


class PositionLedger:
    """Running state of one account x symbol: fold effective fills in order with ``apply``.

    Mutable, owned by one ``PositionBook`` (or a P&L computation that folds fills itself).
    """

    __slots__ = ("cost_basis", "lots", "method", "quantity", "realized", "updated_at")

    def __init__(self, method: CostMethod) -> None:
        self.method = method
        self.quantity = 0
        self.cost_basis = ZERO
        self.realized = ZERO
        self.lots: deque[Lot] = deque()
        self.updated_at: datetime | None = None

    def apply(self, fill: Fill) -> Decimal:
        """Fold one effective fill in; return the P&L it realises."""
        delta = fill.signed_quantity
        price = fill.price
        held = self.quantity
        if self.updated_at is None or fill.transaction_time > self.updated_at:
            self.updated_at = fill.transaction_time
        if held == 0 or (held > 0) == (delta > 0):
            self._open(delta, price, fill.transaction_time)
            return ZERO
        sign = 1 if held > 0 else -1
        closing = min(abs(delta), abs(held))
        removed = self._remove_basis(closing, sign)
        realized = sign * closing * price - removed
        self.realized += realized
        self.quantity = held - sign * closing
        self.cost_basis = self.cost_basis - removed if self.quantity else ZERO
        rest = abs(delta) - closing
        if rest:
            self._open(-sign * rest, price, fill.transaction_time)
        return realized

    def _open(self, delta: int, price: Decimal, at: datetime) -> None:
        self.quantity += delta
        self.cost_basis += delta * price
        if self.method is CostMethod.FIFO:
            self.lots.append(Lot(delta, price, at))

    def _remove_basis(self, closing: int, sign: int) -> Decimal:
        if self.method is CostMethod.AVERAGE:
            held = abs(self.quantity)
            if closing == held:
                return self.cost_basis
            # Pro rata, at a fixed scale so basis and realised P&L stay exact sums.
            return (self.cost_basis * closing / held).quantize(
                _BASIS_PLACES, rounding=ROUND_HALF_EVEN
            )
        removed = ZERO
        remaining = closing
        lots = self.lots
        while remaining:
            lot = lots[0]
            size = abs(lot.quantity)
            if size <= remaining:
                lots.popleft()
                removed += lot.quantity * lot.price
                remaining -= size
            else:
                lots[0] = Lot(lot.quantity - sign * remaining, lot.price, lot.opened_at)
                removed += sign * remaining * lot.price
                remaining = 0
        return removed

    def copy(self) -> PositionLedger:
        twin = PositionLedger(self.method)
        twin.quantity = self.quantity
        twin.cost_basis = self.cost_basis
        twin.realized = self.realized
        twin.lots = deque(self.lots)
        twin.updated_at = self.updated_at
        return twin

    def snapshot(self, key: PositionKey, include_lots: bool) -> Position:
        return Position(
            key[0],
            key[1],
            self.quantity,
            self.cost_basis,
            self.realized,
            self.method,
            self.updated_at,
            tuple(self.lots) if include_lots else (),
        )


class PositionBook:
    """Every position of the accounts one process owns, kept from the fills in journal order.

    Args:
        cost_methods: per-account cost method; accounts not listed use ``default_method``.
        history: how many effective fills to keep for rebuilds (None: all; see the module notes).
    """

    __slots__ = (
        "_aliases",
        "_base",
        "_busted",
        "_default_method",
        "_effective",
        "_forgotten",
        "_history",
        "_index",
        "_ledgers",
        "_methods",
        "_order",
        "_seen",
        "_waiting",
    )

    def __init__(
        self,
        cost_methods: Mapping[str, CostMethod] | None = None,
        default_method: CostMethod = CostMethod.AVERAGE,
        *,
        history: int | None = None,
    ) -> None:
        if history is not None and history < 1:
            raise ValueError(f"history={history}: must be >= 1 (or None to keep every fill)")
        self._methods = dict(cost_methods or {})
        self._default_method = default_method
        self._history = history
        self._ledgers: dict[PositionKey, PositionLedger] = {}
        # Effective fills per position, keyed by the slot (the original fill's key), in order.
        self._effective: dict[PositionKey, OrderedDict[FillKey, Fill]] = {}
        # With a history limit: the fold of each position's forgotten fills, and every kept slot
        # in the order it joined (a slot gone since is skipped when its turn comes).
        self._base: dict[PositionKey, PositionLedger] = {}
        self._order: deque[tuple[PositionKey, FillKey]] = deque()
        self._forgotten = False
        # Every live key (original or correction) -> (position, slot); aliases: slot -> keys.
        self._index: dict[FillKey, tuple[PositionKey, FillKey]] = {}
        self._aliases: dict[FillKey, list[FillKey]] = {}
        self._busted: set[FillKey] = set()
        self._seen: set[FillKey] = set()
        self._waiting: dict[FillKey, list[Fill]] = {}

    @classmethod
    def replay(
        cls,
        fills: Iterable[Fill],
        cost_methods: Mapping[str, CostMethod] | None = None,
        default_method: CostMethod = CostMethod.AVERAGE,
    ) -> PositionBook:
        """Build a book of every fill, in journal order, forgetting none (a book with a bounded
        history cannot place a record naming a fill it forgot: see ``knows``)."""
        book = cls(cost_methods, default_method)
        for fill in fills:
            book.apply(fill)
        return book

    def cost_method(self, account: str) -> CostMethod:
        return self._methods.get(account, self._default_method)

    def apply(self, fill: Fill) -> FillEffect:
        """Apply one journaled record (new fill, correction or bust); never raises for order."""
        fill_key = (fill.venue, fill.exec_id)
        key = (fill.account, fill.symbol)
        if fill_key in self._seen:
            return FillEffect(FillOutcome.DUPLICATE, self.position(*key), ZERO)
        self._seen.add(fill_key)
        if fill.kind is FillKind.NEW:
            ledger = self._ledgers.get(key) or self._ledger(key)
            self._effective[key][fill_key] = fill
            self._index[fill_key] = (key, fill_key)
            realized = ledger.apply(fill)
            if self._history is not None:
                self._remember(key, fill_key)
            if not self._waiting or fill_key not in self._waiting:
                return FillEffect(FillOutcome.APPLIED, ledger.snapshot(key, False), realized)
            before = ledger.realized - realized
            self._release(fill_key)
            return FillEffect(
                FillOutcome.APPLIED, self.position(*key), self._realized_of(key) - before, True
            )
        before = self._realized_of(key)
        outcome, touched = self._amend(fill)
        if outcome is not FillOutcome.APPLIED:
            return FillEffect(outcome, self.position(*key), ZERO)
        return FillEffect(
            outcome, self.position(*key), self._realized_of(key) - before, bool(touched)
        )

    def _realized_of(self, key: PositionKey) -> Decimal:
        ledger = self._ledgers.get(key)
        return ledger.realized if ledger is not None else ZERO

    def _ledger(self, key: PositionKey) -> PositionLedger:
        ledger = self._ledgers.get(key)
        if ledger is None:
            ledger = self._ledgers[key] = PositionLedger(self.cost_method(key[0]))
            self._effective[key] = OrderedDict()
        return ledger

    def _amend(self, record: Fill) -> tuple[FillOutcome, set[PositionKey]]:
        target = record.corrects_key
        located = self._index.get(target)
        if located is None:
            if target in self._busted:
                self._busted.add(record.key)
                return FillOutcome.REFERENCE_BUSTED, set()
            self._waiting.setdefault(target, []).append(record)
            return FillOutcome.WAITING_FOR_REFERENCE, set()
        old_key, slot = located
        # Keys that name the same execution (original and corrections), kept once corrected.
        aliases = self._aliases.pop(slot, [slot])
        if record.kind is FillKind.BUST:
            del self._effective[old_key][slot]
            for alias in aliases:
                del self._index[alias]
                self._busted.add(alias)
            self._busted.add(record.key)
            self._rebuild(old_key)
            return FillOutcome.APPLIED, {old_key} | self._release(record.key)
        new_key = (record.account, record.symbol)
        if new_key == old_key:
            self._effective[old_key][slot] = record  # replaced in place: keeps journal order
            aliases.append(record.key)
            self._aliases[slot] = aliases
            self._index[record.key] = (old_key, slot)
        else:
            # Moved to another account or symbol: it joins that position at the end.
            del self._effective[old_key][slot]
            self._ledger(new_key)
            self._effective[new_key][record.key] = record
            aliases.append(record.key)
            self._aliases[record.key] = aliases
            for alias in aliases:
                self._index[alias] = (new_key, record.key)
            if self._history is not None:
                self._remember(new_key, record.key)
        touched = {old_key, new_key}
        for key in touched:
            self._rebuild(key)
        return FillOutcome.APPLIED, touched | self._release(record.key)

    def _release(self, key: FillKey) -> set[PositionKey]:
        """Apply the corrections and busts that were waiting for ``key``."""
        touched: set[PositionKey] = set()
        for record in self._waiting.pop(key, []):
            touched |= self._amend(record)[1]
            touched |= self._release(record.key)
        return touched

    def _rebuild(self, key: PositionKey) -> None:
        base = self._base.get(key)
        ledger = base.copy() if base is not None else PositionLedger(self.cost_method(key[0]))
        self._ledgers[key] = ledger
        for fill in self._effective[key].values():
            ledger.apply(fill)

    def _remember(self, key: PositionKey, slot: FillKey) -> None:
        order = self._order
        order.append((key, slot))
        limit = self._history or 0
        while len(order) > limit:
            self._forget(*order.popleft())

    def _forget(self, key: PositionKey, slot: FillKey) -> None:
        """Fold ``key``'s effective fills up to ``slot`` into its base and drop them."""
        effective = self._effective.get(key)
        if not effective or slot not in effective:
            return  # busted, moved, or already folded
        base = self._base.get(key)
        if base is None:
            base = self._base[key] = PositionLedger(self.cost_method(key[0]))
        while True:
            first, fill = effective.popitem(last=False)
            base.apply(fill)
            for alias in self._aliases.pop(first, (first,)):
                self._index.pop(alias, None)
                self._seen.discard(alias)
            if first == slot:
                break
        self._forgotten = True

    def knows(self, record: Fill, duplicate: bool = False) -> bool:
        """Whether ``apply`` can place ``record`` from memory.

        Always true until the book forgets fills (``history``). After that, a record is known when
        its own key was seen, when it is a NEW fill the journal just stored for the first time
        (``duplicate`` false), or when the fill it names is kept or known busted. An unknown record
        needs its positions rebuilt from the journal (``adopt``) instead of ``apply``.
        """
        if not self._forgotten or record.key in self._seen:
            return True
        if record.kind is FillKind.NEW:
            return not duplicate
        target = record.corrects_key
        return target in self._index or target in self._busted

    def seen(self, key: FillKey) -> bool:
        """Whether a record with ``key`` was applied (or is waiting) and not forgotten since."""
        return key in self._seen

    def adopt(self, other: PositionBook, keys: Iterable[PositionKey]) -> None:
        """Replace positions ``keys`` by ``other``'s (rebuilt from every journal record of them).

        ``other`` must hold exactly the journal records of ``keys`` (and of no other position),
        in journal order, as ``PositionBook.replay`` over those rows gives.
        """
        keys = set(keys)
        for alias in [k for k, (key, _) in self._index.items() if key in keys]:
            slot = self._index.pop(alias)[1]
            self._aliases.pop(slot, None)
        for key in keys:
            self._base.pop(key, None)
            ledger = other._ledgers.get(key)
            if ledger is None:
                self._ledgers.pop(key, None)
                self._effective.pop(key, None)
                continue
            self._ledgers[key] = ledger
            self._effective[key] = other._effective[key]
            other_base = other._base.get(key)
            if other_base is not None:
                self._base[key] = other_base
        self._index.update(other._index)
        self._aliases.update(other._aliases)
        self._seen |= other._seen
        self._busted |= other._busted
        for target, records in other._waiting.items():
            waiting = self._waiting.setdefault(target, [])
            known = {w.key for w in waiting}
            waiting.extend(r for r in records if r.key not in known)
        if self._history is not None:
            for key in sorted(keys):
                for slot in list(self._effective.get(key, ())):
                    self._remember(key, slot)

    def rebuild_all(self) -> None:
        """Recompute every position from its effective fills (a check of the live state)."""
        for key in self._ledgers:
            self._rebuild(key)

    def position(self, account: str, symbol: str, *, include_lots: bool = False) -> Position:
        """Return the position (flat and empty when never traded)."""
        key = (account, symbol)
        ledger = self._ledgers.get(key)
        if ledger is None:
            return Position(account, symbol, 0, ZERO, ZERO, self.cost_method(account), None)
        return ledger.snapshot(key, include_lots)

    def positions(
        self, *, include_flat: bool = False, include_lots: bool = False
    ) -> list[Position]:
        """Every position, sorted by account and symbol."""
        return [
            ledger.snapshot(key, include_lots)
            for key, ledger in sorted(self._ledgers.items())
            if include_flat or ledger.quantity
        ]

    def effective_fills(self, account: str, symbol: str) -> tuple[Fill, ...]:
        """The fills the position is the fold of, in order."""
        return tuple(self._effective.get((account, symbol), {}).values())

    def all_effective_fills(self) -> Iterator[Fill]:
        """Every effective fill, position by position (sorted), each position's in order."""
        for key in sorted(self._effective):
            yield from self._effective[key].values()

    def kept(self) -> int:
        """How many effective fills the book holds in memory (at most ``history``)."""
        return sum(len(fills) for fills in self._effective.values())

    def waiting(self) -> tuple[Fill, ...]:
        """Corrections and busts still waiting for the fill they name."""
        return tuple(record for records in self._waiting.values() for record in records)
