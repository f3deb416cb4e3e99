"""Log lines as an operator reads them: grpc's ERROR for a client gone mid-write is an INFO line."""

from __future__ import annotations

import json
import logging

import pytest

from gateway import logs

SUBSCRIBE = "/execgw.v1.MarketStateService/SubscribeMarketState"


def _grpc_logs_a_failed_write() -> None:
    """What grpc's server logs when sending on a call that already ended at the transport."""
    grpc_logger = logging.getLogger(logs.GRPC_LOGGER)
    try:
        raise RuntimeError('Failed "execute_batch"')
    except RuntimeError:
        grpc_logger.exception("ExecuteBatchError raised in core by servicer method [%s]", SUBSCRIBE)
    grpc_logger.error("Unexpected error in grpc")


def test_write_to_an_ended_call_then_one_info_line_and_other_grpc_errors_kept(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("INFO", "json")
    _grpc_logs_a_failed_write()
    documents = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [d["level"] for d in documents] == ["INFO", "ERROR"]
    gone, other = documents
    assert gone["logger"] == logs.GRPC_LOGGER
    assert SUBSCRIBE in gone["message"] and "ended at the peer" in gone["message"]
    assert gone["message"].endswith(f": {SUBSCRIBE}")
    assert "exception" not in gone  # no traceback
    assert other["message"] == "Unexpected error in grpc"


def test_write_to_an_ended_call_at_level_warning_then_not_logged(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("WARNING", "text")
    logs.configure("WARNING", "text")  # configuring twice adds the filter once
    _grpc_logs_a_failed_write()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "ERROR" in lines[0] and "Unexpected error in grpc" in lines[0]
    grpc_filters = logging.getLogger(logs.GRPC_LOGGER).filters
    assert sum(isinstance(f, logs.PeerGoneDuringWrite) for f in grpc_filters) == 1
