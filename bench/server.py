"""``goticket serve`` for one mode's run, with the knobs of the run, and its /metrics sums."""

from __future__ import annotations

import http.client
import os
import secrets
import sys
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench import BenchFailure
from bench.options import RESULTS, ROOT, Mode, Options
from bench.seeding import Database
from testbed.processes import ServeFailure, ServerProcess

READY_TIMEOUT_S = 90.0
SHUTDOWN_GRACE_S = 5
ENGINE_METRICS = ("goticket_engine_batch_size", "goticket_engine_commit_seconds")


class BenchServer(ServerProcess):
    """The server of one run, in its own session (a Ctrl-C reaches only the harness, which
    stops it with SIGTERM); ``src`` serves another checkout's code (--compare-ref)."""

    def __init__(
        self,
        *,
        mode: Mode,
        pool: int,
        options: Options,
        db: Database,
        secret: str,
        ticket_key: str,
        label: str,
        src: Path | None = None,
    ) -> None:
        self.mode = mode
        self.pool = pool
        self.metrics_token = secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "GOTICKET_DATABASE_URL": db.url,
            "GOTICKET_JWT_SECRET": secret,
            "GOTICKET_ENGINE": mode,
            "GOTICKET_DB_POOL_MAX": str(pool),
            "GOTICKET_WORKERS": str(options.workers),
            "GOTICKET_LOG_LEVEL": options.log_level,
            "GOTICKET_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE_S),
            "GOTICKET_DATA_DIR": str(options.data_dir),
            "GOTICKET_METRICS_TOKEN": self.metrics_token,
            "GOTICKET_TICKET_SIGNING_KEY": ticket_key,
        }
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
        RESULTS.mkdir(parents=True, exist_ok=True)
        super().__init__(
            env,
            cwd=ROOT,
            workers=options.workers,
            log_path=RESULTS / f"serve-{label}-pool{pool}.log",
            command=(sys.executable, "-m", "goticket"),
            new_session=True,
        )
        self._expect_workers = options.workers if options.log_level in ("DEBUG", "INFO") else 0

    def start(self) -> None:
        """Ready, and every worker started (when the log level shows their startup line)."""
        try:
            if self._expect_workers:
                self.wait_for_workers(self._expect_workers, ready=READY_TIMEOUT_S)
            else:
                self.wait_ready(READY_TIMEOUT_S)
        except (ServeFailure, TimeoutError) as exc:
            raise BenchFailure(f"goticket serve did not start: {exc}\n{self.log_tail()}") from exc

    def engine_sums(self) -> dict[str, float]:
        """Batch and commit-time sums and counts from the server's own /metrics (all workers)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(
                "GET", "/metrics", headers={"Authorization": f"Bearer {self.metrics_token}"}
            )
            text = connection.getresponse().read().decode()
        finally:
            connection.close()
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            if family.name in ENGINE_METRICS
            for sample in family.samples
            if sample.name.endswith(("_sum", "_count"))
        }

    def roots(self) -> list[psutil.Process]:
        try:
            return [psutil.Process(self.process.pid)]
        except psutil.Error:
            return []
