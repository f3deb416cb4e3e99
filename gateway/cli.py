"""The ``execgw`` command: serve, migrate."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from gateway import __version__, logs
from gateway import settings as settings_module
from gateway.errors import ExecgwError
from gateway.settings import Settings

log = logging.getLogger("execgw")


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="TOML settings file (default: $EXECGW_CONFIG)", default=None
    )
    for field in dataclasses.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        if str(field.type) == "bool":
            parser.add_argument(
                flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=field.metadata.get("help"),
            )
        else:
            parser.add_argument(
                flag,
                dest=field.name,
                default=None,
                metavar=field.name.upper(),
                help=field.metadata.get("help"),
            )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Settings)
        if getattr(args, f.name, None) is not None
    }
    return settings_module.load(config_file=args.config, overrides=overrides)


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # not on every platform; asyncio's loop works, only slower
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _serve(settings: Settings) -> None:
    from gateway.server import serve

    await serve(settings)


async def _migrate(settings: Settings) -> None:
    from gateway.server import database_config
    from storage.database import connect, resolve_url
    from storage.migrations import apply_migrations

    config = database_config(settings)
    url, embedded = await resolve_url(config)
    try:
        connection = await connect(url, config.connect_timeout)
        try:
            applied = await apply_migrations(connection, lock_timeout=config.migration_lock_timeout)
        finally:
            await connection.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
    names = [f"{m.version:04d}_{m.name}" for m in applied]
    print(f"applied {len(names)} migration(s)" + (": " + ", ".join(names) if names else ""))


async def _health(settings: Settings) -> None:
    """Exit 0 when the gateway's gRPC health service reports SERVING (container HEALTHCHECK)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    host = "127.0.0.1" if settings.grpc_host in ("0.0.0.0", "::", "") else settings.grpc_host
    target = f"{host}:{settings.grpc_port}"
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
        except grpc.aio.AioRpcError as exc:
            raise _Unhealthy(f"{target}: {exc.code().name}: {exc.details()}") from exc
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"{target}: {status}")
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        raise _Unhealthy(f"{target}: {status}")


class _Unhealthy(ExecgwError):
    reason = "NOT_SERVING"


COMMANDS: dict[str, tuple[str, Callable[[Settings], Coroutine[Any, Any, None]]]] = {
    "serve": ("run the gateway until SIGTERM or SIGINT", _serve),
    "migrate": ("apply pending database migrations and exit", _migrate),
    "health": ("exit 0 if the gateway at grpc_host:grpc_port reports SERVING", _health),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="execgw",
        description="Halt-safe execution gateway for US equities.",
    )
    parser.add_argument("--version", action="version", version=f"execgw {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, _) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        _add_setting_flags(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ExecgwError as exc:
        print(f"execgw: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    if settings.database_url is None and args.command != "health":
        print(f"execgw: embedded PostgreSQL data in {settings.data_dir}", file=sys.stderr)
    try:
        _run(COMMANDS[args.command][1](settings))
    except ExecgwError as exc:
        log.error("%s", exc.message, extra={"reason": exc.reason})
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
