from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.domain.fills import (
    Fill,
    FillKind,
    differing_fields,
    require_valid_fill,
    same_content,
    validate_fill,
)
from gateway.errors import InvalidArgument
from tests.domain.journal.trades import T0, fill


def _fields(problems: tuple[object, ...]) -> set[str]:
    return {p.field for p in problems}  # type: ignore[attr-defined]  # FieldViolation


def test_validate_fill_when_well_formed_then_no_problems() -> None:
    assert validate_fill(fill("B", 100, "10.00", at=T0), now=T0) == ()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "fill.quantity"),
        ({"quantity": -5}, "fill.quantity"),
        ({"price": Decimal("NaN")}, "fill.price"),
        ({"price": Decimal("Infinity")}, "fill.price"),
        ({"price": Decimal("0")}, "fill.price"),
        ({"price": Decimal("-1.5")}, "fill.price"),
        ({"exec_id": ""}, "fill.exec_id"),
        ({"venue": " "}, "fill.venue"),
        ({"account": ""}, "fill.account"),
        ({"symbol": ""}, "fill.symbol"),
        ({"exec_id": "E\x1f1"}, "fill.exec_id"),
        ({"side": "BUY"}, "fill.side"),
        ({"transaction_time": T0 + timedelta(minutes=5)}, "fill.transaction_time"),
        ({"transaction_time": datetime(2026, 6, 1, 10, 0)}, "fill.transaction_time"),
        ({"kind": FillKind.BUST}, "fill.corrects_exec_id"),
        ({"kind": FillKind.CORRECTION}, "fill.corrects_exec_id"),
        ({"corrects_exec_id": "E0"}, "fill.corrects_exec_id"),
    ],
)
def test_validate_fill_when_field_bad_then_field_named(
    change: dict[str, object], field: str
) -> None:
    bad = dataclasses.replace(fill("B", 100, "10.00", at=T0), **change)  # type: ignore[arg-type]
    assert field in _fields(validate_fill(bad, now=T0))


def test_validate_fill_when_several_fields_bad_then_every_problem_listed() -> None:
    bad = dataclasses.replace(fill("B", 100, "10.00", at=T0), quantity=0, exec_id="")
    bad = dataclasses.replace(bad, price=Decimal("NaN"))
    assert _fields(validate_fill(bad, now=T0)) == {"fill.quantity", "fill.exec_id", "fill.price"}


def test_validate_fill_when_slightly_ahead_within_skew_then_accepted() -> None:
    ahead = fill("B", 1, "10", at=T0 + timedelta(seconds=30))
    assert validate_fill(ahead, now=T0) == ()
    assert validate_fill(ahead, now=T0, max_future_skew=timedelta(seconds=10)) != ()


def test_require_valid_fill_when_bad_then_invalid_argument_with_reason() -> None:
    with pytest.raises(InvalidArgument) as raised:
        require_valid_fill(dataclasses.replace(fill("B", 1, "10", at=T0), quantity=0), now=T0)
    assert raised.value.reason == "INVALID_FILL"
    assert raised.value.violations[0].field == "fill.quantity"


def test_same_content_when_price_scale_and_timezone_differ_then_same() -> None:
    a = fill("B", 100, "10.5", exec_id="X1", at=T0)
    b = dataclasses.replace(
        a, price=Decimal("10.50"), transaction_time=T0.astimezone(datetime.now(UTC).tzinfo)
    )
    assert same_content(a, b)


def test_same_content_when_quantity_differs_then_conflict_names_field() -> None:
    a = fill("B", 100, "10.5", exec_id="X1", at=T0)
    b = dataclasses.replace(a, quantity=200)
    assert not same_content(a, b)
    assert differing_fields(a, b) == ("quantity",)


def test_trade_date_when_evening_utc_then_new_york_date() -> None:
    late = fill("B", 1, "1", at=datetime(2026, 6, 2, 1, 0, tzinfo=UTC))  # 21:00 EDT on June 1
    assert late.trade_date == date(2026, 6, 1)
    assert isinstance(late, Fill)
