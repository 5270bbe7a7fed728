"""Where the CPU went during a scenario: the server, PostgreSQL, wrk, and everything else."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


def tree_cpu(roots: Sequence[psutil.Process]) -> float:
    """CPU seconds (user + system) of the processes and their descendants, including the
    descendants that already exited and were reaped by a process of the tree."""
    total = 0.0
    seen: set[int] = set()
    for root in roots:
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in members:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
    return total


def postgres_roots(pgdata: Path | None) -> list[psutil.Process]:
    """The postmaster(s) whose trees hold the database's CPU: the embedded one from its pid
    file; for a configured server, every local ``postgres`` process that has no postgres parent
    (none when the server runs elsewhere: its CPU is then not measured)."""
    if pgdata is not None:
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            pid = int((pgdata / "postmaster.pid").read_text().split()[0])
            return [psutil.Process(pid)]
        return []
    names = ("postgres", "postmaster")
    roots = []
    for proc in psutil.process_iter(["name", "ppid"]):
        if proc.info["name"] not in names:
            continue
        try:
            parent = psutil.Process(proc.info["ppid"]).name()
        except psutil.Error:
            parent = ""
        if parent not in names:
            roots.append(proc)
    return roots


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    server: float
    postgres: float | None
    wrk: float  # reaped children of this process: wrk, the only child reaped meanwhile
    busy: float  # the whole machine, every core
    idle: float

    @classmethod
    def take(
        cls, server_roots: Sequence[psutil.Process], pg_roots: Sequence[psutil.Process]
    ) -> CpuSnapshot:
        machine = psutil.cpu_times()
        return cls(
            at=time.monotonic(),
            server=tree_cpu(server_roots),
            postgres=tree_cpu(pg_roots) if pg_roots else None,
            wrk=children_cpu(),
            busy=sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
            idle=machine.idle + getattr(machine, "iowait", 0.0),
        )


@dataclass(frozen=True)
class CpuSplit:
    wall_s: float
    server_s: float
    postgres_s: float | None
    wrk_s: float
    other_s: float  # everything else on the machine (this harness, the kernel, ...)
    idle_pct: float

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot) -> CpuSplit:
        server = after.server - before.server
        postgres = (
            after.postgres - before.postgres
            if after.postgres is not None and before.postgres is not None
            else None
        )
        wrk = after.wrk - before.wrk
        busy = after.busy - before.busy
        idle = after.idle - before.idle
        return cls(
            wall_s=round(after.at - before.at, 2),
            server_s=round(server, 2),
            postgres_s=round(postgres, 2) if postgres is not None else None,
            wrk_s=round(wrk, 2),
            other_s=round(max(0.0, busy - server - (postgres or 0.0) - wrk), 2),
            idle_pct=round(100 * idle / (busy + idle), 1) if busy + idle > 0 else 0.0,
        )
