"""Halt and pause reason codes: the Nasdaq/UTP vocabulary, and the CTA encodings mapped onto it.

Every halt the engine handles is named by its UTP code (market rules section 4). A regulatory halt
applies on every venue; an operational halt (O1) applies only to the venue that declared it, so the
router skips that venue and nothing else.

Decision (T3): T3 ("news and resumption times") opens the quotation-only period of a resumption:
quotes resume first, trading later. The code alone cannot say more, so T3 is classed as a
resumption *and* counts as quotation-only: continuous orders still cannot execute; orders may be
entered for the listing exchange's reopening auction.

Decision (R/C codes): R1, R2, R4, R9, C3, C4, C9 and C11 are resumptions whose phase (quotes or
trading) the feed carries separately, so they are not quotation-only by code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.domain.vocabulary import Vocabulary
from gateway.errors import ExecgwError


class HaltClass(Vocabulary):
    NEWS = "NEWS"
    VOLATILITY = "VOLATILITY"
    REGULATORY = "REGULATORY"
    MARKET_WIDE = "MARKET_WIDE"
    IPO = "IPO"
    OPERATIONAL = "OPERATIONAL"
    OTHER = "OTHER"
    DELISTING = "DELISTING"
    RESUMPTION = "RESUMPTION"


class UnknownHaltCode(ExecgwError, ValueError):
    """A halt reason code that is not in the table (UTP) or not mapped (CTA)."""

    reason = "UNKNOWN_HALT_CODE"

    def __init__(self, code: str, *, feed: str = "UTP") -> None:
        super().__init__(f"unknown {feed} halt reason code {code!r}")
        self.code = code
        self.feed = feed


# LULD Plan / Nasdaq 4120(a)(12): single-stock volatility pauses.
_PAUSES = frozenset({"LUDP", "LUDS", "M", "T5"})
# Quotes resume (or stay) while trading does not; see the module docstring for T3.
_QUOTATION_ONLY = frozenset({"T7", "MWCQ", "IPOQ", "T3"})
# Codes that end (or begin to end) a halt although their class says otherwise.
_RESUMING = frozenset({"MWCQ", "IPOQ"})


@dataclass(frozen=True, slots=True)
class HaltCode:
    """One reason code with its meaning and class (market rules section 4)."""

    code: str
    meaning: str
    halt_class: HaltClass

    @property
    def is_resumption(self) -> bool:
        """Whether the code announces that quotes or trading resume (R*, C*, T3, MWCQ, IPOQ)."""
        return self.halt_class is HaltClass.RESUMPTION or self.code in _RESUMING

    @property
    def is_halt(self) -> bool:
        """Whether the code starts or continues a halt or pause (every non-resumption code)."""
        return not self.is_resumption

    @property
    def is_pause(self) -> bool:
        """Whether the code is a LULD or volatility pause (LUDP, LUDS, M, T5)."""
        return self.code in _PAUSES

    @property
    def is_operational(self) -> bool:
        """Whether the halt binds only the declaring venue (O1)."""
        return self.halt_class is HaltClass.OPERATIONAL

    @property
    def applies_to_all_venues(self) -> bool:
        """Whether the code binds every venue: every code except the operational O1."""
        return not self.is_operational

    @property
    def is_market_wide(self) -> bool:
        """Whether the code belongs to the market-wide circuit breaker (MWC1-3, MWC0, MWCQ)."""
        return self.halt_class is HaltClass.MARKET_WIDE

    @property
    def is_quotation_only(self) -> bool:
        """Whether quotes may be shown but trading may not (T7, MWCQ, IPOQ, T3)."""
        return self.code in _QUOTATION_ONLY


def _table(*rows: tuple[str, str, HaltClass]) -> Mapping[str, HaltCode]:
    return MappingProxyType({code: HaltCode(code, meaning, cls) for code, meaning, cls in rows})


_N, _V, _R = HaltClass.NEWS, HaltClass.VOLATILITY, HaltClass.REGULATORY
_MW, _IPO, _RES = HaltClass.MARKET_WIDE, HaltClass.IPO, HaltClass.RESUMPTION

HALT_CODES: Mapping[str, HaltCode] = _table(
    ("T1", "news pending", _N),
    ("T2", "news released", _N),
    ("T3", "news and resumption times (quotes resume first, then trading)", _RES),
    ("T5", "single-stock trading pause", _V),
    ("T6", "extraordinary market activity", _R),
    ("T7", "quotation-only period", _V),
    ("T8", "exchange-traded fund", _R),
    ("T12", "additional information requested", _R),
    ("H4", "non-compliance", _R),
    ("H9", "filings not current", _R),
    ("H10", "SEC trading suspension", _R),
    ("H11", "regulatory concern", _R),
    ("LUDP", "LULD trading pause", _V),
    ("LUDS", "LULD straddle pause", _V),
    ("M", "volatility trading pause", _V),
    ("MWC1", "market-wide circuit breaker level 1", _MW),
    ("MWC2", "market-wide circuit breaker level 2", _MW),
    ("MWC3", "market-wide circuit breaker level 3", _MW),
    ("MWC0", "market-wide circuit breaker level 3 carried over from the previous day", _MW),
    ("MWCQ", "market-wide circuit breaker quotation resumption", _MW),
    ("IPO1", "IPO not yet trading", _IPO),
    ("IPOQ", "IPO released for quotation", _IPO),
    ("IPOE", "IPO positioning window extension", _IPO),
    ("O1", "operations halt (declaring venue only)", HaltClass.OPERATIONAL),
    ("M1", "corporate action", HaltClass.OTHER),
    ("M2", "quotation not available", HaltClass.OTHER),
    ("D", "security deletion", HaltClass.DELISTING),
    ("R1", "new issue available", _RES),
    ("R2", "issue available", _RES),
    ("R4", "qualification issues resolved: quotes or trading resume", _RES),
    ("R9", "filing requirements satisfied: quotes or trading resume", _RES),
    ("C3", "issuer news not forthcoming: quotes or trading resume", _RES),
    ("C4", "qualifications halt ended: quotes or trading resume", _RES),
    ("C9", "qualifications halt concluded: quotes or trading resume", _RES),
    ("C11", "halt concluded by another regulatory authority: quotes or trading resume", _RES),
)


def lookup(code: str) -> HaltCode:
    """Return the UTP halt code, case-insensitive and ignoring surrounding blanks.

    Raises:
        UnknownHaltCode: the code is not in the table (reason ``UNKNOWN_HALT_CODE``).
    """
    found = HALT_CODES.get(code.strip().upper())
    if found is None:
        raise UnknownHaltCode(code)
    return found


# CTA (CTS/CQS Pillar) one-character halt reasons with a UTP equivalent. Source: the CTS Pillar
# participant input specification's Halt Reason field, cross-checked against an exchange feed
# specification that lists the CTA and UTP code for each regulatory halt reason.
# Deliberately unmapped (no UTP equivalent in section 4): I order imbalance, E merger effective,
# O new security offering, V intraday indicative value not available, Y sub-penny trading, and
# blank (not applicable). They raise UnknownHaltCode: the feed adapter must still treat the
# security status as a halt (fail safe), only without a classified reason.
CTA_TO_UTP: Mapping[str, str] = MappingProxyType(
    {
        "P": "T1",  # news pending
        "D": "T2",  # news released (formerly "news dissemination")
        "A": "T12",  # additional information requested
        "C": "H11",  # regulatory concern
        "F": "T8",  # ETF component prices not available
        "M": "LUDP",  # LULD trading pause
        "N": "M1",  # corporate action
        "X": "O1",  # operational (non-regulatory, that venue only)
        "1": "MWC1",
        "2": "MWC2",
        "3": "MWC3",
    }
)


def from_cta(code: str) -> HaltCode:
    """Map a CTA halt reason (CTS/CQS) to its UTP halt code.

    Note that CTA ``M`` (LULD pause) and UTP ``M`` (volatility pause) are different encodings of
    the same kind of event; this function always reads its argument as CTA.

    Raises:
        UnknownHaltCode: the CTA code has no UTP equivalent here (reason ``UNKNOWN_HALT_CODE``).
    """
    utp = CTA_TO_UTP.get(code.strip().upper())
    if utp is None:
        raise UnknownHaltCode(code, feed="CTA")
    return HALT_CODES[utp]
