"""The scenarios of a run, and wrk driving one of them (book.lua, get.lua, checkin.lua, with
common.lua)."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import BenchFailure
from bench.options import BENCH, BOOKS, KINDS, READS, Kind, Options

WRK_TIMEOUT_S = 30  # wrk cannot record a latency above its timeout: keep it far above any answer


@dataclass(frozen=True)
class Scenario:
    kind: Kind
    connections: int

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.connections}" if self.kind in ("hot", "holds") else self.kind

    @property
    def books(self) -> bool:
        """Its requests are bookings (book.lua): each 201 is a row of ``bookings``."""
        return self.kind in BOOKS

    @property
    def ok_status(self) -> str:
        return "201" if self.books else "200"


@dataclass(frozen=True)
class Inputs:
    """wrk's input files: the users' tokens, the organizer's (check-in at the door), and each
    scenario's targets (event ids, paths, or the check-in path and its codes)."""

    tokens: Path
    targets: dict[Kind, Path]
    organizer_token: Path | None = None
    # The holds scenario's own users: as many as hot's, their tokens as new to the server when
    # it starts as hot's were, so that neither side books with the other's verified tokens.
    holds_tokens: Path | None = None

    def tokens_of(self, kind: Kind) -> Path:
        return self.holds_tokens if kind == "holds" and self.holds_tokens else self.tokens


def scenarios(options: Options) -> list[Scenario]:
    connections: dict[Kind, tuple[int, ...]] = {
        "hot": options.hot_connections,
        "holds": options.hot_connections,
        # The mass expiry runs under the heaviest hot load, whose p99 is its baseline.
        "expiry": (max(options.hot_connections),),
        "checkin": (options.checkin_connections,),
        "storm": (options.storm_connections,),
        "spread": (options.spread_connections,),
        "refuse": (options.storm_connections,),
        **dict.fromkeys(READS, (options.read_connections,)),
    }
    return [
        Scenario(kind, count)
        for kind in KINDS
        if kind in options.kinds
        for count in connections[kind]
    ]


def scenario_bounds(scenario: Scenario, options: Options) -> tuple[float, int]:
    """Seconds of load and request budget (0: none) of a scenario."""
    if scenario.kind == "warmup":
        return options.warmup, 0
    if scenario.kind == "storm":
        return options.storm_max_seconds, options.storm_requests
    return options.duration, 0


def wrk_command(
    scenario: Scenario, base_url: str, inputs: Inputs, options: Options, key: str
) -> tuple[list[str], int, int]:
    """wrk's argv, its -d cap in seconds, and its thread count."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchFailure("wrk not found: apt-get install wrk (make bench installs it)")
    seconds, budget = scenario_bounds(scenario, options)
    cap = math.ceil(seconds + options.drain)  # wrk takes whole seconds
    threads = min(options.threads, scenario.connections)
    command = [wrk, f"-t{threads}", f"-c{scenario.connections}", f"-d{cap}s"]
    command += [f"--timeout={WRK_TIMEOUT_S}s"]
    bounds = [str(seconds), str(budget), str(threads)]
    if scenario.books:
        command += ["-s", str(BENCH / "book.lua"), base_url, "--"]
        # "refuse" sends no Idempotency-Key: the engine may refuse it from memory.
        keys = "-" if scenario.kind == "refuse" else key
        tokens = inputs.tokens_of(scenario.kind)
        command += [str(inputs.targets[scenario.kind]), str(tokens), *bounds, keys]
    elif scenario.kind == "checkin":
        if inputs.organizer_token is None:
            raise BenchFailure("check-in needs the organizer's token")
        command += ["-s", str(BENCH / "checkin.lua"), base_url, "--"]
        command += [str(inputs.targets[scenario.kind]), str(inputs.organizer_token), *bounds]
    else:
        command += ["-s", str(BENCH / "get.lua"), base_url, "--"]
        command += [str(inputs.targets[scenario.kind])]
        command += bounds
    return command, cap, threads


def run_wrk(
    scenario: Scenario, base_url: str, inputs: Inputs, options: Options, key: str
) -> dict[str, Any]:
    """One wrk run; its BENCH_RESULT (see common.lua). wrk is stopped with SIGINT as soon as
    every thread has had all its requests answered, at the latest after the drain."""
    command, cap, threads = wrk_command(scenario, base_url, inputs, options, key)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    watchdog = threading.Timer(cap + 60, process.kill)  # wrk stops by itself; this if it hangs
    watchdog.start()
    output: list[str] = []
    finished = 0
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.startswith("BENCH_THREAD_DONE"):
                finished += 1
                if finished == threads:
                    process.send_signal(signal.SIGINT)  # wrk prints its summary and exits
        process.wait(timeout=30)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    for line in output:
        if line.startswith("BENCH_RESULT "):
            summary: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return summary
    raise BenchFailure(f"wrk exited {process.returncode} without a result:\n{''.join(output)}")
