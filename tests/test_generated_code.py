"""The committed generated code matches what the protos generate now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "gateway" / "_pb"


def _load_generator() -> object:
    spec = importlib.util.spec_from_file_location(
        "generate_protos", ROOT / "scripts" / "generate_protos.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_generated_code_is_not_stale(tmp_path: Path) -> None:
    generator = _load_generator()
    fresh = tmp_path / "_pb"
    generator.generate(fresh)  # type: ignore[attr-defined]
    fresh_files = {p.relative_to(fresh): p.read_bytes() for p in fresh.rglob("*") if p.is_file()}
    committed_files = {
        p.relative_to(COMMITTED): p.read_bytes()
        for p in COMMITTED.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert set(fresh_files) == set(committed_files), (
        "files added or removed: run scripts/generate_protos.py"
    )
    stale = sorted(str(name) for name in fresh_files if fresh_files[name] != committed_files[name])
    assert not stale, f"stale generated code {stale}: run scripts/generate_protos.py"
