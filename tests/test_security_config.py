"""Transport and access configuration: the listen rule, the clients file, rate buckets, tokens."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from gateway import cli
from gateway.clients import Role, load_clients, parse_clients, token_hash
from gateway.errors import ConfigurationError
from gateway.rate_limits import RateLimiter
from gateway.server import Gateway
from gateway.settings import Settings, is_loopback, load
from gateway.transport import server_credentials
from tests.certificates import CertificateAuthority

UNREACHABLE_DB = "postgresql://127.0.0.1:1/none"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("[::]", False),
        ("10.1.2.3", False),
        ("gateway.internal", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_non_loopback_without_tls_then_serving_refused() -> None:
    settings = load(environ={}, overrides={"grpc_host": "0.0.0.0"})
    with pytest.raises(ConfigurationError) as refused:
        server_credentials(settings)
    assert any("needs TLS" in p for p in refused.value.problems)


def test_non_loopback_with_allow_insecure_then_accepted_and_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load(environ={}, overrides={"grpc_host": "0.0.0.0", "allow_insecure": "true"})
    with caplog.at_level(logging.WARNING, logger="gateway.transport"):
        assert server_credentials(settings) is None
    assert "WITHOUT TLS" in caplog.text


def test_non_loopback_with_tls_then_accepted(tmp_path: Path) -> None:
    server = CertificateAuthority(tmp_path).issue_server()
    settings = load(
        environ={},
        overrides={
            "grpc_host": "0.0.0.0",
            "tls_cert_file": str(server.cert_file),
            "tls_key_file": str(server.key_file),
        },
    )
    assert server_credentials(settings) is not None


async def test_gateway_start_on_non_loopback_without_tls_then_refused_before_anything_opens() -> (
    None
):
    # Not validated settings: the gateway checks again, before the database (unreachable here).
    gateway = Gateway(Settings(grpc_host="0.0.0.0", database_url=UNREACHABLE_DB))
    with pytest.raises(ConfigurationError) as refused:
        await gateway.start()
    assert "needs TLS" in refused.value.message


def test_tls_settings_that_do_not_fit_then_every_problem_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load(
            environ={},
            overrides={
                "tls_cert_file": str(tmp_path / "missing.pem"),
                "tls_client_ca_file": str(tmp_path / "ca.pem"),
                "rate_limit_burst": "0",
            },
        )
    problems = "\n".join(refused.value.problems)
    assert "set both or neither" in problems
    assert "needs clients_file" in problems
    assert "tls_cert_file=" in problems and "no such file" in problems
    assert "rate_limit_burst=0" in problems


def test_clients_file_then_roles_accounts_and_tokens() -> None:
    digest = token_hash("execgw_secret")
    registry = parse_clients(
        f"""
[[clients]]
name = "oms-1"
roles = ["oms", "reader"]
accounts = ["A", "B"]
token_sha256 = ["{digest}"]

[[clients]]
name = "ops"
roles = ["operator"]
accounts = ["*"]
""",
        "test",
    )
    oms = registry.by_token("execgw_secret")
    assert oms is not None and oms.name == "oms-1"
    assert oms.roles == {Role.OMS, Role.READER}
    assert oms.may_use("A") and not oms.may_use("C")
    assert registry.by_token("execgw_other") is None
    assert registry.by_token("x" * 10_000) is None
    ops = registry.by_certificate(["ops.example", "ops"])
    assert ops is not None and ops.accounts is None and ops.may_use("anything")


def test_clients_file_with_mistakes_then_every_problem_listed() -> None:
    digest = token_hash("t")
    with pytest.raises(ConfigurationError) as refused:
        parse_clients(
            f"""
[[clients]]
name = "a"
roles = ["admin"]
token_sha256 = ["{digest}", "not-hex"]
colour = "red"

[[clients]]
name = "b"
roles = ["oms"]
token_sha256 = ["{digest}"]

[[clients]]
name = "b"
roles = ["oms"]
""",
            "test",
        )
    problems = "\n".join(refused.value.problems)
    assert "'admin' is not one of" in problems
    assert "not a hex SHA-256" in problems
    assert "unknown key 'colour'" in problems
    assert "'b' is listed twice" in problems
    assert "also 'a'" not in problems  # a's entry was refused, so its hash names nobody yet


def test_rate_limiter_burst_then_refill_then_retry_time() -> None:
    limiter = RateLimiter(rate=10.0, burst=2)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) == pytest.approx(0.1)
    assert limiter.take("b", 0.0) == 0.0  # one bucket per client
    assert limiter.take("a", 0.05) == pytest.approx(0.05)
    assert limiter.take("a", 0.1) == 0.0
    assert limiter.forget_full(0.15) == 1  # b refilled; a has not
    assert limiter.forget_full(10.0) == 1 and len(limiter) == 0


def test_issue_token_then_token_printed_once_and_only_its_hash_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("EXECGW_")]:
        monkeypatch.delenv(name)
    clients_file = tmp_path / "clients.toml"
    argv = ["issue-token", "oms-1", "--role", "oms", "--account", "A", "--append"]
    assert cli.main([*argv, str(clients_file)]) == 0
    token = capsys.readouterr().out.strip()
    assert cli.main(["issue-token", "feed-1", "--role", "feed", "--append", str(clients_file)]) == 0
    capsys.readouterr()
    text = clients_file.read_text()
    assert token not in text
    assert tomllib.loads(text)["clients"][0]["token_sha256"] == [token_hash(token)]
    registry = load_clients(clients_file)
    issued = registry.by_token(token)
    assert issued is not None and issued.name == "oms-1" and issued.accounts == frozenset({"A"})
    # A client already in the file gets no second entry (and no token).
    assert cli.main([*argv, str(clients_file)]) == 1
    assert capsys.readouterr().out == ""
