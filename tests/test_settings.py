"""Settings: every source, precedence, and every problem listed at once."""

from __future__ import annotations

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
