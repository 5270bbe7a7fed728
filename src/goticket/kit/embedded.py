"""An embedded PostgreSQL 16 (the ``pgserver`` wheel) for running with no database configured.

Several processes may share one data folder (``goticket serve`` and ``goticket users create``):
pgserver counts the processes holding it and the last one to let go stops the server. A holder
that died without letting go (SIGKILL, a crash, a reboot) is forgotten when the next one starts,
or that server would never be stopped again.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from goticket.kit.logging import get_logger

log = get_logger("goticket.embedded")


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pg16").resolve()
        self._server: Any = None

    def start(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from pgserver.postgres_server import get_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            _forget_dead_holders(self.pgdata)
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        uri: str = self._server.get_uri()
        log.info("embedded postgres ready", pgdata=str(self.pgdata))
        return uri

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()
            log.info("embedded postgres released", pgdata=str(self.pgdata))


def _forget_dead_holders(pgdata: Path) -> None:
    """Drop from pgserver's list of holders the processes that no longer exist."""
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import DiskList

    holders_file = pgdata / ".handle_pids.json"
    with PostgresServer._lock:  # the inter-process lock pgserver takes to change the list
        if not holders_file.exists():
            return
        holders = DiskList(holders_file)
        pids: list[int] = holders.get()
        alive = [pid for pid in pids if _exists(pid)]
        if alive != pids:
            holders.put(alive)
            log.info(
                "forgot dead holders of embedded postgres", pids=sorted(set(pids) - set(alive))
            )


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
