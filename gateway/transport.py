"""Transport security of the gRPC port: TLS from certificate files, mutual TLS as a setting.

Plaintext is only for loopback: the gateway refuses to listen on another address without TLS
unless ``allow_insecure`` is set, and then says so in the log at every start.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from gateway.errors import ConfigurationError
from gateway.settings import Settings, is_loopback, listen_problems

log = logging.getLogger(__name__)


def _read(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError([f"{name}={path}: cannot read: {exc.strerror}"]) from None


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The credentials of the gRPC port (None: plaintext), or ConfigurationError."""
    problems = listen_problems(settings)
    if problems:
        raise ConfigurationError(problems)
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        if not is_loopback(settings.grpc_host):
            log.warning(
                "gRPC port listening WITHOUT TLS beyond loopback (allow_insecure): tokens, orders "
                "and fills cross the network in clear text",
                extra={"grpc_host": settings.grpc_host},
            )
        return None
    chain = _read(settings.tls_cert_file, "tls_cert_file")
    key = _read(settings.tls_key_file, "tls_key_file")
    client_ca = (
        _read(settings.tls_client_ca_file, "tls_client_ca_file")
        if settings.tls_client_ca_file is not None
        else None
    )
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def client_channel(settings: Settings, target: str) -> grpc.aio.Channel:
    """A channel of the client commands to the gateway at ``target``: TLS when
    ``client_ca_file`` is set (with ``client_cert_file`` for mutual TLS), and the bearer token of
    ``client_token_file`` on every call."""
    token = (
        _read(settings.client_token_file, "client_token_file").decode().strip()
        if settings.client_token_file is not None
        else None
    )
    if settings.client_ca_file is None:
        if token is None:
            return grpc.aio.insecure_channel(target)
        # A token over plaintext: only what the server accepts on loopback or allow_insecure.
        return grpc.aio.secure_channel(
            target,
            grpc.composite_channel_credentials(
                grpc.local_channel_credentials(), grpc.access_token_call_credentials(token)
            ),
        )
    credentials = grpc.ssl_channel_credentials(
        _read(settings.client_ca_file, "client_ca_file"),
        _read(settings.client_key_file, "client_key_file") if settings.client_key_file else None,
        _read(settings.client_cert_file, "client_cert_file") if settings.client_cert_file else None,
    )
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return grpc.aio.secure_channel(target, credentials)
