"""The domain stays pure: no protobuf, gRPC, asyncio, database driver or wall clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parent.parent / "gateway" / "domain"
FORBIDDEN_MODULES = (
    "grpc",
    "google.protobuf",
    "gateway._pb",
    "gateway.api",
    "asyncio",
    "asyncpg",
    "storage",
    "gateway.server",
    "prometheus_client",
    "opentelemetry",
)
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
CLOCK_MODULES = {"time", "datetime", "date"}


def _domain_files() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


@pytest.mark.parametrize("path", _domain_files(), ids=lambda p: p.name)
def test_domain_module_imports_nothing_impure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not name.startswith(FORBIDDEN_MODULES), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _domain_files(), ids=lambda p: p.name)
def test_domain_module_never_reads_the_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FORBIDDEN_CALLS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in CLOCK_MODULES
        ):
            raise AssertionError(f"{path.name}:{node.lineno} reads the clock")
