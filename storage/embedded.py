"""An embedded PostgreSQL server (the ``pgserver`` package) for a machine with no database.

The server runs from the wheel's own binaries in a data folder of ours and listens on a Unix socket
only. It is shared: a second gateway (or test run) on the same data folder attaches to the running
server, and the last one to leave stops it.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from storage.errors import EmbeddedDatabaseError

log = logging.getLogger(__name__)

DATABASE_NAME = "execgw"


class EmbeddedPostgres:
    """Start (or attach to) an embedded server in ``data_dir``. Blocking: call it off the loop."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self, database: str = DATABASE_NAME) -> str:
        """Start the server, make sure ``database`` exists and return its URL."""
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
                warnings.simplefilter("ignore")
                from pgserver.postgres_server import get_server

                self.data_dir.mkdir(parents=True, exist_ok=True)
                self._server = get_server(self.data_dir, cleanup_mode="stop")
            exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
            if "(1 row)" not in exists:
                self._server.psql(f'CREATE DATABASE "{database}";')
        except Exception as exc:  # pgserver raises plain exceptions of many kinds
            raise EmbeddedDatabaseError(
                f"cannot start the embedded PostgreSQL in {self.data_dir}: {exc}"
            ) from exc
        url: str = self._server.get_uri(database)
        log.info("embedded PostgreSQL ready", extra={"data_dir": str(self.data_dir)})
        return url

    def stop(self) -> None:
        """Detach; the server stops when no other live process uses it."""
        if self._server is not None:
            self._forget_dead_users()
            self._server.cleanup()
            self._server = None

    def _forget_dead_users(self) -> None:
        # pgserver keeps the pids of the processes attached to the server in a file and stops the
        # server when the last one leaves; a process that was killed never leaves, which would
        # keep the server running for ever. Forget those before leaving ourselves.
        import psutil

        with self._server._lock:
            users = self._server.global_process_id_list
            alive = [pid for pid in users.get() if pid == os.getpid() or psutil.pid_exists(pid)]
            users.put(alive)
