"""Settings: every source, precedence, and every problem listed at once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway import settings
from gateway.cli import _settings, build_parser
from gateway.errors import ConfigurationError


def test_no_sources_then_documented_defaults() -> None:
    loaded = settings.load(environ={})
    assert (loaded.grpc_port, loaded.metrics_port, loaded.database_url) == (50051, 9108, None)


def test_file_then_env_then_flags_each_override_the_previous(tmp_path: Path) -> None:
    config = tmp_path / "execgw.toml"
    config.write_text('grpc_port = 6000\nmetrics_port = 6001\nlog_level = "DEBUG"\n')
    loaded = settings.load(
        config_file=config,
        environ={"EXECGW_METRICS_PORT": "7001", "EXECGW_LOG_LEVEL": "WARNING"},
        overrides={"log_level": "ERROR"},
    )
    assert (loaded.grpc_port, loaded.metrics_port, loaded.log_level) == (6000, 7001, "ERROR")


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    config = tmp_path / "execgw.toml"
    config.write_text("reflection = false\n")
    assert settings.load(environ={"EXECGW_CONFIG": str(config)}).reflection is False


def test_several_bad_values_then_one_error_lists_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "execgw.toml"
    config.write_text('grpc_prot = 1\nshutdown_grace_seconds = "soon"\n')
    with pytest.raises(ConfigurationError) as raised:
        settings.load(
            config_file=config,
            environ={"EXECGW_METRICS_PORT": "70000", "EXECGW_COLOUR": "blue"},
            overrides={"log_level": "LOUD", "database_url": "mysql://x"},
        )
    problems = "\n".join(raised.value.problems)
    for fragment in (
        "unknown setting 'grpc_prot'",
        "shutdown_grace_seconds='soon'",
        "unknown variable EXECGW_COLOUR",
        "metrics_port=70000",
        "log_level='LOUD'",
        "database_url",
    ):
        assert fragment in problems
    assert len(raised.value.problems) == 6


def test_unreadable_or_broken_config_file_then_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("grpc_port = [")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        settings.load(config_file=broken, environ={})
    with pytest.raises(ConfigurationError, match="cannot read"):
        settings.load(config_file=tmp_path / "missing.toml", environ={})


def test_command_line_flags_then_settings() -> None:
    args = build_parser().parse_args(
        ["serve", "--grpc-port", "7777", "--no-reflection", "--data-dir", "/tmp/x"]
    )
    loaded = _settings(args)
    assert (loaded.grpc_port, loaded.reflection, str(loaded.data_dir)) == (7777, False, "/tmp/x")


def test_routing_defaults_then_issue_weights_and_the_shipped_venue_file() -> None:
    loaded = settings.load(environ={})
    weights = (
        loaded.routing_weight_spread,
        loaded.routing_weight_latency,
        loaded.routing_weight_fees,
        loaded.routing_weight_fill_probability,
    )
    assert weights == (0.40, 0.30, 0.20, 0.10)
    assert loaded.venue_profiles_file == settings.shipped_venue_profiles()
    assert loaded.venue_profiles_file.is_file()
    assert loaded.venue_reload_poll_seconds == 0


def test_routing_weights_negative_or_not_summing_to_one_then_start_refused() -> None:
    with pytest.raises(ConfigurationError) as raised:
        settings.load(
            environ={"EXECGW_ROUTING_WEIGHT_FEES": "-0.2", "EXECGW_ROUTING_WEIGHT_SPREAD": "0.9"}
        )
    problems = "\n".join(raised.value.problems)
    assert "routing_weight_fees=-0.2: must be >= 0" in problems
    assert "must sum to 1, not 1.1" in problems
    with pytest.raises(ConfigurationError, match=r"must sum to 1, not 0\.99"):
        settings.load(environ={}, overrides={"routing_weight_fill_probability": "0.09"})


def test_routing_weights_summing_to_one_in_another_split_then_accepted(tmp_path: Path) -> None:
    config = tmp_path / "execgw.toml"
    config.write_text(
        "routing_weight_spread = 0.5\nrouting_weight_latency = 0.1\n"
        "routing_weight_fees = 0.3\nrouting_weight_fill_probability = 0.1\n"
        'routing_accuracy_tolerance = 0.0005\nrouting_rest_remainder = "limit"\n'
    )
    loaded = settings.load(config_file=config, environ={})
    assert (loaded.routing_weight_spread, loaded.routing_weight_fees) == (0.5, 0.3)
    assert loaded.routing_accuracy_tolerance == Decimal("0.0005")
    assert loaded.routing_rest_remainder == "limit"


def test_bad_router_knobs_then_each_named() -> None:
    with pytest.raises(ConfigurationError) as raised:
        settings.load(
            environ={
                "EXECGW_ROUTING_MAX_QUOTE_AGE_SECONDS": "0",
                "EXECGW_ROUTING_ACCURACY_TOLERANCE": "a tenth",
                "EXECGW_ROUTING_REST_REMAINDER": "midpoint",
                "EXECGW_ROUTING_LARGE_SHARES": "100",
                "EXECGW_VENUE_RELOAD_POLL_SECONDS": "-1",
                "EXECGW_ROUTING_LATENCY_SCALE_US": "-5",
            }
        )
    problems = "\n".join(raised.value.problems)
    for fragment in (
        "routing_max_quote_age_seconds=0.0: must be > 0",
        "routing_accuracy_tolerance='a tenth'",
        "routing_rest_remainder='midpoint'",
        "routing_medium_shares <= routing_large_shares",
        "venue_reload_poll_seconds=-1.0: must be >= 0",
        "routing_latency_scale_us=-5.0: must be finite and >= 0",
    ):
        assert fragment in problems
