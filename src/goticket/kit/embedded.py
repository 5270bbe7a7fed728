"""An embedded PostgreSQL 16 (the ``pgserver`` wheel) for running with no database configured.

Several processes may share one data folder (``goticket serve`` and ``goticket users create``):
pgserver counts the processes holding it and the last one to let go stops the server.
"""

from __future__ import annotations

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
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        uri: str = self._server.get_uri()
        log.info("embedded postgres ready", pgdata=str(self.pgdata))
        return uri

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()
            log.info("embedded postgres released", pgdata=str(self.pgdata))
