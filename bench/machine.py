"""What the report says about where and how it ran: the machine, the git revision, the command."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from bench.options import ROOT
from bench.seeding import Database


def machine_info(db: Database) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute("SHOW server_version").fetchone()
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk_version = ""
    if wrk := shutil.which("wrk"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
            wrk_version = (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0]
    return {
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": row[0] if row else "?",
        "database": "embedded (pgserver, Unix socket)" if db.pgdata else "GOTICKET_DATABASE_URL",
        "wrk": wrk_version,
    }


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()


def git_revision() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return head + (" (with uncommitted changes)" if dirty else "")
    return "unknown"


def invocation(argv: Sequence[str]) -> str:
    if os.environ.get("MAKELEVEL"):
        return "make bench" + (f" BENCH_ARGS={shlex.quote(shlex.join(argv))}" if argv else "")
    return shlex.join(getattr(sys, "orig_argv", sys.argv))
