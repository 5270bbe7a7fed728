"""A private PostgreSQL cluster that a fault test may stop and start at will: ``initdb`` and
``pg_ctl`` from the embedded server's binaries (the ``pgserver`` wheel), its own data folder and
a free port on 127.0.0.1. Never the machine's shared server: stopping that would fail every
other test run on it."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from testbed.processes import free_port

CTL_TIMEOUT_S = 30
# PostgreSQL refuses to run as root; pgserver runs it as this user then (and creates it).
ROOT_SUBSTITUTE = "pgserver"


def binaries() -> Path:
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


class PrivateCluster:
    """``start()``/``stop()`` as often as a test likes; the port stays the same across restarts."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gtf-", dir="/tmp"))  # short: socket paths
        self.pgdata = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user: str | None = None
        if os.geteuid() == 0:
            from pgserver.utils import ensure_user_exists

            self._user = ROOT_SUBSTITUTE
            ensure_user_exists(ROOT_SUBSTITUTE)
            entry = pwd.getpwnam(ROOT_SUBSTITUTE)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=utf8",
            "--no-sync",  # a throwaway cluster: its durability against power loss is moot
        )

    def _run(self, program: str, *args: str) -> None:
        completed = subprocess.run(
            [str(binaries() / program), *args],
            user=self._user,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c max_connections=100"
        self._run(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_path), "-o", options, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
