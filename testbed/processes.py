"""``goticket serve`` as a real process: started on a free port of 127.0.0.1 with an explicit
environment, waited for (readiness, then each worker's startup line in its JSON log), stopped
with SIGTERM, and never left behind."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

_SCRIPT = Path(sys.executable).with_name("goticket")
# The console script when this interpreter has one (what a user runs), else the module.
GOTICKET: tuple[str, ...] = (
    (str(_SCRIPT),) if _SCRIPT.exists() else (sys.executable, "-m", "goticket")
)
READY_TIMEOUT_S = 60.0  # the embedded server runs initdb on its first start
WORKERS_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


class ServeFailure(RuntimeError):
    """The server exited, or did not become ready, in time; the message holds its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def stop_processes(processes: Sequence[psutil.Process]) -> None:
    """SIGTERM, then SIGKILL for whatever still runs 5 s later."""
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(processes, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


class ServerProcess:
    """One ``goticket serve`` (and its workers); its output (the JSON log) goes to ``log_path``.

    ``new_session`` puts it in a session of its own, so that a Ctrl-C in the terminal reaches
    only the caller, which then stops it (the benchmark does).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        cwd: Path,
        workers: int = 1,
        port: int | None = None,
        log_path: Path | None = None,
        command: Sequence[str] = GOTICKET,
        new_session: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or cwd / f"serve-{self.port}.log"
        self._new_session = new_session
        argv = [*command, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*argv, "--workers", str(workers)],
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=new_session,
            )

    # ------------------------------------------------------------------------------- the log

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON lines of the log; anything else (a line still being written) is skipped."""
        records = []
        for line in self.log.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def started_workers(self) -> set[int]:
        """The pids of the workers whose app finished its startup (the lifespan logs it)."""
        return {
            int(record["pid"])
            for record in self.log_records()
            if "worker started" in record.values() and "pid" in record
        }

    # ------------------------------------------------------------------------------ waiting

    def status_of(self, path: str, timeout: float = 2.0) -> int | None:
        """The status of ``GET path`` on a fresh connection; None if nothing answered."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            return connection.getresponse().status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeFailure(f"serve exited {self.process.returncode}:\n{self.log_tail()}")
            if self.status_of("/readyz") == 200:
                return
            time.sleep(0.2)
        raise ServeFailure(f"serve not ready after {timeout} s:\n{self.log_tail()}")

    def wait_for_workers(
        self, count: int, timeout: float = WORKERS_TIMEOUT_S, ready: float = READY_TIMEOUT_S
    ) -> set[int]:
        """Ready, and ``count`` workers logged their startup (needs GOTICKET_LOG_LEVEL INFO)."""
        self.wait_ready(ready)
        wait_until(lambda: len(self.started_workers()) == count, timeout, f"{count} workers")
        return self.started_workers()

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ServeFailure(
                f"serve still running {timeout} s later:\n{self.log_tail()}"
            ) from None

    # ----------------------------------------------------------------------------- stopping

    def children(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            children: list[psutil.Process] = psutil.Process(self.process.pid).children(
                recursive=True
            )
            return children
        return []

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (a graceful shutdown); its exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM; SIGKILL if it is still running ``timeout`` s later; no worker left behind."""
        if self.process.poll() is not None:
            return
        leftovers = self.children()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"goticket serve (pid {self.process.pid}) ignored SIGTERM: killing it")
            self._kill_now()
        stop_processes(leftovers)

    def kill(self) -> None:
        """SIGKILL at once (the server and every worker), if it is still running."""
        if self.process.poll() is None:
            leftovers = self.children()
            self._kill_now()
            stop_processes(leftovers)

    def _kill_now(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self._new_session:
                os.killpg(self.process.pid, signal.SIGKILL)  # the session it leads
            else:
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
