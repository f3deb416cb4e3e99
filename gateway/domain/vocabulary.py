"""The base of the domain's closed sets (sides, order types, phases, restrictions, ...)."""

from __future__ import annotations

import enum


class Vocabulary(enum.Enum):
    """An enum whose members hash by identity.

    Members are singletons compared by identity, so identity hashing is exact; ``enum.Enum``
    hashes the member's name in Python code instead, which the pre-trade check and the router pay
    several times per order (members as dict keys and in frozensets).
    """

    __hash__ = object.__hash__
