"""The README documents every setting, and its test command is the one CI runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TEST_COMMAND = '.venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest'


def test_readme_lists_every_setting_with_its_three_spellings() -> None:
    for field in dataclasses.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        row = f"| `{field.name}` | `EXECGW_{field.name.upper()}` | `{flag}` |"
        assert row in README, f"README misses setting {field.name}"


def test_ci_runs_the_readme_test_command() -> None:
    assert TEST_COMMAND in README
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text()
