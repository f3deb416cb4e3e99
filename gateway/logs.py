"""Structured logging: one JSON object a line on stderr (or plain text for people)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = {
            k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        }
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


# grpc's server logs this at ERROR, with a traceback, when sending on a call fails because the
# call already ended at the transport (the peer cancelled, its deadline passed, its connection
# dropped) before grpc marked it closed: a subscriber gone between two updates.
_PEER_GONE = "ExecuteBatchError raised in core by servicer method"
GRPC_LOGGER = "grpc._cython.cygrpc"


class PeerGoneDuringWrite(logging.Filter):
    """Turns grpc's ERROR for a write to a call that already ended into one INFO line: nothing
    is wrong with the gateway, and an operator alerting on ERROR lines must not be woken by a
    client going away. Other grpc records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(_PEER_GONE)):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.INFO):
            return False
        method = record.getMessage()[len(_PEER_GONE) :].strip(" []") or "?"
        record.msg = "a call ended at the peer while the server wrote to it: %s"
        record.args = (method,)
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        return True


def configure(level: str, fmt: str) -> None:
    """Send every log record to stderr in the chosen format; call once at start."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pgserver logs every shell command it runs at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    grpc_logger = logging.getLogger(GRPC_LOGGER)
    if not any(isinstance(f, PeerGoneDuringWrite) for f in grpc_logger.filters):
        grpc_logger.addFilter(PeerGoneDuringWrite())
