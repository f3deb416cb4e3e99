"""Halt reason codes: the section 4 table, their classes and properties, and the CTA mapping."""

from __future__ import annotations

import pytest

from gateway.domain.halt_codes import (
    CTA_TO_UTP,
    HALT_CODES,
    HaltClass,
    UnknownHaltCode,
    from_cta,
    lookup,
)
from gateway.errors import ExecgwError

N, V, R = HaltClass.NEWS, HaltClass.VOLATILITY, HaltClass.REGULATORY
MW, IPO, RES = HaltClass.MARKET_WIDE, HaltClass.IPO, HaltClass.RESUMPTION

# Market rules section 4, row by row.
SECTION_4 = {
    "T1": N,
    "T2": N,
    "T3": RES,
    "T5": V,
    "T7": V,
    "T6": R,
    "T8": R,
    "T12": R,
    "H4": R,
    "H9": R,
    "H10": R,
    "H11": R,
    "LUDP": V,
    "LUDS": V,
    "M": V,
    "MWC1": MW,
    "MWC2": MW,
    "MWC3": MW,
    "MWC0": MW,
    "MWCQ": MW,
    "IPO1": IPO,
    "IPOQ": IPO,
    "IPOE": IPO,
    "O1": HaltClass.OPERATIONAL,
    "M1": HaltClass.OTHER,
    "M2": HaltClass.OTHER,
    "D": HaltClass.DELISTING,
    "R1": RES,
    "R2": RES,
    "R4": RES,
    "R9": RES,
    "C3": RES,
    "C4": RES,
    "C9": RES,
    "C11": RES,
}


def test_table_when_compared_with_section_4_then_holds_exactly_its_codes() -> None:
    assert set(HALT_CODES) == set(SECTION_4)


@pytest.mark.parametrize(("code", "halt_class"), SECTION_4.items())
def test_lookup_when_code_of_section_4_then_has_its_class(code: str, halt_class: HaltClass) -> None:
    found = lookup(code)
    assert found.code == code
    assert found.halt_class is halt_class
    assert found.meaning


@pytest.mark.parametrize("raw", ["ludp", " LUDP ", "Ludp\n", "\tludp"])
def test_lookup_when_lower_case_or_padded_then_found(raw: str) -> None:
    assert lookup(raw).code == "LUDP"


@pytest.mark.parametrize("raw", ["", "   ", "T4", "MWC4", "LUD", "XYZ"])
def test_lookup_when_code_unknown_then_unknown_halt_code(raw: str) -> None:
    with pytest.raises(UnknownHaltCode) as caught:
        lookup(raw)
    assert caught.value.reason == "UNKNOWN_HALT_CODE"
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ExecgwError)


@pytest.mark.parametrize("code", SECTION_4)
def test_is_pause_when_code_then_only_luld_and_volatility_pauses(code: str) -> None:
    assert lookup(code).is_pause is (code in {"LUDP", "LUDS", "M", "T5"})


@pytest.mark.parametrize("code", SECTION_4)
def test_venue_scope_when_code_then_only_o1_is_limited_to_its_venue(code: str) -> None:
    halt = lookup(code)
    assert halt.is_operational is (code == "O1")
    assert halt.applies_to_all_venues is (code != "O1")


@pytest.mark.parametrize("code", SECTION_4)
def test_is_market_wide_when_code_then_only_mwc_codes(code: str) -> None:
    assert lookup(code).is_market_wide is code.startswith("MWC")


@pytest.mark.parametrize("code", SECTION_4)
def test_is_quotation_only_when_code_then_t7_mwcq_ipoq_and_t3(code: str) -> None:
    assert lookup(code).is_quotation_only is (code in {"T7", "MWCQ", "IPOQ", "T3"})


@pytest.mark.parametrize("code", SECTION_4)
def test_is_resumption_when_code_then_resumption_class_mwcq_and_ipoq(code: str) -> None:
    halt = lookup(code)
    expected = SECTION_4[code] is RES or code in {"MWCQ", "IPOQ"}
    assert halt.is_resumption is expected
    assert halt.is_halt is not expected


@pytest.mark.parametrize(
    ("cta", "utp"),
    [
        ("P", "T1"),
        ("D", "T2"),
        ("A", "T12"),
        ("C", "H11"),
        ("F", "T8"),
        ("M", "LUDP"),
        ("N", "M1"),
        ("X", "O1"),
        ("1", "MWC1"),
        ("2", "MWC2"),
        ("3", "MWC3"),
    ],
)
def test_from_cta_when_mapped_reason_then_utp_code(cta: str, utp: str) -> None:
    assert from_cta(cta).code == utp


def test_from_cta_when_m_then_luld_pause_not_the_utp_volatility_code() -> None:
    assert from_cta("M") == lookup("LUDP")
    assert from_cta("M") != lookup("M")


def test_from_cta_when_operational_then_only_that_venue() -> None:
    assert from_cta("x").is_operational


@pytest.mark.parametrize("cta", ["I", "E", "O", "V", "Y", " ", "", "Z", "T1"])
def test_from_cta_when_reason_without_utp_equivalent_then_unknown_halt_code(cta: str) -> None:
    with pytest.raises(UnknownHaltCode) as caught:
        from_cta(cta)
    assert caught.value.reason == "UNKNOWN_HALT_CODE"
    assert caught.value.feed == "CTA"


def test_cta_table_when_read_then_every_target_is_a_known_utp_code() -> None:
    assert set(CTA_TO_UTP.values()) <= set(HALT_CODES)
