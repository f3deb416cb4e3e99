"""Generate the Python code and typed stubs for proto/execgw/v1 into gateway/_pb.

Usage: python scripts/generate_protos.py [--out DIR]

The generated modules import each other as ``gateway._pb.execgw.v1.*``. protoc writes them as
``execgw.v1.*``; the imports are rewritten so the package needs no sys.path changes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
DEFAULT_OUT = ROOT / "gateway" / "_pb"
PACKAGE_PREFIX = "gateway._pb"

_IMPORT = re.compile(r"^(from|import) execgw\.v1", re.MULTILINE)


def generate(out: Path) -> list[Path]:
    """Generate into ``out`` (replacing it) and return the files written."""
    protos = sorted(PROTO_ROOT.glob("execgw/**/*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT}")
    well_known = str(resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory() as scratch:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={scratch}",
            f"--grpc_python_out={scratch}",
            f"--mypy_out={scratch}",
            f"--mypy_grpc_out={scratch}",
            *(str(p.relative_to(PROTO_ROOT)) for p in protos),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        (out / "__init__.py").write_text('"""Generated protobuf and gRPC code. Do not edit."""\n')
        written = []
        for source in sorted(Path(scratch).rglob("*")):
            if not source.is_file():
                continue
            target = out / source.relative_to(scratch)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = _IMPORT.sub(
                lambda m: f"{m.group(1)} {PACKAGE_PREFIX}.execgw.v1", source.read_text()
            )
            target.write_text(text)
            written.append(target)
        for parent in {p.parent for p in written}:
            folder = parent
            while folder != out:
                init = folder / "__init__.py"
                if not init.exists():
                    init.write_text("")
                folder = folder.parent
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    files = generate(args.out)
    print(f"generated {len(files)} files into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
