"""The clients let into the gateway: who they are, their roles, their accounts, their token hashes.

The clients file is TOML, one ``[[clients]]`` table per client::

    [[clients]]
    name = "oms-east"            # also matched against a client certificate's CN or SANs
    roles = ["oms"]              # oms, feed, operator, reader
    accounts = ["ACCT-1"]        # accounts it may read and write; ["*"]: every account
    token_sha256 = ["9f86...", ] # SHA-256 (hex) of each bearer token it may use

Only hashes of tokens are stored. A token is 256 random bits, so a plain SHA-256 cannot be
reversed or guessed: no salt or slow hash is needed (those protect low-entropy passwords).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import ConfigurationError

TOKEN_PREFIX = "execgw_"
ALL_ACCOUNTS = "*"
# A bearer value longer than this is not one of ours: refused before hashing it.
MAX_TOKEN_LENGTH = 256
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[!-~]{1,128}")
_KEYS = frozenset({"name", "roles", "accounts", "token_sha256"})


class Role(enum.Enum):
    """What a client is for; the RPCs each role reaches are in ``gateway.api.access``."""

    OMS = "oms"
    FEED = "feed"
    OPERATOR = "operator"
    READER = "reader"


@dataclass(frozen=True, slots=True)
class Client:
    """One client of the gateway and what it is entitled to."""

    name: str
    roles: frozenset[Role]
    # None: every account.
    accounts: frozenset[str] | None

    def may_use(self, account: str) -> bool:
        return self.accounts is None or account in self.accounts


@dataclass(frozen=True, slots=True)
class ClientRegistry:
    """The clients of one version of the clients file."""

    clients: Mapping[str, Client]
    # SHA-256 digest of a token -> the digest as stored and the client it names.
    _tokens: Mapping[bytes, tuple[bytes, Client]]

    @classmethod
    def of(cls, clients: Iterable[tuple[Client, Iterable[bytes]]]) -> ClientRegistry:
        by_name: dict[str, Client] = {}
        tokens: dict[bytes, tuple[bytes, Client]] = {}
        for client, digests in clients:
            by_name[client.name] = client
            tokens.update((digest, (digest, client)) for digest in digests)
        return cls(by_name, tokens)

    def by_token(self, token: str) -> Client | None:
        """The client a bearer token belongs to, or None.

        The token is hashed before any lookup, so the lookup's timing can only tell about the
        SHA-256 of what the caller sent, never about a stored token; the final comparison is
        constant-time all the same. One lookup whatever the number of clients.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = self._tokens.get(digest)
        if found is None or not hmac.compare_digest(found[0], digest):
            return None
        return found[1]

    def by_certificate(self, names: Iterable[str]) -> Client | None:
        """The client named by a certificate's CN or one of its SANs (in that order)."""
        for name in names:
            client = self.clients.get(name)
            if client is not None:
                return client
        return None


def token_hash(token: str) -> str:
    """The hex SHA-256 of a token: what the clients file stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh bearer token: 256 random bits, URL-safe, recognisable by its prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def client_entry(name: str, roles: Iterable[Role], accounts: Iterable[str], digest: str) -> str:
    """The ``[[clients]]`` table of a client, as written to the clients file."""

    def strings(values: Iterable[str]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    return (
        "[[clients]]\n"
        f'name = "{name}"\n'
        f"roles = {strings(r.value for r in roles)}\n"
        f"accounts = {strings(accounts)}\n"
        f"token_sha256 = {strings([digest])}\n"
    )


def _strings(entry: Mapping[str, Any], key: str, where: str, problems: list[str]) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: {key} must be a list of strings")
        return []
    return value


def _client(entry: Any, where: str, problems: list[str]) -> tuple[Client, list[bytes]] | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a table")
        return None
    count = len(problems)
    problems.extend(f"{where}: unknown key {key!r}" for key in entry.keys() - _KEYS)
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"{where}: name must be 1-128 printable characters without spaces")
    roles = set()
    for role in _strings(entry, "roles", where, problems):
        try:
            roles.add(Role(role))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            problems.append(f"{where}: role {role!r} is not one of {known}")
    accounts = _strings(entry, "accounts", where, problems)
    digests = []
    for digest in _strings(entry, "token_sha256", where, problems):
        if _HEX_DIGEST.fullmatch(digest):
            digests.append(bytes.fromhex(digest))
        else:
            problems.append(f"{where}: token_sha256 {digest[:8]}...: not a hex SHA-256")
    if len(problems) > count:
        return None
    assert isinstance(name, str)
    scope = None if ALL_ACCOUNTS in accounts else frozenset(accounts)
    return Client(name, frozenset(roles), scope), digests


def parse_clients(text: str, source: str) -> ClientRegistry:
    """Parse a clients file's content, or raise ConfigurationError listing every problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError([f"{source}: not valid TOML: {exc}"]) from None
    problems = [f"{source}: unknown key {key!r}" for key in document.keys() - {"clients"}]
    entries = document.get("clients", [])
    if not isinstance(entries, list):
        problems.append(f"{source}: clients must be an array of tables ([[clients]])")
        entries = []
    parsed: list[tuple[Client, list[bytes]]] = []
    names: set[str] = set()
    owners: dict[bytes, str] = {}
    for i, entry in enumerate(entries):
        result = _client(entry, f"{source}: clients[{i}]", problems)
        if result is None:
            continue
        client, digests = result
        if client.name in names:
            problems.append(f"{source}: client {client.name!r} is listed twice")
        names.add(client.name)
        for digest in digests:
            if owners.setdefault(digest, client.name) != client.name:
                problems.append(
                    f"{source}: a token hash of {client.name!r} is also {owners[digest]!r}'s"
                )
        parsed.append(result)
    if problems:
        raise ConfigurationError(problems)
    return ClientRegistry.of(parsed)


def load_clients(path: Path) -> ClientRegistry:
    """Read the clients file, or raise ConfigurationError listing every problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError([f"clients_file={path}: cannot read: {exc.strerror}"]) from None
    return parse_clients(text, f"clients_file {path}")
